#include "blobs.hpp"
#include "fake_registry.hpp"
#include "fetcher.hpp"
#include "fs_blob_store.hpp"
#include "manifests.hpp"
#include "metadata.hpp"
#include "registry_api.hpp"
#include "temp_dir.hpp"
#include "upstream.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <thread>

using namespace std::chrono_literals;

namespace {

const std::string kOciManifest = "application/vnd.oci.image.manifest.v1+json";

std::string randomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) {
    c = static_cast<char>(rng());
  }
  return out;
}

// The proxy's parts on a temporary directory, in front of a FakeRegistry.
struct Harness {
  explicit Harness(std::uint64_t min_free_bytes = 0)
      : store(dir.path(), min_free_bytes), metadata(store, clock), fetcher(store, metadata),
        manifests(metadata, clock), blobs(store, metadata, fetcher) {
    config.upstreams.push_back({});
    config.upstreams.back().name = "docker.io";
    config.upstreams.back().url = registry.url();
    config.upstreams.back().tag_ttl = 5min;
    config.upstreams.back().request_timeout = 5s;
    config.upstreams.back().stall_timeout = 5s;
    config.default_upstream = "docker.io";
    upstreams = std::make_unique<proxy::Upstreams>(config, http, clock);
    api = std::make_unique<proxy::RegistryApi>(*upstreams, metadata, manifests, blobs);
  }

  proxy::ApiResponse get(const std::string& target, std::optional<std::string> range = {},
                         const std::string& method = "GET") {
    return api->handle(proxy::ApiRequest{method, target, std::nullopt, std::move(range)});
  }

  testsupport::FakeRegistry registry;
  testsupport::TempDir dir;
  common::FakeClock clock;
  common::HttpClient http;
  proxy::ProxyConfig config;
  proxy::FsBlobStore store;
  proxy::Metadata metadata;
  proxy::BlobFetcher fetcher;
  proxy::ManifestService manifests;
  proxy::BlobService blobs;
  std::unique_ptr<proxy::Upstreams> upstreams;
  std::unique_ptr<proxy::RegistryApi> api;
};

// Reads a whole answer body the way the server sends it; nothing when the body was cut.
std::optional<std::string> body(proxy::ApiResponse& response) {
  if (!response.blob) {
    return response.body;
  }
  auto& blob = *response.blob;
  proxy::BlobReadHandle& handle = blob.download ? blob.download->reader() : *blob.file;
  std::string out;
  std::uint64_t position = blob.offset;
  const auto end = blob.length ? blob.offset + *blob.length : UINT64_MAX;
  while (position < end) {
    std::uint64_t available = end;
    if (blob.download) {
      auto readable = blob.download->waitReadable(position);
      if (!readable.ok()) {
        return std::nullopt;
      }
      if (readable.value() <= position) {
        break;
      }
      available = std::min(end, readable.value());
    }
    std::string chunk(available - position, '\0');
    const auto n = handle.read(position, chunk.data(), chunk.size());
    if (n <= 0) {
      return std::nullopt;
    }
    out.append(chunk.data(), static_cast<size_t>(n));
    position += static_cast<std::uint64_t>(n);
  }
  return out;
}

std::string header(const proxy::ApiResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) {
      return value;
    }
  }
  return "";
}

} // namespace

TEST_CASE("RegistryApi: a tag inside its lifetime costs the upstream nothing",
          "[proxy][api][manifests]") {
  Harness h;
  const std::string body = R"({"schemaVersion":2,"layers":[]})";
  const auto digest = h.registry.addManifest("library/app", "v1", body);

  auto first = h.get("/v2/library/app/manifests/v1");
  REQUIRE(first.status == 200);
  CHECK(first.body == body);
  CHECK(header(first, "Docker-Content-Digest") == digest);
  CHECK(header(first, "Content-Type") == kOciManifest);
  CHECK(first.source == "upstream");
  CHECK(h.registry.countContaining("*", "/manifests/") == 1);

  auto second = h.get("/v2/library/app/manifests/v1");
  CHECK(second.status == 200);
  CHECK(second.body == body);
  CHECK(second.source == "cache");
  CHECK(h.registry.countContaining("*", "/manifests/") == 1);

  SECTION("HEAD answers digest and length from the cache too") {
    auto head = h.get("/v2/library/app/manifests/v1", std::nullopt, "HEAD");
    CHECK(head.status == 200);
    CHECK(head.content_length == body.size());
    CHECK(h.registry.countContaining("*", "/manifests/") == 1);
  }
  SECTION("after its lifetime the tag is revalidated with a HEAD, never a GET") {
    h.clock.advance(6min);
    auto third = h.get("/v2/library/app/manifests/v1");
    CHECK(third.status == 200);
    CHECK(h.registry.countContaining("HEAD", "/manifests/") == 1);
    CHECK(h.registry.countContaining("GET", "/manifests/") == 1);
  }
  SECTION("a moved tag is fetched again after its lifetime") {
    const std::string moved = R"({"schemaVersion":2,"layers":[],"moved":true})";
    const auto moved_digest = h.registry.addManifest("library/app", "v1", moved);
    CHECK(h.get("/v2/library/app/manifests/v1").body == body);
    h.clock.advance(6min);
    auto third = h.get("/v2/library/app/manifests/v1");
    CHECK(third.body == moved);
    CHECK(header(third, "Docker-Content-Digest") == moved_digest);
  }
  SECTION("the upstream down: the cached tag is served stale") {
    h.registry.down = true;
    h.clock.advance(6min);
    auto stale = h.get("/v2/library/app/manifests/v1");
    CHECK(stale.status == 200);
    CHECK(stale.body == body);
    CHECK(stale.source == "stale");
  }
  SECTION("by digest it is served from the cache") {
    auto by_digest = h.get("/v2/library/app/manifests/" + digest);
    CHECK(by_digest.status == 200);
    CHECK(by_digest.body == body);
    CHECK(h.registry.countContaining("*", "/manifests/") == 1);
  }
}

