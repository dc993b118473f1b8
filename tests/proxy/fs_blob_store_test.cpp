#include "common/errors.hpp"
#include "fs_blob_store.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fstream>

namespace fs = std::filesystem;
using proxy::Digest;
using proxy::FsBlobStore;

namespace {

void writeText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::string readAll(proxy::BlobReadHandle& handle, size_t size) {
  std::string out(size, '\0');
  REQUIRE(handle.read(0, out.data(), size) == static_cast<ssize_t>(size));
  return out;
}

} // namespace

TEST_CASE("FsBlobStore: an upload written to disk while it grows commits intact",
          "[proxy][storage]") {
  testsupport::TempDir dir;
  FsBlobStore store(dir.path());
  // Several times the step at which written pages are sent to disk, in uneven pieces.
  std::string bytes(20 * 1024 * 1024 + 12345, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  }
  const auto digest = Digest::sha256Of(bytes);

  auto writer = store.create();
  REQUIRE(writer.ok());
  for (size_t offset = 0; offset < bytes.size(); offset += 300 * 1024 + 7) {
    REQUIRE((*writer)->append(std::string_view(bytes).substr(offset, 300 * 1024 + 7)).ok());
  }
  CHECK((*writer)->written() == bytes.size());
  auto committed = store.commit(**writer, digest);
  REQUIRE(committed.ok());
  REQUIRE(committed.value());

  auto handle = store.open(digest);
  REQUIRE(handle);
  CHECK(readAll(*handle, bytes.size()) == bytes);
}

TEST_CASE("FsBlobStore: a committed upload is readable under its digest", "[proxy][storage]") {
  testsupport::TempDir dir;
  FsBlobStore store(dir.path());
  const std::string bytes = "layer bytes";
  const auto digest = Digest::sha256Of(bytes);

  auto writer = store.create();
  REQUIRE(writer.ok());
  REQUIRE((*writer)->append("layer ").ok());
  REQUIRE((*writer)->append("bytes").ok());
  CHECK_FALSE(store.stat(digest));

  auto committed = store.commit(**writer, digest);
  REQUIRE(committed.ok());
  CHECK(committed.value());
  REQUIRE(store.stat(digest));
  CHECK(store.stat(digest)->size == bytes.size());
  auto handle = store.open(digest);
  REQUIRE(handle);
  CHECK(readAll(*handle, bytes.size()) == bytes);
  CHECK(store.list() == std::vector<Digest>{digest});

  SECTION("a mismatching digest is never stored") {
    auto other = store.create();
    REQUIRE((*other)->append("tampered").ok());
    const auto claimed = Digest::sha256Of("original");
    auto result = store.commit(**other, claimed);
    REQUIRE(result.ok());
    CHECK_FALSE(result.value());
    CHECK_FALSE(store.stat(claimed));
    CHECK(fs::is_empty(dir.path() / "tmp"));
  }
  SECTION("an abandoned upload leaves nothing behind") {
    {
      auto abandoned = store.create();
      REQUIRE((*abandoned)->append("partial").ok());
    }
    CHECK(fs::is_empty(dir.path() / "tmp"));
  }
  SECTION("last use is recorded") {
    const auto when = common::Clock::TimePoint(std::chrono::seconds(1'600'000'000));
    store.touch(digest, when);
    CHECK(store.stat(digest)->last_used == when);
  }
}

TEST_CASE("FsBlobStore: leftovers of a crash are swept at start", "[proxy][storage]") {
  testsupport::TempDir dir;
  const auto tags = dir.path() / "meta" / "repositories" / "docker.io" / "library" / "x" / "_tags";
  {
    FsBlobStore store(dir.path());
    REQUIRE(store.putMeta("repositories/docker.io/library/x/_tags/v1", "record"));
  }
  writeText(dir.path() / "tmp" / "deadbeef", "half a layer");

  SECTION("an upload in progress") {
    FsBlobStore store(dir.path());
    CHECK(store.sweptAtStart() == 1);
    CHECK(fs::is_empty(dir.path() / "tmp"));
  }
  SECTION("metadata writes in progress, at any depth, and nothing else") {
    // What common::writeFileAtomically leaves when the process dies before its rename.
    writeText(tags / ".v1.tmp-3f9a0c12d4e5b6a7", "half a record");
    writeText(dir.path() / "meta" / "manifests" / "sha256" / ".ab12.tmp-0123456789abcdef", "{");
    writeText(tags / ".v2.tmp-notours", "kept: not a temporary name");
    FsBlobStore store(dir.path());
    CHECK(store.sweptAtStart() == 3);
    CHECK_FALSE(fs::exists(tags / ".v1.tmp-3f9a0c12d4e5b6a7"));
    CHECK_FALSE(
        fs::exists(dir.path() / "meta" / "manifests" / "sha256" / ".ab12.tmp-0123456789abcdef"));
    CHECK(fs::exists(tags / ".v2.tmp-notours"));
    CHECK(store.getMeta("repositories/docker.io/library/x/_tags/v1") == "record");
  }
  SECTION("the layout file of a first start that crashed") {
    testsupport::TempDir fresh;
    writeText(fresh.path() / ".docker-cache-proxy.layout.tmp-a1b2c3", "docker-cache-proxy c");
    CHECK_NOTHROW(FsBlobStore(fresh.path()));
    CHECK_FALSE(fs::exists(fresh.path() / ".docker-cache-proxy.layout.tmp-a1b2c3"));
  }
}

TEST_CASE("FsBlobStore: a root it does not understand is refused, never touched",
          "[proxy][storage]") {
  testsupport::TempDir dir;

  SECTION("a newer layout version") {
    writeText(dir.path() / "docker-cache-proxy.layout", "docker-cache-proxy cache layout 2\n");
    writeText(dir.path() / "blobs" / "x", "keep me");
    CHECK_THROWS_WITH(FsBlobStore(dir.path()),
                      Catch::Contains("layout 1") && Catch::Contains("untouched"));
    CHECK(fs::exists(dir.path() / "blobs" / "x"));
  }
  SECTION("a directory of something else (the reference registry's storage)") {
    writeText(dir.path() / "docker" / "registry" / "v2" / "x", "not ours");
    CHECK_THROWS_AS(FsBlobStore(dir.path()), common::SetupError);
    CHECK_THROWS_WITH(FsBlobStore(dir.path()), Catch::Contains("\"docker\""));
    CHECK_FALSE(fs::exists(dir.path() / "docker-cache-proxy.layout"));
  }
  SECTION("an existing cache of this layout opens") {
    { FsBlobStore first(dir.path()); }
    CHECK_NOTHROW(FsBlobStore(dir.path()));
  }
}

TEST_CASE("FsBlobStore: metadata keys stay inside the store", "[proxy][storage]") {
  testsupport::TempDir dir;
  FsBlobStore store(dir.path() / "cache");
  CHECK(store.putMeta("repositories/docker.io/library/x/_tags/v1", "{}"));
  CHECK(store.getMeta("repositories/docker.io/library/x/_tags/v1") == "{}");
  CHECK(store.listMeta("repositories/docker.io/library/x/_tags") == std::vector<std::string>{"v1"});

  CHECK_FALSE(store.putMeta("../escape", "x"));
  CHECK_FALSE(store.putMeta("a/../../escape", "x"));
  CHECK_FALSE(store.putMeta("/abs", "x"));
  CHECK_FALSE(fs::exists(dir.path() / "escape"));
  CHECK_FALSE(store.getMeta("../docker-cache-proxy.layout"));
}
