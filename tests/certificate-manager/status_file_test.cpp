#include "status_file.hpp"
#include "test_util.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using certmgr_test::TempDir;
using namespace std::chrono_literals;

namespace {

certmgr::Status okStatus(common::Clock::TimePoint now) {
  certmgr::Status status;
  status.mode = "lan-ca";
  status.result = "ok";
  status.message = "renewal not due until 2030-01-01T00:00:00Z";
  status.checked_at = now;
  status.last_success_at = now;
  status.next_check_at = now + 12h;
  status.stale_after = now + 13h;
  status.certificate = certmgr::StatusCertificate{
      "01ab", "ffee", now - 24h, now + 89 * 24h, now + 59 * 24h, {"a.example", "127.0.0.1"}};
  return status;
}

} // namespace

TEST_CASE("Status: written and read back", "[certmgr][status]") {
  TempDir dir;
  const common::Clock::TimePoint now(std::chrono::seconds(1'700'000'000));
  const auto status = okStatus(now);
  certmgr::writeStatus(dir / "status.json", status);

  std::string error;
  const auto read = certmgr::readStatus(dir / "status.json", error);
  REQUIRE(read);
  CHECK(read->result == "ok");
  CHECK(read->checked_at == now);
  CHECK(read->stale_after == now + 13h);
  CHECK_FALSE(read->last_renewal_at);
  REQUIRE(read->certificate);
  CHECK(read->certificate->names == status.certificate->names);
  CHECK(read->certificate->not_after == status.certificate->not_after);

  SECTION("a missing or broken file says why") {
    CHECK_FALSE(certmgr::readStatus(dir / "nope.json", error));
    CHECK(error.find("nope.json") != std::string::npos);
    std::ofstream(dir / "broken.json") << "{\"mode\":";
    CHECK_FALSE(certmgr::readStatus(dir / "broken.json", error));
    CHECK(error.find("malformed") != std::string::npos);
  }
}

TEST_CASE("evaluateHealth: healthy only when fresh, ok and not expired", "[certmgr][status]") {
  const common::Clock::TimePoint now(std::chrono::seconds(1'700'000'000));
  auto status = okStatus(now);
  CHECK(certmgr::evaluateHealth(status, now).healthy);

  SECTION("stale") {
    CHECK_FALSE(certmgr::evaluateHealth(status, now + 14h).healthy);
  }
  SECTION("last check failed") {
    status.result = "failed";
    status.consecutive_failures = 2;
    const auto verdict = certmgr::evaluateHealth(status, now);
    CHECK_FALSE(verdict.healthy);
    CHECK(verdict.reason.find("2 in a row") != std::string::npos);
  }
  SECTION("expired") {
    status.certificate->not_after = now - 1s;
    CHECK_FALSE(certmgr::evaluateHealth(status, now).healthy);
  }
  SECTION("no certificate yet") {
    status.certificate.reset();
    CHECK_FALSE(certmgr::evaluateHealth(status, now).healthy);
  }
}
