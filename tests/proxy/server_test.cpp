#include "api_harness.hpp"
#include "common/http_client.hpp"
#include "server.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using testsupport::Harness;

namespace {

// The manifest types Docker 20.10 asks for on a pull, each in an Accept header of its own (its
// distribution client adds one header per registered type; this is the order of one run).
const std::vector<std::string> kDockerAccept = {
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
};

// The proxy's HTTP server on 127.0.0.1, a kernel-chosen port, in front of a Harness.
struct ServedHarness {
  ServedHarness() {
    h.config.listen = {"127.0.0.1:0"};
    server = std::make_unique<proxy::Server>(h.config, *h.api);
    server->start();
    url = "http://127.0.0.1:" + std::to_string(server->ports().at(0));
  }
  ~ServedHarness() { server->stop(1s); }

  common::HttpResponse request(const std::string& method, const std::string& path,
                               const std::vector<std::string>& accept) {
    common::HttpRequest request;
    request.method = method;
    request.url = url + path;
    for (const auto& type : accept) {
      request.headers.emplace_back("Accept", type);
    }
    auto answer = client.perform(request);
    REQUIRE(answer.ok());
    return answer.value();
  }

  Harness h;
  std::unique_ptr<proxy::Server> server;
  std::string url;
  common::HttpClient client;
};

} // namespace

TEST_CASE("Server: Docker's Accept list, sent as several headers, finds a fresh tag in the cache",
          "[proxy][server][manifests]") {
  ServedHarness s;
  const auto index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                     R"("manifests":[]})";
  const auto digest = s.h.registry.addManifest("library/app", "v1", index,
                                               "application/vnd.oci.image.index.v1+json");
  const std::string tag_path = "/v2/library/app/manifests/v1";

  // Docker's pull: HEAD the tag for its digest, then GET the manifest by digest.
  auto head = s.request("HEAD", tag_path, kDockerAccept);
  REQUIRE(head.status == 200);
  CHECK(head.headers.get("Docker-Content-Digest") == digest);
  CHECK(head.headers.get("Content-Type") == "application/vnd.oci.image.index.v1+json");
  auto by_digest = s.request("GET", "/v2/library/app/manifests/" + digest, kDockerAccept);
  REQUIRE(by_digest.status == 200);
  CHECK(by_digest.body == index);
  const auto upstream_requests = s.h.registry.countContaining("*", "/manifests/");

  // The second pull, inside the tag's lifetime: the index is not in the first header, yet the
  // client accepts it, so no upstream request at all.
  auto again = s.request("HEAD", tag_path, kDockerAccept);
  CHECK(again.status == 200);
  CHECK(again.headers.get("Docker-Content-Digest") == digest);
  CHECK(s.request("GET", tag_path, kDockerAccept).body == index);
  CHECK(s.request("GET", "/v2/library/app/manifests/" + digest, kDockerAccept).status == 200);
  CHECK(s.h.registry.countContaining("*", "/manifests/") == upstream_requests);
}

TEST_CASE("Server: after stop, new connections are refused", "[proxy][server]") {
  ServedHarness s;
  REQUIRE(s.request("GET", "/v2/", {}).status == 200);
  s.server->stop(1s);

  common::HttpRequest request;
  request.url = s.url + "/v2/";
  request.timeout = 3s;
  auto refused = s.client.perform(request);
  REQUIRE_FALSE(refused.ok());
  CHECK_FALSE(refused.error().timeout);
}