TEST_CASE("RegistryApi: what is not cached fails clearly when the upstream is down",
          "[proxy][api]") {
  Harness h;
  h.registry.down = true;
  auto response = h.get("/v2/library/app/manifests/v1");
  CHECK(response.status == 503);
  CHECK(response.error_code == "UNAVAILABLE");
  CHECK_THAT(response.body, Catch::Contains("unreachable") && Catch::Contains("not cached"));

  SECTION("an unknown manifest is MANIFEST_UNKNOWN") {
    h.registry.down = false;
    auto missing = h.get("/v2/library/app/manifests/v1");
    CHECK(missing.status == 404);
    CHECK(missing.error_code == "MANIFEST_UNKNOWN");
  }
}

TEST_CASE("RegistryApi: a blob is downloaded once and then served from the store",
          "[proxy][api][blobs]") {
  Harness h;
  const auto bytes = randomBytes(300'000, 1);
  const auto digest = h.registry.addBlob("library/app", bytes);
  const auto path = "/v2/library/app/blobs/" + digest;

  auto first = h.get(path);
  REQUIRE(first.status == 200);
  CHECK(first.content_length == bytes.size());
  CHECK(body(first) == bytes);
  CHECK(header(first, "Docker-Content-Digest") == digest);
  h.fetcher.drain(5s);

  auto second = h.get(path);
  REQUIRE(second.status == 200);
  CHECK(second.source == "cache");
  CHECK(body(second) == bytes);
  CHECK(h.registry.count("GET", path) == 1);

  SECTION("ranges on a cached blob") {
    auto partial = h.get(path, "bytes=10-19");
    CHECK(partial.status == 206);
    CHECK(header(partial, "Content-Range") == "bytes 10-19/300000");
    CHECK(body(partial) == bytes.substr(10, 10));
    auto refused = h.get(path, "bytes=300000-");
    CHECK(refused.status == 416);
    CHECK(header(refused, "Content-Range") == "bytes */300000");
  }
  SECTION("another repository must be confirmed by the upstream first") {
    auto other = h.get("/v2/library/other/blobs/" + digest);
    CHECK(other.status == 404);
    CHECK(other.error_code == "BLOB_UNKNOWN");
    h.registry.addBlob("library/other", bytes);
    auto confirmed = h.get("/v2/library/other/blobs/" + digest);
    CHECK(confirmed.status == 200);
    CHECK(body(confirmed) == bytes);
    CHECK(h.registry.count("GET", "/v2/library/other/blobs/" + digest) == 0);
  }
}

TEST_CASE("RegistryApi: concurrent requests for a missing blob share one download",
          "[proxy][api][blobs]") {
  Harness h;
  const auto bytes = randomBytes(2'000'000, 2);
  const auto digest = h.registry.addBlob("library/app", bytes);
  h.registry.blob_pause_ms = 300;
  const auto path = "/v2/library/app/blobs/" + digest;
  h.get("/v2/library/app/blobs/" + digest, std::nullopt, "HEAD"); // links the repository

  std::vector<std::optional<std::string>> bodies(20);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < bodies.size(); ++i) {
    clients.emplace_back([&, i] {
      auto response = h.get(path);
      bodies[i] = response.status == 200 ? body(response) : std::nullopt;
    });
  }
  for (auto& client : clients) {
    client.join();
  }
  for (const auto& received : bodies) {
    CHECK(received == bytes);
  }
  CHECK(h.registry.count("GET", path) == 1);
}

