#include "common/image_reference.hpp"

#include <catch2/catch.hpp>

namespace {

std::string normalized(const std::string& text) {
  const auto parsed = common::ImageReference::parse(text);
  return parsed ? parsed->str() : "error: " + parsed.error();
}

} // namespace

TEST_CASE("ImageReference: normalized the way Docker does", "[common][reference]") {
  CHECK(normalized("alpine") == "docker.io/library/alpine:latest");
  CHECK(normalized("alpine:3.20") == "docker.io/library/alpine:3.20");
  CHECK(normalized("grafana/grafana:11.0.0") == "docker.io/grafana/grafana:11.0.0");
  CHECK(normalized("docker.io/alpine") == "docker.io/library/alpine:latest");
  CHECK(normalized("index.docker.io/library/alpine:3") == "docker.io/library/alpine:3");
  CHECK(normalized("ghcr.io/home-assistant/home-assistant:stable") ==
        "ghcr.io/home-assistant/home-assistant:stable");
  CHECK(normalized("registry.lan:5000/team/app:v1") == "registry.lan:5000/team/app:v1");
  CHECK(normalized("localhost/app") == "localhost/app:latest");
  CHECK(normalized("127.0.0.1:5001/library/busybox:v1") == "127.0.0.1:5001/library/busybox:v1");

  const std::string digest = "sha256:" + std::string(64, 'a');
  SECTION("a digest pins the manifest, with or without a tag") {
    const auto pinned = common::ImageReference::parse("alpine@" + digest);
    REQUIRE(pinned);
    CHECK(pinned->tag.empty());
    CHECK(pinned->reference() == digest);
    const auto both = common::ImageReference::parse("alpine:3.20@" + digest);
    REQUIRE(both);
    CHECK(both->tag == "3.20");
    CHECK(both->reference() == digest);
  }
  SECTION("bad references say what is wrong") {
    CHECK_THAT(normalized("Alpine"), Catch::Matchers::Contains("bad repository name"));
    CHECK_THAT(normalized("alpine:-x"), Catch::Matchers::Contains("bad tag"));
    CHECK_THAT(normalized("alpine@sha256:abc"), Catch::Matchers::Contains("bad digest"));
    CHECK_THAT(normalized(""), Catch::Matchers::Contains("empty"));
    CHECK_THAT(normalized("a//b"), Catch::Matchers::Contains("bad repository name"));
  }
}

TEST_CASE("Platform: parsing and matching index entries", "[common][reference]") {
  const auto arm64 = common::Platform::parse("linux/arm64");
  REQUIRE(arm64);
  CHECK(arm64->matches({"linux", "arm64", "v8"}));
  CHECK(arm64->matches({"linux", "arm64", ""}));
  CHECK_FALSE(arm64->matches({"linux", "amd64", ""}));

  const auto armv6 = common::Platform::parse("linux/arm/v6");
  REQUIRE(armv6);
  CHECK_FALSE(armv6->matches({"linux", "arm", "v7"}));
  CHECK(common::Platform::parse("linux/arm")->matches({"linux", "arm", "v7"}));

  CHECK_FALSE(common::Platform::parse("amd64"));
  CHECK_FALSE(common::Platform::parse("linux/amd64/v2/x"));
  CHECK_FALSE(common::Platform::parse("linux//amd64"));
}
