#include "cache_cleaner.hpp"
#include "fs_blob_store.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using proxy::Digest;
using proxy::RepositoryName;

namespace {

const std::string kManifestType = "application/vnd.oci.image.manifest.v1+json";

// A store with images made of one layer each, put there the way a pull does.
struct Cache {
  testsupport::TempDir dir;
  proxy::FsBlobStore store{dir.path(), 0};
  common::FakeClock clock;
  proxy::Metadata metadata{store, clock};
  proxy::CacheCleaner cleaner{store, metadata, clock};

  // Stores a layer of `size` bytes and a manifest naming it, tagged v1 in library/<name>, and
  // records a use of the manifest now. Returns the manifest digest.
  Digest pull(const std::string& name, std::size_t size) {
    const std::string layer(size, name.front());
    const auto layer_digest = Digest::sha256Of(layer);
    auto writer = store.create();
    REQUIRE(writer.ok());
    REQUIRE((*writer)->append(layer).ok());
    REQUIRE(store.commit(**writer, layer_digest).value());
    const auto body = R"({"schemaVersion":2,"mediaType":")" + kManifestType +
                      R"(","config":{"digest":")" + layer_digest.str() +
                      R"(","size":1},"layers":[]})";
    const auto digest = Digest::sha256Of(body);
    const auto repository = *RepositoryName::parse("library/" + name);
    REQUIRE(metadata.putManifest("docker.io", repository, {digest, kManifestType, body}));
    metadata.putTag("docker.io", repository, *proxy::Tag::parse("v1"),
                    {digest, kManifestType, body.size(), clock.now()});
    metadata.recordUse(digest);
    return digest;
  }
};

} // namespace

TEST_CASE("CacheCleaner: unused content expires, counted from its last use", "[proxy][cleanup]") {
  Cache cache;
  proxy::CleanupSettings settings;
  settings.cache.expire_after = 24h;
  cache.cleaner.configure(settings);

  const auto old = cache.pull("old", 1000);
  cache.clock.advance(20h);
  const auto fetched_first = cache.pull("reused", 1000);
  cache.clock.advance(3h);
  cache.metadata.recordUse(old); // used again: its day starts over
  cache.clock.advance(2h);

  SECTION("nothing expires before a day without use") {
    const auto plan = cache.cleaner.runNow(true);
    CHECK(plan.images.empty());
  }

  cache.clock.advance(20h); // old: last used 22 h ago; reused: 25 h ago
  const auto dry = cache.cleaner.runNow(true);
  REQUIRE(dry.images.size() == 1);
  CHECK(dry.images[0].root == fetched_first);
  CHECK(dry.images[0].reason == proxy::RemovalReason::Expired);
  CHECK(cache.store.stat(fetched_first));

  const auto real = cache.cleaner.runNow(false);
  CHECK(real.content == dry.content);
  CHECK_FALSE(cache.store.stat(fetched_first));
  CHECK(cache.store.stat(old));
  CHECK_FALSE(cache.metadata.tag("docker.io", *RepositoryName::parse("library/reused"),
                                 *proxy::Tag::parse("v1")));
  CHECK(cache.metadata.repositories("docker.io") == std::vector<std::string>{"library/old"});
  CHECK(cache.cleaner.status().removed_images.at("expired") == 1);
}

TEST_CASE("CacheCleaner: a warm image is pinned by its tag", "[proxy][cleanup]") {
  Cache cache;
  const auto pinned = cache.pull("pinned", 1000);
  cache.clock.advance(1h);
  const auto other = cache.pull("other", 1000);
  cache.clock.advance(1h);
  cache.pull("newest", 1000);

  proxy::CleanupSettings settings;
  settings.cache.max_size = 2000; // three images of ~1.2 kB: two must go, one is pinned
  settings.pinned.push_back({"docker.io", *RepositoryName::parse("library/pinned"),
                             proxy::Tag::parse("v1"), std::nullopt});
  cache.cleaner.configure(settings);

  const auto plan = cache.cleaner.runNow(false);
  REQUIRE(plan.images.size() == 1);
  CHECK(plan.images[0].root == other);
  CHECK(cache.store.stat(pinned));
  CHECK(cache.cleaner.status().limit == 2000);
}

TEST_CASE("CacheCleaner: deleting a repository forgets it and frees what only it held",
          "[proxy][cleanup]") {
  Cache cache;
  const auto digest = cache.pull("app", 1000);
  const auto repository = *RepositoryName::parse("library/app");

  const auto plan =
      cache.cleaner.remove({"docker.io", repository, std::nullopt, std::nullopt}, false);
  CHECK(plan.content.size() == 2);
  CHECK_FALSE(cache.store.stat(digest));
  CHECK_FALSE(cache.metadata.linked("docker.io", repository, digest));
  CHECK(cache.metadata.repositories("docker.io").empty());
  CHECK(cache.cleaner.inventory().bytes == 0);
}
