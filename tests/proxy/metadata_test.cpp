#include "fs_blob_store.hpp"
#include "metadata.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

using proxy::Digest;
using proxy::RepositoryName;
using proxy::Tag;

namespace {

const std::string kLayerA = "sha256:" + std::string(64, 'a');
const std::string kLayerB = "sha256:" + std::string(64, 'b');
const std::string kConfig = "sha256:" + std::string(64, 'c');

std::string manifestBody() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"digest":")" +
         kConfig +
         R"(","size":1},)"
         R"("layers":[{"digest":")" +
         kLayerA + R"(","size":1},{"digest":")" + kLayerB + R"(","size":2}]})";
}

} // namespace

TEST_CASE("manifestReferences: names config, layers, children and subject", "[proxy][metadata]") {
  const auto references = proxy::manifestReferences(manifestBody());
  REQUIRE(references.size() == 3);
  CHECK(references[0].str() == kConfig);

  const std::string index = R"({"manifests":[{"digest":")" + kLayerA +
                            R"("}],"subject":{"digest":")" + kLayerB + R"("}})";
  CHECK(proxy::manifestReferences(index).size() == 2);
  CHECK(proxy::manifestReferences("not json").empty());
  CHECK(proxy::manifestReferences(R"({"layers":[{"digest":"../../x"}]})").empty());
}

TEST_CASE("Metadata: a stored manifest links what it references to its repository",
          "[proxy][metadata]") {
  testsupport::TempDir dir;
  proxy::FsBlobStore store(dir.path());
  common::FakeClock clock;
  proxy::Metadata metadata(store, clock);
  const auto repository = *RepositoryName::parse("library/app");
  const auto other = *RepositoryName::parse("library/other");
  const auto body = manifestBody();
  const auto digest = Digest::sha256Of(body);

  REQUIRE(metadata.putManifest("docker.io", repository,
                               {digest, "application/vnd.oci.image.manifest.v1+json", body}));
  CHECK(metadata.linked("docker.io", repository, digest));
  CHECK(metadata.linked("docker.io", repository, *Digest::parse(kLayerA)));
  CHECK(metadata.linked("docker.io", repository, *Digest::parse(kConfig)));

  SECTION("another repository or upstream may not read it") {
    CHECK_FALSE(metadata.linked("docker.io", other, *Digest::parse(kLayerA)));
    CHECK_FALSE(metadata.linked("ghcr.io", repository, *Digest::parse(kLayerA)));
  }
  SECTION("the bytes and type come back exactly") {
    auto cached = metadata.manifest(digest);
    REQUIRE(cached);
    CHECK(cached->body == body);
    CHECK(cached->media_type == "application/vnd.oci.image.manifest.v1+json");
    CHECK(metadata.manifestRecord(digest)->references.size() == 3);
  }
  SECTION("all of it survives a restart") {
    proxy::Metadata reopened(store, clock);
    CHECK(reopened.linked("docker.io", repository, *Digest::parse(kLayerB)));
    CHECK(reopened.manifest(digest)->body == body);
    CHECK(reopened.repositories("docker.io") == std::vector<std::string>{"library/app"});
  }
}

TEST_CASE("Metadata: tag records persist with their validation time", "[proxy][metadata]") {
  testsupport::TempDir dir;
  proxy::FsBlobStore store(dir.path());
  common::FakeClock clock;
  const auto repository = *RepositoryName::parse("team/app");
  const auto tag = *Tag::parse("v1");
  const auto digest = Digest::sha256Of("m");
  {
    proxy::Metadata metadata(store, clock);
    CHECK_FALSE(metadata.tag("ghcr.io", repository, tag));
    metadata.putTag("ghcr.io", repository, tag, {digest, "type", 1, clock.now()});
  }
  proxy::Metadata metadata(store, clock);
  auto record = metadata.tag("ghcr.io", repository, tag);
  REQUIRE(record);
  CHECK(record->digest == digest);
  CHECK(record->validated_at == clock.now());
  CHECK(metadata.tags("ghcr.io", repository) == std::vector<std::string>{"v1"});
  CHECK(metadata.repositories("ghcr.io") == std::vector<std::string>{"team/app"});

  SECTION("a removed tag is gone") {
    metadata.removeTag("ghcr.io", repository, tag);
    CHECK_FALSE(metadata.tag("ghcr.io", repository, tag));
  }
}
