#include "common/manifest.hpp"

#include <catch2/catch.hpp>

using Catch::Matchers::Contains;

TEST_CASE("parseManifest: indexes, manifests and what is refused", "[common][manifest]") {
  const std::string digest = "sha256:" + std::string(64, 'b');
  const auto index = common::parseManifest(
      R"({"schemaVersion":2,"manifests":[{"digest":")" + digest +
          R"(","size":7,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]})",
      "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8");
  REQUIRE(index.ok());
  CHECK(index->index);
  REQUIRE(index->manifests.size() == 1);
  CHECK(index->manifests[0].platform->str() == "linux/arm/v7");
  CHECK(index->manifests[0].size == 7u);

  const auto by_shape = common::parseManifest(
      R"({"schemaVersion":2,"config":{"digest":")" + digest + R"("},"layers":[]})", "");
  REQUIRE(by_shape.ok());
  CHECK_FALSE(by_shape->index);
  CHECK(by_shape->blobs.size() == 1);

  CHECK_THAT(common::parseManifest(R"({"schemaVersion":1,"fsLayers":[]})", "").error(),
             Contains("schema 1"));
  CHECK_THAT(common::parseManifest("not json", "").error(), Contains("not a JSON object"));
  CHECK_THAT(common::parseManifest(R"({"config":{"digest":"md5:x"}})", "").error(),
             Contains("config has no sha256 digest"));
}
