#include "api_harness.hpp"
#include "common/errors.hpp"
#include "log_capture.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

using namespace std::chrono_literals;
using testsupport::body;
using testsupport::Harness;
using testsupport::HarnessOptions;
using testsupport::header;
using testsupport::randomBytes;

namespace {

const std::string kOciManifest = "application/vnd.oci.image.manifest.v1+json";

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

TEST_CASE("RegistryApi: a rate-limited or stalled upstream gets cached tags served stale",
          "[proxy][api][manifests]") {
  Harness h(HarnessOptions{0, 500ms, std::nullopt, 0});
  const std::string body = R"({"schemaVersion":2,"layers":[]})";
  h.registry.addManifest("library/app", "v1", body);
  h.registry.addManifest("library/app", "v2", R"({"schemaVersion":2,"v":2})");
  REQUIRE(h.get("/v2/library/app/manifests/v1").status == 200);
  h.clock.advance(6min);
  testsupport::LogCapture log("manifests");

  SECTION("429 with Retry-After: stale for what is cached, 429 for what is not") {
    h.registry.failWith(429, {{"Retry-After", "120"}});
    auto stale = h.get("/v2/library/app/manifests/v1");
    CHECK(stale.status == 200);
    CHECK(stale.body == body);
    CHECK(stale.source == "stale");
    CHECK(h.registry.count("HEAD", "/v2/library/app/manifests/v1") == 1);
    CHECK_THAT(log.text(), Catch::Contains("[warning] upstream unavailable, serving cached "
                                           "manifest: upstream=docker.io repo=library/app tag=v1"));

    auto uncached = h.get("/v2/library/app/manifests/v2");
    CHECK(uncached.status == 429);
    CHECK(uncached.error_code == "TOOMANYREQUESTS");
    CHECK(header(uncached, "Retry-After") == "120");
    CHECK_THAT(uncached.body, Catch::Contains("rate limit") && Catch::Contains("not cached"));
  }
  SECTION("a stall past the request timeout: stale for what is cached, 503 for what is not") {
    h.registry.stall_ms = 10'000;
    const auto started = std::chrono::steady_clock::now();
    auto stale = h.get("/v2/library/app/manifests/v1");
    // The request timeout (500 ms) decided, not the end of the stall.
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    CHECK(stale.status == 200);
    CHECK(stale.body == body);
    CHECK(stale.source == "stale");
    CHECK_THAT(log.text(),
               Catch::Contains("[warning] upstream unavailable, serving cached "
                               "manifest: upstream=docker.io repo=library/app tag=v1") &&
                   Catch::Contains("timed out"));

    auto uncached = h.get("/v2/library/app/manifests/v2");
    CHECK(uncached.status == 503);
    CHECK(uncached.error_code == "UNAVAILABLE");
    CHECK_THAT(uncached.body, Catch::Contains("not cached"));
  }
}

TEST_CASE("RegistryApi: Docker's and containerd's Accept lists find a fresh tag in the cache",
          "[proxy][api][manifests]") {
  Harness h;
  const auto index = R"({"schemaVersion":2,"manifests":[]})";
  h.registry.addManifest("library/app", "v1", index, "application/vnd.oci.image.index.v1+json");
  // containerd 1.6's resolver (one header); Docker 20.10 sends the same types as headers of
  // their own, which the server joins into one list (RFC 9110 section 5.3).
  const std::string containerd =
      "application/vnd.docker.distribution.manifest.v2+json, "
      "application/vnd.docker.distribution.manifest.list.v2+json, "
      "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";
  REQUIRE(h.getAccepting("/v2/library/app/manifests/v1", containerd).status == 200);
  const auto upstream_requests = h.registry.countContaining("*", "/manifests/");

  for (const auto& accept : {containerd, std::string("application/vnd.oci.image.index.v1+json")}) {
    for (const char* method : {"HEAD", "GET"}) {
      auto answer = h.getAccepting("/v2/library/app/manifests/v1", accept, method);
      CHECK(answer.status == 200);
      CHECK(answer.source == "cache");
    }
  }
  CHECK(h.registry.countContaining("*", "/manifests/") == upstream_requests);
}

TEST_CASE("RegistryApi: referrers come from the upstream, an empty index when it cannot answer",
          "[proxy][api]") {
  Harness h;
  const auto subject = h.registry.addManifest("library/app", "v1", R"({"schemaVersion":2})");
  const std::string all =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
      R"({"digest":"sha256:aa","artifactType":"application/vnd.example.sbom+json"},)"
      R"({"digest":"sha256:bb","artifactType":"application/vnd.example.sig"}]})";
  const std::string sboms =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
      R"({"digest":"sha256:aa","artifactType":"application/vnd.example.sbom+json"}]})";
  h.registry.addReferrers("library/app", subject, all);
  h.registry.addReferrers("library/app", subject, sboms, "application/vnd.example.sbom+json");
  const auto path = "/v2/library/app/referrers/" + subject;

  auto listed = h.get(path);
  CHECK(listed.status == 200);
  CHECK(listed.body == all);
  CHECK(header(listed, "Content-Type") == "application/vnd.oci.image.index.v1+json");
  CHECK(header(listed, "OCI-Filters-Applied").empty());

  SECTION("the artifactType filter reaches the upstream, and its answer comes back") {
    auto filtered = h.get(path + "?artifactType=application%2Fvnd.example.sbom%2Bjson");
    CHECK(filtered.status == 200);
    CHECK(filtered.body == sboms);
    CHECK(header(filtered, "OCI-Filters-Applied") == "artifactType");
    CHECK(h.registry.server().requests().back().query ==
          "artifactType=application%2Fvnd.example.sbom%2Bjson");
  }
  SECTION("an upstream that answers 503 gives the empty index") {
    h.registry.down = true;
    auto empty = h.get(path);
    CHECK(empty.status == 200);
    CHECK(header(empty, "Content-Type") == "application/vnd.oci.image.index.v1+json");
    CHECK(empty.body ==
          R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
          R"("manifests":[]})");
  }
  SECTION("an upstream without the referrers API (404) gives the empty index") {
    auto none = h.get("/v2/library/other/referrers/" + subject);
    CHECK(none.status == 200);
    CHECK_THAT(none.body, Catch::Contains(R"("manifests":[])"));
  }
}

TEST_CASE("RegistryApi: a manifest cached for one repository is confirmed for another by HEAD",
          "[proxy][api][manifests]") {
  Harness h;
  const std::string body = R"({"schemaVersion":2,"private":true})";
  const auto digest = h.registry.addManifest("library/app", "v1", body);
  REQUIRE(h.get("/v2/library/app/manifests/v1").status == 200);
  const auto path = "/v2/library/other/manifests/" + digest;

  SECTION("the upstream lacks it there: 404, the cached bytes are not served") {
    auto refused = h.get(path);
    CHECK(refused.status == 404);
    CHECK(refused.error_code == "MANIFEST_UNKNOWN");
    CHECK_THAT(refused.body, !Catch::Contains("private"));
    CHECK(h.registry.count("HEAD", path) == 1);
    CHECK(h.registry.count("GET", path) == 0);
  }
  SECTION("the upstream has it there: one HEAD confirms it, no GET, then no request at all") {
    h.registry.addManifest("library/other", "", body);
    auto confirmed = h.get(path);
    CHECK(confirmed.status == 200);
    CHECK(confirmed.body == body);
    CHECK(confirmed.source == "cache");
    auto again = h.get(path);
    CHECK(again.body == body);
    CHECK(h.registry.count("HEAD", path) == 1);
    CHECK(h.registry.count("GET", path) == 0);
  }
}

TEST_CASE("RegistryApi: a disk that fills during a download still gives its clients the blob",
          "[proxy][api][blobs]") {
  // 20 MB free by the disk's account, but uploads fail past 300 kB, as when other downloads
  // fill the disk meanwhile.
  Harness h(HarnessOptions{0, 5s, 300'000, 20'000'000});
  auto& disk = dynamic_cast<testsupport::SmallDiskStore&>(h.store);
  testsupport::LogCapture log("fetcher");
  const auto bytes = randomBytes(12'000'000, 5);
  const auto digest = h.registry.addBlob("library/app", bytes);
  const auto path = "/v2/library/app/blobs/" + digest;
  h.registry.blob_pause_ms = 300;
  h.get(path, std::nullopt, "HEAD"); // links the repository
  REQUIRE(disk.hasRoomFor(0));

  std::vector<std::optional<std::string>> bodies(6);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < bodies.size(); ++i) {
    clients.emplace_back([&, i] {
      auto response = h.get(path);
      if (i == 0) {
        // One client lags: the relay (8 MiB of memory) must wait for it, not drop its bytes.
        std::this_thread::sleep_for(1s);
      }
      bodies[i] = response.status == 200 ? body(response) : std::nullopt;
    });
  }
  for (auto& client : clients) {
    client.join();
  }
  for (const auto& received : bodies) {
    CHECK(received == bytes);
  }
  h.fetcher.drain(5s);
  CHECK(h.registry.count("GET", path) >= 1);
  CHECK_FALSE(h.store.stat(*proxy::Digest::parse(digest)));
  // The download thread lets go of the dropped upload just after it leaves the fetcher.
  for (int i = 0; i < 100 && !std::filesystem::is_empty(h.dir.path() / "tmp"); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  CHECK(std::filesystem::is_empty(h.dir.path() / "tmp"));
  CHECK_THAT(log.text(), Catch::Contains("[warning] disk full, blob not cached, relaying it to "
                                         "its clients: upstream=docker.io repo=library/app"));

  // The store counts as full until the blob that did not fit would fit.
  CHECK(disk.shortage() == bytes.size());
  CHECK_FALSE(disk.hasRoomFor(0));

  SECTION("while full, nothing new is cached, and the client still gets its bytes") {
    const auto other = randomBytes(100'000, 6);
    const auto other_digest = h.registry.addBlob("library/app", other);
    auto passed = h.get("/v2/library/app/blobs/" + other_digest);
    CHECK(passed.status == 200);
    CHECK(body(passed) == other);
    h.fetcher.drain(5s);
    CHECK_FALSE(h.store.stat(*proxy::Digest::parse(other_digest)));
  }
  SECTION("once that much is free, the store takes blobs again") {
    disk.setAvailable(bytes.size() + 1);
    CHECK(disk.shortage() == 0);
    CHECK(disk.hasRoomFor(0));
  }
}

TEST_CASE("RegistryApi: a relayed download that fails verification never ends whole",
          "[proxy][api][blobs]") {
  Harness h(HarnessOptions{0, 5s, 100'000, 10'000'000});
  const auto bytes = randomBytes(1'000'000, 7);
  const auto digest = h.registry.addBlob("library/app", bytes);
  h.registry.corrupt = true;
  h.get("/v2/library/app/blobs/" + digest, std::nullopt, "HEAD");

  auto response = h.get("/v2/library/app/blobs/" + digest);
  REQUIRE(response.status == 200);
  // Relayed, or passed through when the relay had failed before this client looked: either
  // way the body ends short.
  CHECK_FALSE(body(response).has_value());
  h.fetcher.drain(5s);
  CHECK_FALSE(h.store.stat(*proxy::Digest::parse(digest)));
}
