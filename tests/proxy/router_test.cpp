#include "router.hpp"

#include <catch2/catch.hpp>

namespace {

proxy::ProxyConfig twoUpstreams() {
  proxy::ProxyConfig config;
  config.upstreams.push_back({});
  config.upstreams.back().name = "docker.io";
  config.upstreams.back().url = "https://registry-1.docker.io";
  config.upstreams.push_back({});
  config.upstreams.back().name = "ghcr.io";
  config.upstreams.back().url = "https://ghcr.io";
  config.upstreams.push_back({});
  config.upstreams.back().name = "127.0.0.1:5001";
  config.upstreams.back().url = "http://127.0.0.1:5001";
  config.default_upstream = "docker.io";
  return config;
}

proxy::Route route(const proxy::ProxyConfig& config, const std::string& target,
                   const std::string& method = "GET") {
  auto result = proxy::routeRequest(config, method, target);
  if (auto* error = std::get_if<proxy::RouteError>(&result)) {
    FAIL("unexpected route error " << error->code << ": " << error->message);
  }
  return std::get<proxy::Route>(result);
}

proxy::RouteError refusal(const proxy::ProxyConfig& config, const std::string& target,
                          const std::string& method = "GET") {
  auto result = proxy::routeRequest(config, method, target);
  REQUIRE(std::holds_alternative<proxy::RouteError>(result));
  return std::get<proxy::RouteError>(result);
}

const std::string kDigest = "sha256:" + std::string(64, 'c');

} // namespace

TEST_CASE("routeRequest: the default upstream serves plain paths", "[proxy][router]") {
  const auto config = twoUpstreams();
  auto r = route(config, "/v2/library/alpine/manifests/3.20");
  CHECK(r.kind == proxy::Route::Kind::Manifest);
  CHECK(r.upstream->name == "docker.io");
  CHECK(r.repository->str() == "library/alpine");
  CHECK(proxy::toString(*r.reference) == "3.20");

  SECTION("a blob") {
    r = route(config, "/v2/library/alpine/blobs/" + kDigest);
    CHECK(r.kind == proxy::Route::Kind::Blob);
    CHECK(r.digest->str() == kDigest);
  }
  SECTION("tags/list, referrers, catalog and the base") {
    CHECK(route(config, "/v2/library/alpine/tags/list?n=5").kind == proxy::Route::Kind::TagsList);
    CHECK(route(config, "/v2/library/alpine/tags/list?n=5").query.at("n") == "5");
    CHECK(route(config, "/v2/a/referrers/" + kDigest).kind == proxy::Route::Kind::Referrers);
    CHECK(route(config, "/v2/_catalog").kind == proxy::Route::Kind::Catalog);
    CHECK(route(config, "/v2/").kind == proxy::Route::Kind::Base);
    CHECK(route(config, "/v2").kind == proxy::Route::Kind::Base);
  }
  SECTION("Docker Hub's library/ is implied for one-segment names") {
    CHECK(route(config, "/v2/alpine/manifests/3.20").repository->str() == "library/alpine");
  }
  SECTION("names may contain the route words") {
    r = route(config, "/v2/a/blobs/b/manifests/v1");
    CHECK(r.repository->str() == "a/blobs/b");
    CHECK(r.kind == proxy::Route::Kind::Manifest);
  }
}

TEST_CASE("routeRequest: ?ns= names the upstream (containerd, Docker 29)", "[proxy][router]") {
  const auto config = twoUpstreams();
  auto r = route(config, "/v2/owner/app/manifests/v1?ns=ghcr.io");
  CHECK(r.upstream->name == "ghcr.io");
  CHECK(r.repository->str() == "owner/app");

  SECTION("Docker Hub's aliases are one upstream") {
    CHECK(route(config, "/v2/library/x/manifests/v1?ns=index.docker.io").upstream->name ==
          "docker.io");
    CHECK(route(config, "/v2/library/x/manifests/v1?ns=registry-1.docker.io").upstream->name ==
          "docker.io");
  }
  SECTION("host:port upstreams") {
    CHECK(route(config, "/v2/x/blobs/" + kDigest + "?ns=127.0.0.1:5001").upstream->name ==
          "127.0.0.1:5001");
  }
  SECTION("an unknown ns is refused, never dialed") {
    const auto error = refusal(config, "/v2/x/manifests/v1?ns=evil.example.com");
    CHECK(error.status == 403);
    CHECK(error.code == "DENIED");
    CHECK_THAT(error.message, Catch::Contains("evil.example.com"));
  }
}

