#include "common/duration.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

TEST_CASE("parseDuration: reads Go-style durations", "[common][duration]") {
  CHECK(common::parseDuration("5m") == std::chrono::milliseconds(5min));
  CHECK(common::parseDuration("1h30m") == std::chrono::milliseconds(90min));
  CHECK(common::parseDuration("250ms") == 250ms);
  CHECK(common::parseDuration("2d") == std::chrono::milliseconds(48h));
  CHECK(common::parseDuration("1.5s") == 1500ms);

  SECTION("a bare number is seconds") {
    CHECK(common::parseDuration("90") == 90'000ms);
  }

  SECTION("anything else is refused") {
    CHECK_FALSE(common::parseDuration(""));
    CHECK_FALSE(common::parseDuration("-5m"));
    CHECK_FALSE(common::parseDuration("5 minutes"));
    CHECK_FALSE(common::parseDuration("5x"));
    CHECK_FALSE(common::parseDuration("m"));
    CHECK_FALSE(common::parseDuration("5m3"));
  }
}

TEST_CASE("formatDuration: writes what parseDuration reads back", "[common][duration]") {
  CHECK(common::formatDuration(90min) == "1h30m");
  CHECK(common::formatDuration(250ms) == "250ms");
  CHECK(common::formatDuration(0ms) == "0s");
  CHECK(common::parseDuration(common::formatDuration(93784005ms)) == 93784005ms);
}

TEST_CASE("parseByteSize: binary and decimal units", "[common][size]") {
  CHECK(common::parseByteSize("1048576") == 1048576u);
  CHECK(common::parseByteSize("512MiB") == 512ull * 1024 * 1024);
  CHECK(common::parseByteSize("50GiB") == 50ull * 1024 * 1024 * 1024);
  CHECK(common::parseByteSize("1.5GB") == 1'500'000'000ull);
  CHECK(common::parseByteSize("20 kB") == 20'000u);
  CHECK_FALSE(common::parseByteSize("lots"));
  CHECK_FALSE(common::parseByteSize("5 PB"));
  CHECK_FALSE(common::parseByteSize(""));
}
