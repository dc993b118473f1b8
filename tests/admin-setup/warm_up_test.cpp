#include "common/digest_hasher.hpp"
#include "common/manifest.hpp"
#include "step_error.hpp"
#include "test_http_server.hpp"
#include "verify.hpp"
#include "warm_up.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <mutex>

using Catch::Matchers::Contains;
using testsupport::TestHttpServer;

namespace {

std::string sha256(const std::string& bytes) {
  return common::digestOf("sha256", bytes);
}

constexpr const char* kIndexType = "application/vnd.oci.image.index.v1+json";
constexpr const char* kManifestType = "application/vnd.oci.image.manifest.v1+json";

std::string descriptorJson(const std::string& type, const std::string& bytes) {
  return R"({"mediaType":")" + type + R"(","digest":")" + sha256(bytes) + R"(","size":)" +
         std::to_string(bytes.size()) + "}";
}

// A registry as the proxy shows it to clients: manifests and blobs of one repository, the
// registry named by ?ns=, every request recorded.
class FakeProxy {
public:
  FakeProxy() {
    server.onPrefix("GET", "/v2/", [this](const TestHttpServer::Request& r, auto& response) {
      serve(r, response);
    });
  }

  std::string addBlob(const std::string& bytes) {
    std::lock_guard lock(mutex_);
    blobs_[sha256(bytes)] = bytes;
    return sha256(bytes);
  }

  std::string addManifest(const std::string& body, const std::string& type,
                          const std::string& tag = "") {
    std::lock_guard lock(mutex_);
    const auto digest = sha256(body);
    manifests_[digest] = {type, body};
    if (!tag.empty()) {
      manifests_[tag] = {type, body};
    }
    return digest;
  }

  // An image manifest with a config and the given layers; returns its body.
  std::string image(const std::string& name, const std::vector<std::string>& layers) {
    const std::string config = R"({"architecture":")" + name + R"("})";
    addBlob(config);
    std::string body =
        R"({"schemaVersion":2,"mediaType":")" + std::string(kManifestType) + R"(","config":)" +
        descriptorJson("application/vnd.oci.image.config.v1+json", config) + R"(,"layers":[)";
    for (size_t i = 0; i < layers.size(); ++i) {
      addBlob(layers[i]);
      body +=
          (i ? "," : "") + descriptorJson("application/vnd.oci.image.layer.v1.tar+gzip", layers[i]);
    }
    return body + "]}";
  }

  size_t blobGets(const std::string& digest) const {
    return server.count("GET", "/v2/library/app/blobs/" + digest);
  }

  TestHttpServer server;
  std::atomic<bool> corrupt_blobs{false};
  std::atomic<bool> wrong_digest_header{false};

private:
  void serve(const TestHttpServer::Request& r, Poco::Net::HTTPServerResponse& response) {
    if (r.path == "/v2/") {
      TestHttpServer::reply(response, 200, "{}");
      return;
    }
    if (r.query != "ns=docker.io") {
      TestHttpServer::reply(response, 403, R"({"errors":[{"code":"DENIED","message":"no ns"}]})");
      return;
    }
    const std::string prefix = "/v2/library/app/";
    std::unique_lock lock(mutex_);
    if (r.path.rfind(prefix + "manifests/", 0) == 0) {
      const auto it = manifests_.find(r.path.substr(prefix.size() + 10));
      if (it == manifests_.end()) {
        lock.unlock();
        TestHttpServer::reply(
            response, 404,
            R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})");
        return;
      }
      const auto [type, body] = it->second;
      lock.unlock();
      const auto digest = wrong_digest_header ? sha256("other") : sha256(body);
      TestHttpServer::reply(response, 200, body,
                            {{"Content-Type", type}, {"Docker-Content-Digest", digest}});
      return;
    }
    if (r.path.rfind(prefix + "blobs/", 0) == 0) {
      const auto it = blobs_.find(r.path.substr(prefix.size() + 6));
      if (it == blobs_.end()) {
        lock.unlock();
        TestHttpServer::reply(response, 404, R"({"errors":[{"code":"BLOB_UNKNOWN"}]})");
        return;
      }
      auto bytes = it->second;
      lock.unlock();
      if (corrupt_blobs) {
        bytes[0] ^= 0x01;
      }
      TestHttpServer::reply(response, 200, bytes);
      return;
    }
    lock.unlock();
    TestHttpServer::reply(response, 404, R"({"errors":[{"code":"NAME_UNKNOWN"}]})");
  }

