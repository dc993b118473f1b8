#include "common/errors.hpp"
#include "config.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Env = std::map<std::string, std::string>;

namespace {

proxy::ProxyConfig loadYaml(const std::string& yaml, const Env& env = {}) {
  testsupport::TempDir dir;
  const auto path = dir.path() / "config.yaml";
  std::ofstream(path) << yaml;
  return proxy::loadConfig(path.string(), env);
}

std::string loadError(const std::string& yaml, const Env& env = {}) {
  try {
    loadYaml(yaml, env);
  } catch (const common::ConfigError& e) {
    return e.what();
  }
  FAIL("loadConfig accepted a configuration it should refuse");
  return {};
}

} // namespace

TEST_CASE("cache config: no limit, no expiry and an empty warm list by default",
          "[proxy][config][cache]") {
  const auto config = proxy::loadConfig(std::nullopt, {});
  CHECK(config.cache.max_size == 0);
  CHECK(config.cache.max_size_percent == 0);
  CHECK(config.cache.high_watermark == 95);
  CHECK(config.cache.low_watermark == 85);
  CHECK(config.cache.expire_after == 0ms);
  CHECK(config.warm.images.empty());
  CHECK(config.warm.refresh_interval == 1h);
}

TEST_CASE("cache config: every key of the file", "[proxy][config][cache]") {
  const auto config = loadYaml(R"(
cache:
  max_size: 50GiB
  high_watermark: 90%
  low_watermark: 70
  expire_after: 30d
  cleanup_interval: 2m
warm:
  platforms: [linux/amd64]
  refresh_interval: 15m
  images:
    - alpine:3.20
    - image: docker.io/library/nginx:1.27
      platforms: [linux/arm64, linux/arm/v7]
)");
  CHECK(config.cache.max_size == 50ull << 30);
  CHECK(config.cache.high_watermark == 90);
  CHECK(config.cache.low_watermark == 70);
  CHECK(config.cache.expire_after == std::chrono::hours(24 * 30));
  CHECK(config.cache.cleanup_interval == 2min);
  CHECK(config.warm.refresh_interval == 15min);
  REQUIRE(config.warm.images.size() == 2);
  CHECK(config.warm.images[0].image.str() == "docker.io/library/alpine:3.20");
  REQUIRE(config.warm.images[0].platforms.size() == 1);
  CHECK(config.warm.images[0].platforms[0].str() == "linux/amd64");
  REQUIRE(config.warm.images[1].platforms.size() == 2);
  CHECK(config.warm.images[1].platforms[1].str() == "linux/arm/v7");

  SECTION("a share of the filesystem instead of a size") {
    const auto share = loadYaml("cache:\n  max_size: 80%\n");
    CHECK(share.cache.max_size == 0);
    CHECK(share.cache.max_size_percent == 80);
  }
}

TEST_CASE("cache config: the environment overrides the file", "[proxy][config][cache]") {
  const std::string yaml = "cache:\n  max_size: 50GiB\n  expire_after: 1d\nwarm:\n  images: "
                           "[alpine:3.20]\n";
  const auto config = loadYaml(yaml, {{"DCP_CACHE_MAX_SIZE", "10%"},
                                      {"DCP_CACHE_HIGH_WATERMARK", "80"},
                                      {"DCP_CACHE_LOW_WATERMARK", "60%"},
                                      {"DCP_CACHE_CLEANUP_INTERVAL", "30s"},
                                      {"DCP_WARM_IMAGES", "busybox:1.36 nginx=linux/arm64"},
                                      {"DCP_WARM_PLATFORMS", "linux/amd64"},
                                      {"DCP_WARM_REFRESH_INTERVAL", "10m"}});
  CHECK(config.cache.max_size == 0);
  CHECK(config.cache.max_size_percent == 10);
  CHECK(config.cache.high_watermark == 80);
  CHECK(config.cache.low_watermark == 60);
  CHECK(config.cache.expire_after == 24h);
  CHECK(config.cache.cleanup_interval == 30s);
  CHECK(config.warm.refresh_interval == 10min);
  REQUIRE(config.warm.images.size() == 2);
  CHECK(config.warm.images[0].image.str() == "docker.io/library/busybox:1.36");
  CHECK(config.warm.images[0].platforms[0].str() == "linux/amd64");
  CHECK(config.warm.images[1].platforms[0].str() == "linux/arm64");

  SECTION("REGISTRY_PROXY_TTL, the reference registry's variable, sets the expiry") {
    const auto ttl = loadYaml(yaml, {{"REGISTRY_PROXY_TTL", "168h"}});
    CHECK(ttl.cache.expire_after == std::chrono::hours(168));
  }
}

TEST_CASE("cache config: bad values name the key, the value and what is expected",
          "[proxy][config][cache]") {
  CHECK_THAT(loadError("cache:\n  max_size: lots\n"),
             Contains("cache.max_size: \"lots\" is not a size limit; expected a size such as "
                      "50GiB, or a share of the filesystem such as 80%"));
  CHECK_THAT(loadError("cache:\n  max_size: 150%\n"),
             Contains("cache.max_size: \"150%\" is not a percentage"));
  CHECK_THAT(loadError("cache:\n  high_watermark: 0%\n"),
             Contains("cache.high_watermark: \"0%\" is not a percentage"));
  CHECK_THAT(loadError("cache:\n  low_watermark: 96%\n"),
             Contains("cache.low_watermark: the low watermark (96%) is not below the high one "
                      "(95%)"));
  CHECK_THAT(loadError("cache:\n  expire_after: soon\n"),
             Contains("cache.expire_after: \"soon\" is not a duration"));
  CHECK_THAT(loadError("cache:\n  size: 1GiB\n"), Contains("cache.size: unknown key"));
  CHECK_THAT(loadError("", {{"REGISTRY_PROXY_TTL", "1h"}, {"DCP_CACHE_EXPIRE_AFTER", "2h"}}),
             Contains("REGISTRY_PROXY_TTL: set together with DCP_CACHE_EXPIRE_AFTER"));
  CHECK_THAT(loadError("", {{"DCP_WARM_PLATFORMS", "linux/amd64"}}),
             Contains("DCP_WARM_PLATFORMS: set without DCP_WARM_IMAGES"));
}

TEST_CASE("cache config: a warm image must come from a configured upstream",
          "[proxy][config][cache]") {
  CHECK_THAT(loadError("warm:\n  images:\n    - ghcr.io/owner/app:1\n"),
             Contains("warm.images[0]: \"ghcr.io/owner/app:1\" is from ghcr.io, which is not a "
                      "configured upstream; expected an image of docker.io"));
  CHECK_THAT(loadError("warm:\n  images:\n    - image: alpine\n      platforms: [linux]\n"),
             Contains("warm.images[0].platforms: bad platform \"linux\""));
  CHECK_THAT(loadError("warm:\n  images:\n    - Alpine\n"), Contains("warm.images[0]: "));
  CHECK_THAT(loadError("warm:\n  images:\n    - {platforms: [linux/amd64]}\n"),
             Contains("warm.images[0]: has no image"));

  const auto config = loadYaml(R"(
upstreams:
  - name: ghcr.io
    url: https://ghcr.io
  - name: docker.io
    url: https://registry-1.docker.io
    default: true
warm:
  images: [ghcr.io/owner/app:1, alpine]
)");
  REQUIRE(config.warm.images.size() == 2);
  CHECK(config.warm.images[0].image.registry == "ghcr.io");
  CHECK(config.warm.images[1].image.str() == "docker.io/library/alpine:latest");
}
