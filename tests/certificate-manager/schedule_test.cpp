#include "schedule.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

TEST_CASE("nextCheckTime: interval, due time and backoff", "[certmgr][schedule]") {
  const common::Clock::TimePoint now(std::chrono::seconds(1'700'000'000));
  const certmgr::ScheduleOptions options{12h, 60s, 6h};

  CHECK(certmgr::nextCheckTime(now, 0, std::nullopt, options) == now + 12h);

  SECTION("a certificate due before the next regular check is checked when due") {
    CHECK(certmgr::nextCheckTime(now, 0, now + 5min, options) == now + 5min);
    CHECK(certmgr::nextCheckTime(now, 0, now + 20h, options) == now + 12h);
  }

  SECTION("failures back off by doubling up to the maximum") {
    CHECK(certmgr::nextCheckTime(now, 1, std::nullopt, options) == now + 60s);
    CHECK(certmgr::nextCheckTime(now, 2, std::nullopt, options) == now + 120s);
    CHECK(certmgr::nextCheckTime(now, 3, std::nullopt, options) == now + 240s);
    CHECK(certmgr::nextCheckTime(now, 30, std::nullopt, options) == now + 6h);
  }

  SECTION("the backoff never exceeds the regular interval") {
    const certmgr::ScheduleOptions short_interval{10min, 60s, 6h};
    CHECK(certmgr::nextCheckTime(now, 10, std::nullopt, short_interval) == now + 10min);
  }
}
