#include "certificate_manager.hpp"
#include "common/atomic_file.hpp"
#include "common/errors.hpp"
#include "lan_ca.hpp"
#include "status_file.hpp"
#include "test_util.hpp"
#include "time_format.hpp"

#include <catch2/catch.hpp>

using certmgr_test::TempDir;
using namespace std::chrono_literals;

namespace {

// Wraps the LAN CA, counts issuances and can be told to fail.
class CountingIssuer : public certmgr::Issuer {
public:
  explicit CountingIssuer(certmgr::Issuer& inner) : inner_(inner) {}
  std::string name() const override { return inner_.name(); }
  certmgr::IssuedPair issue(const certmgr::Identifiers& ids, certmgr::KeyType type,
                            const std::optional<std::string>& replaces) override {
    ++issued;
    if (failing) {
      throw common::UnavailableError("ca unreachable: connection refused");
    }
    return inner_.issue(ids, type, replaces);
  }
  std::optional<std::string> rejectCurrent(X509* leaf) override {
    return inner_.rejectCurrent(leaf);
  }

  int issued = 0;
  bool failing = false;

private:
  certmgr::Issuer& inner_;
};

} // namespace

TEST_CASE("CertificateManager: issues, waits until due, renews", "[certmgr][manager]") {
  TempDir dir;
  common::FakeClock clock;
  certmgr::Config config;
  config.output_dir = dir.path();
  config.identifiers = {{"a.example", "localhost"}, {"127.0.0.1"}};
  config.lan_leaf_validity = 90 * 24h;
  certmgr::LanCa ca(dir.path(), clock, config.lan_leaf_validity);
  CountingIssuer issuer(ca);
  certmgr::CertificateWriter writer(dir.path());
  common::HealthcheckPinger pinger("");
  auto tail = std::make_shared<common::LogTail>();
  certmgr::attachLogTail(tail);
  certmgr::CertificateManager manager(config, issuer, writer, clock, pinger, tail);

  auto result = manager.check();
  CHECK(result.ok);
  CHECK(result.renewed);
  CHECK(issuer.issued == 1);
  CHECK(result.next_check == clock.now() + 12h);
  CHECK(tail->text().find("certificate files missing, issuing") != std::string::npos);

  std::string error;
  auto status = certmgr::readStatus(dir / "status.json", error);
  REQUIRE(status);
  CHECK(status->result == "ok");
  REQUIRE(status->certificate);
  INFO("renew_at=" << certmgr::formatTime(status->certificate->renew_at)
                   << " now=" << certmgr::formatTime(clock.now()));
  CHECK(status->certificate->renew_at ==
        clock.now() - 1min + std::chrono::seconds(90 * 24h + 1min) * 2 / 3);

  SECTION("a second check does nothing and says until when") {
    result = manager.check();
    CHECK(result.ok);
    CHECK_FALSE(result.renewed);
    CHECK(issuer.issued == 1);
    CHECK(result.message.rfind("renewal not due until", 0) == 0);
  }

  SECTION("when due, it renews and keeps the previous pair") {
    const auto first = common::readFile(dir / "tls.crt");
    clock.advance(61 * 24h);
    result = manager.check();
    CHECK(result.renewed);
    CHECK(issuer.issued == 2);
    CHECK(common::readFile(dir / "tls.crt.prev") == first);
  }

  SECTION("a name change triggers a re-issue with the same CA") {
    const auto ca_before = common::readFile(dir / "ca.crt");
    config.identifiers.dns_names.push_back("b.example");
    result = manager.check();
    CHECK(result.renewed);
    CHECK(result.message.rfind("renewal not due", 0) == 0);
    CHECK(tail->text().find("names changed, renewing: missing=b.example") != std::string::npos);
    CHECK(common::readFile(dir / "ca.crt") == ca_before);
  }

  SECTION("a failed renewal keeps the old pair, backs off and reports") {
    const auto first = common::readFile(dir / "tls.crt");
    clock.advance(61 * 24h);
    issuer.failing = true;
    result = manager.check();
    CHECK_FALSE(result.ok);
    CHECK(result.next_check == clock.now() + 60s);
    CHECK(common::readFile(dir / "tls.crt") == first);
    CHECK(tail->text().find("renewal failed, the current certificate stays in place") !=
          std::string::npos);
    status = certmgr::readStatus(dir / "status.json", error);
    REQUIRE(status);
    CHECK(status->result == "failed");
    CHECK(status->consecutive_failures == 1);
    CHECK(status->message.find("connection refused") != std::string::npos);

    result = manager.check();
    CHECK(result.next_check == clock.now() + 120s);

    issuer.failing = false;
    result = manager.check();
    CHECK(result.ok);
    CHECK(result.renewed);
  }

  SECTION("a deleted key is re-issued at once") {
    std::filesystem::remove(dir / "tls.key");
    result = manager.check();
    CHECK(result.renewed);
    CHECK(issuer.issued == 2);
  }
}