TEST_CASE("RegistryApi: a corrupted blob is never served whole and never kept",
          "[proxy][api][blobs]") {
  Harness h;
  const auto bytes = randomBytes(100'000, 3);
  const auto digest = h.registry.addBlob("library/app", bytes);
  h.registry.corrupt = true;
  const auto path = "/v2/library/app/blobs/" + digest;

  auto response = h.get(path);
  if (response.status == 200) {
    CHECK_FALSE(body(response).has_value());
  }
  h.fetcher.drain(5s);
  CHECK_FALSE(h.store.stat(*proxy::Digest::parse(digest)));
  CHECK(std::filesystem::is_empty(h.dir.path() / "tmp"));

  SECTION("the next request tries the upstream again") {
    h.registry.corrupt = false;
    auto retry = h.get(path);
    CHECK(body(retry) == bytes);
    CHECK(h.registry.count("GET", path) == 2);
  }
}

TEST_CASE("RegistryApi: a HEAD on a missing blob asks the upstream with HEAD only",
          "[proxy][api][blobs]") {
  Harness h;
  const auto digest = h.registry.addBlob("library/app", "tiny");
  auto head = h.get("/v2/library/app/blobs/" + digest, std::nullopt, "HEAD");
  CHECK(head.status == 200);
  CHECK(head.content_length == 4u);
  CHECK(h.registry.countContaining("GET", "/blobs/") == 0);
  CHECK(h.registry.countContaining("HEAD", "/blobs/") == 1);
}

TEST_CASE("RegistryApi: tags/list from the upstream, or from the cache when it is down",
          "[proxy][api]") {
  Harness h;
  h.registry.addManifest("library/app", "v1", R"({"a":1})");
  h.registry.addManifest("library/app", "v2", R"({"a":2})");
  auto live = h.get("/v2/library/app/tags/list");
  CHECK(live.status == 200);
  CHECK_THAT(live.body, Catch::Contains("v1") && Catch::Contains("v2"));

  h.get("/v2/library/app/manifests/v1");
  h.get("/v2/library/app/manifests/v2");
  h.registry.down = true;
  auto cached = h.get("/v2/library/app/tags/list?n=1");
  CHECK(cached.status == 200);
  CHECK(cached.source == "stale");
  CHECK(cached.body == R"({"name":"library/app","tags":["v1"]})");
  CHECK(header(cached, "Link") == "</v2/library/app/tags/list?last=v1&n=1>; rel=\"next\"");
}

TEST_CASE("RegistryApi: tags/list pages a list the upstream sent whole", "[proxy][api]") {
  Harness h;
  for (const auto* tag : {"v3", "v1", "v2"}) {
    h.registry.addManifest("library/app", tag, std::string(R"({"t":")") + tag + "\"}");
  }
  // The fake, like the reference registry, ignores n and last.
  auto first = h.get("/v2/library/app/tags/list?n=2");
  CHECK(first.status == 200);
  CHECK(first.body == R"({"name":"library/app","tags":["v1","v2"]})");
  CHECK(header(first, "Link") == "</v2/library/app/tags/list?last=v2&n=2>; rel=\"next\"");
  auto second = h.get("/v2/library/app/tags/list?n=2&last=v2");
  CHECK(second.body == R"({"name":"library/app","tags":["v3"]})");
  CHECK(header(second, "Link").empty());
}

TEST_CASE("RegistryApi: a page size that is not a number is refused", "[proxy][api]") {
  Harness h;
  for (const auto* target : {"/v2/library/app/tags/list?n=abc", "/v2/_catalog?n=-1"}) {
    auto response = h.get(target);
    CHECK(response.status == 400);
    CHECK_THAT(response.body, Catch::Contains("PAGINATION_NUMBER_INVALID"));
  }
}

TEST_CASE("RegistryApi: the catalog lists cached repositories", "[proxy][api]") {
  Harness h;
  h.registry.addManifest("library/app", "v1", R"({"a":1})");
  CHECK(h.get("/v2/_catalog").body == R"({"repositories":[]})");
  h.get("/v2/library/app/manifests/v1");
  CHECK(h.get("/v2/_catalog").body == R"({"repositories":["library/app"]})");
}

TEST_CASE("RegistryApi: errors carry the OCI error body", "[proxy][api]") {
  Harness h;
  auto response = h.get("/v2/Bad/manifests/v1");
  CHECK(response.status == 400);
  CHECK_THAT(response.body, Catch::StartsWith(R"({"errors":[{"code":"NAME_INVALID")"));
  CHECK(h.registry.server().requests().empty());
}

TEST_CASE("RegistryApi: with the disk full, blobs still reach the client, uncached",
          "[proxy][api][blobs]") {
  // A free-space reserve larger than any disk: the store has no room for anything.
  Harness h(UINT64_MAX / 2);
  const auto bytes = randomBytes(200'000, 4);
  const auto digest = h.registry.addBlob("library/app", bytes);
  const auto path = "/v2/library/app/blobs/" + digest;

  auto response = h.get(path);
  REQUIRE(response.status == 200);
  REQUIRE(response.stream);
  std::string received;
  CHECK(response.stream([&](std::string_view data) {
    received.append(data);
    return true;
  }));
  CHECK(received == bytes);
  h.fetcher.drain(5s);
  CHECK_FALSE(h.store.stat(*proxy::Digest::parse(digest)));

  SECTION("manifests are still answered") {
    h.registry.addManifest("library/app", "v1", R"({"a":1})");
    CHECK(h.get("/v2/library/app/manifests/v1").status == 200);
  }
}