  std::mutex mutex_;
  std::map<std::string, std::pair<std::string, std::string>> manifests_;
  std::map<std::string, std::string> blobs_;
};

common::WarmImage wanted(const std::string& text, const std::vector<std::string>& platforms = {}) {
  common::WarmImage image{common::ImageReference::parse(text).value(), {}};
  for (const auto& p : platforms) {
    image.platforms.push_back(*common::Platform::parse(p));
  }
  return image;
}

} // namespace

TEST_CASE("WarmUp: an index pulls its platforms' manifests and blobs, each once",
          "[admin][warm-up]") {
  FakeProxy proxy;
  const std::string shared = "shared base layer";
  const auto amd64 = proxy.image("amd64", {shared, "amd64 layer"});
  const auto arm64 = proxy.image("arm64", {shared, "arm64 layer"});
  const auto amd64_digest = proxy.addManifest(amd64, kManifestType);
  const auto arm64_digest = proxy.addManifest(arm64, kManifestType);
  const std::string index =
      R"({"schemaVersion":2,"mediaType":")" + std::string(kIndexType) + R"(","manifests":[)" +
      R"({"mediaType":")" + kManifestType + R"(","digest":")" + amd64_digest + R"(","size":)" +
      std::to_string(amd64.size()) + R"(,"platform":{"os":"linux","architecture":"amd64"}},)" +
      R"({"mediaType":")" + kManifestType + R"(","digest":")" + arm64_digest + R"(","size":)" +
      std::to_string(arm64.size()) +
      R"(,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]})";
  const auto index_digest = proxy.addManifest(index, kIndexType, "v1");
  common::HttpClient http;
  const admin::RegistryClient client(http, admin::Endpoint{proxy.server.url(), "", std::nullopt});
  admin::WarmUp warm_up(client);

  SECTION("all platforms") {
    const auto warmed = warm_up.warm(wanted("app:v1"));
    REQUIRE(warmed.ok());
    CHECK(warmed->digest == index_digest);
    CHECK(warmed->manifest_digest == amd64_digest);
    CHECK(warmed->blob_digest == sha256(R"({"architecture":"amd64"})"));
    CHECK(warm_up.totals().manifests == 3);
    CHECK(warm_up.totals().blobs == 5); // two configs, the shared layer once, two own layers
    CHECK(proxy.blobGets(sha256(shared)) == 1);
    CHECK(proxy.server.count("GET", "/v2/library/app/manifests/v1") == 1);

    SECTION("a second image with the same layer does not fetch it again in this run") {
      const auto again = warm_up.warm(wanted("app:v1"));
      REQUIRE(again.ok());
      CHECK(proxy.blobGets(sha256(shared)) == 1);
      CHECK(proxy.server.count("GET", "/v2/library/app/manifests/v1") == 2);
    }
  }
  SECTION("listed platforms only") {
    const auto warmed = warm_up.warm(wanted("app:v1", {"linux/arm64"}));
    REQUIRE(warmed.ok());
    CHECK(warmed->manifest_digest == arm64_digest);
    CHECK(proxy.server.count("GET", "/v2/library/app/manifests/" + amd64_digest) == 0);
    CHECK(proxy.blobGets(sha256("amd64 layer")) == 0);
    CHECK(proxy.blobGets(sha256("arm64 layer")) == 1);
  }
  SECTION("a platform the index does not offer: nothing to cache is an error") {
    const auto warmed = warm_up.warm(wanted("app:v1", {"linux/s390x"}));
    REQUIRE_FALSE(warmed.ok());
    CHECK_THAT(warmed.error().message, Contains("linux/s390x"));
    CHECK(admin::exitCodeFor(warmed.error()) == common::kExitConfig);
  }
  SECTION("a blob that does not hash to its digest is caught") {
    proxy.corrupt_blobs = true;
    const auto warmed = warm_up.warm(wanted("app:v1"));
    REQUIRE_FALSE(warmed.ok());
    CHECK(warmed.error().kind == admin::FetchError::Kind::Digest);
    CHECK(admin::exitCodeFor(warmed.error()) == common::kExitUnavailable);
    CHECK(warm_up.totals().failed == 1);
  }
  SECTION("a Docker-Content-Digest that does not match the body is caught") {
    proxy.wrong_digest_header = true;
    const auto warmed = warm_up.warm(wanted("app:v1"));
    REQUIRE_FALSE(warmed.ok());
    CHECK_THAT(warmed.error().message, Contains("Docker-Content-Digest"));
  }
  SECTION("an unknown tag: the proxy's error code in the message") {
    const auto warmed = warm_up.warm(wanted("app:v2"));
    REQUIRE_FALSE(warmed.ok());
    CHECK(warmed.error().status == 404);
    CHECK_THAT(warmed.error().message, Contains("MANIFEST_UNKNOWN"));
  }
  SECTION("an image from a registry the proxy does not serve: refused") {
    const auto warmed = warm_up.warm(wanted("ghcr.io/library/app:v1"));
    REQUIRE_FALSE(warmed.ok());
    CHECK(warmed.error().status == 403);
  }
  SECTION("verifyEndToEnd fetches the sample again and checks it") {
    const auto warmed = warm_up.warm(wanted("app:v1"));
    REQUIRE(warmed.ok());
    admin::Config config;
    config.proxy_url = proxy.server.url();
    config.tls_url.clear();
    const auto manifest_gets =
        proxy.server.count("GET", "/v2/library/app/manifests/" + amd64_digest);
    admin::verifyEndToEnd(http, config, {}, warmed.value());
    CHECK(proxy.server.count("GET", "/v2/library/app/manifests/" + amd64_digest) ==
          manifest_gets + 1);
    CHECK(proxy.blobGets(warmed->blob_digest) == 2);

    proxy.corrupt_blobs = true;
    try {
      admin::verifyEndToEnd(http, config, {}, warmed.value());
      FAIL("no error");
    } catch (const admin::StepError& e) {
      CHECK(e.exitCode() == common::kExitUnavailable);
      CHECK_THAT(e.what(), Contains("end-to-end check failed"));
    }
  }
}

