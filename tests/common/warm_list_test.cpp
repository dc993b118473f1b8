#include "common/errors.hpp"
#include "common/warm_list.hpp"

#include <catch2/catch.hpp>

TEST_CASE("parseWarmImages: separators, platforms and duplicates", "[common][warm]") {
  const auto images = common::parseWarmImages(
      "alpine:3.20\nbusybox  alpine:3.20,\tnginx=linux/arm/v6", {}, "DCP_WARM_IMAGES");
  REQUIRE(images.size() == 3);
  CHECK(images[0].platforms.empty());
  CHECK(images[1].image.str() == "docker.io/library/busybox:latest");
  REQUIRE(images[2].platforms.size() == 1);
  CHECK(images[2].platforms[0].str() == "linux/arm/v6");
  CHECK(common::parsePlatforms("all").empty());
  CHECK(common::parsePlatforms("").empty());
}

TEST_CASE("parseWarmImages: a bad entry is named with its source", "[common][warm]") {
  CHECK_THROWS_WITH(common::parseWarmImages("alpine=", {}, "DCP_WARM_IMAGES"),
                    Catch::Matchers::StartsWith("DCP_WARM_IMAGES: \"alpine=\" has '=' but no "));
  CHECK_THROWS_WITH(common::parseWarmImages("Alpine:3.20", {}, "warm.images"),
                    Catch::Matchers::StartsWith("warm.images: "));
  CHECK_THROWS_WITH(common::parsePlatforms("linux"),
                    Catch::Matchers::Contains("expected all or os/architecture"));
}