TEST_CASE("routeRequest: a host-like first segment is a mirror prefix (Podman, CRI-O)",
          "[proxy][router]") {
  const auto config = twoUpstreams();
  auto r = route(config, "/v2/docker.io/library/alpine/manifests/3.20");
  CHECK(r.upstream->name == "docker.io");
  CHECK(r.repository->str() == "library/alpine");
  CHECK(r.client_prefix == "/v2/docker.io/");

  SECTION("single-segment Docker Hub names get library/") {
    CHECK(route(config, "/v2/docker.io/alpine/manifests/3.20").repository->str() ==
          "library/alpine");
  }
  SECTION("other registries keep their names") {
    r = route(config, "/v2/ghcr.io/owner/app/blobs/" + kDigest);
    CHECK(r.upstream->name == "ghcr.io");
    CHECK(r.repository->str() == "owner/app");
    CHECK(route(config, "/v2/127.0.0.1:5001/x/manifests/v1").upstream->name == "127.0.0.1:5001");
  }
  SECTION("an unknown prefix is refused") {
    CHECK(refusal(config, "/v2/quay.io/x/y/manifests/v1").code == "DENIED");
    CHECK(refusal(config, "/v2/localhost/x/manifests/v1").code == "DENIED");
  }
}

TEST_CASE("routeRequest: writes are refused, the cache is read-only", "[proxy][router]") {
  const auto config = twoUpstreams();
  for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
    INFO(method);
    const auto error = refusal(config, "/v2/library/x/manifests/v1", method);
    CHECK(error.status == 405);
    CHECK(error.code == "UNSUPPORTED");
  }
  CHECK(refusal(config, "/v2/library/x/blobs/uploads/", "POST").code == "UNSUPPORTED");
  CHECK(refusal(config, "/v2/library/x/blobs/uploads/abc", "GET").status == 405);
}

TEST_CASE("routeRequest: bad names and digests never pass", "[proxy][router]") {
  const auto config = twoUpstreams();
  CHECK(refusal(config, "/v2/UPPER/manifests/v1").code == "NAME_INVALID");
  CHECK(refusal(config, "/v2/a//b/manifests/v1").code == "NAME_INVALID");
  CHECK(refusal(config, "/v2/../../etc/manifests/v1").code == "NAME_INVALID");
  CHECK(refusal(config, "/v2/%2e%2e/%2e%2e/etc/manifests/v1").code == "NAME_INVALID");
  CHECK(refusal(config, "/v2/a/blobs/sha256:xyz").code == "DIGEST_INVALID");
  CHECK(refusal(config, "/v2/a/blobs/sha256:" + std::string(63, 'a')).code == "DIGEST_INVALID");
  CHECK(refusal(config, "/v2/a/blobs/..%2f..%2fx").code == "DIGEST_INVALID");
  CHECK(refusal(config, "/v2/a/manifests/sha256:zz").code == "DIGEST_INVALID");
  CHECK(refusal(config, "/v2/a/manifests/.bad").code == "MANIFEST_INVALID");
  CHECK(refusal(config, "/v2/a/unknown").status == 404);
  CHECK(refusal(config, "/other").status == 404);
}

TEST_CASE("parseQuery: percent-decoding and repeated keys", "[proxy][router]") {
  const auto query = proxy::parseQuery("ns=docker.io&last=a%2Fb&n=&ns=other&bad=%zz");
  CHECK(query.at("ns") == "docker.io");
  CHECK(query.at("last") == "a/b");
  CHECK(query.at("n").empty());
  CHECK(query.count("bad") == 0);
}