TEST_CASE("WarmUp: a single-platform image", "[admin][warm-up]") {
  FakeProxy proxy;
  const auto body = proxy.image("amd64", {"only layer"});
  const auto digest = proxy.addManifest(body, kManifestType, "latest");
  common::HttpClient http;
  const admin::RegistryClient client(http, admin::Endpoint{proxy.server.url(), "", std::nullopt});
  admin::WarmUp warm_up(client);

  const auto warmed = warm_up.warm(wanted("app", {"linux/arm64"}));

  REQUIRE(warmed.ok());
  CHECK(warmed->digest == digest);
  CHECK(warmed->manifest_digest == digest);
  CHECK(warm_up.totals().manifests == 1);
  CHECK(warm_up.totals().blobs == 2);
  CHECK(warm_up.totals().bytes == std::string(R"({"architecture":"amd64"})").size() + 10);
}

TEST_CASE("parseStatus: the fields admin-setup reads from /status", "[admin][verify]") {
  const auto status = admin::parseStatus(
      R"({"version":"0.1.0","uptime_seconds":5,"ready":true,
          "upstreams":[{"name":"docker.io","reachable":true},{"name":"ghcr.io"}],
          "cache":{"bytes":0},"requests":{"hits":0,"misses":0}})");
  REQUIRE(status.ok());
  CHECK(status->ready);
  CHECK(status->version == "0.1.0");
  CHECK(status->upstreams == std::vector<std::string>{"docker.io", "ghcr.io"});

  CHECK_FALSE(admin::parseStatus(R"({"ready":"yes"})")->ready);
  CHECK_FALSE(admin::parseStatus("[]").ok());
}
