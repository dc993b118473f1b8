#include "acme_issuer.hpp"
#include "common/clock.hpp"
#include "lan_ca.hpp"
#include "renewal_policy.hpp"
#include "test_http_server.hpp"
#include "test_util.hpp"
#include "time_format.hpp"

#include <catch2/catch.hpp>
#include <openssl/x509v3.h>

using certmgr_test::TempDir;
using testsupport::TestHttpServer;
using namespace std::chrono_literals;

namespace {

class NoSolver : public certmgr::ChallengeSolver {
public:
  std::string type() const override { return "http-01"; }
  void present(const std::vector<certmgr::ChallengeTask>&) override {}
  void cleanup(const std::vector<certmgr::ChallengeTask>&) noexcept override {}
};

// A certificate with the Authority Key Identifier and serial of the RFC 9773 §4.1 example.
certmgr::X509Ptr rfcExampleCertificate() {
  auto key = certmgr::generateKey(certmgr::KeyType::EcP256);
  certmgr::X509Ptr cert(X509_new());
  REQUIRE(X509_set_pubkey(cert.get(), key.get()) == 1);
  const unsigned char serial[] = {0x00, 0x87, 0x65, 0x43, 0x21};
  certmgr::BignumPtr bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  REQUIRE(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) != nullptr);
  const unsigned char key_id[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                                  0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
  certmgr::AuthorityKeyIdPtr akid(AUTHORITY_KEYID_new());
  akid->keyid = ASN1_OCTET_STRING_new();
  REQUIRE(ASN1_OCTET_STRING_set(akid->keyid, key_id, sizeof(key_id)) == 1);
  REQUIRE(X509_add1_ext_i2d(cert.get(), NID_authority_key_identifier, akid.get(), 0, 0) == 1);
  REQUIRE(ASN1_TIME_set(X509_getm_notBefore(cert.get()), 1'700'000'000) != nullptr);
  REQUIRE(ASN1_TIME_set(X509_getm_notAfter(cert.get()), 1'700'000'000 + 90 * 86400) != nullptr);
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
  return cert;
}

} // namespace

TEST_CASE("inspectCertificate: the RFC 9773 certificate identifier", "[certmgr][ari]") {
  const auto cert = rfcExampleCertificate();
  const auto info = certmgr::inspectCertificate(cert.get());
  CHECK(info.ari_cert_id == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

TEST_CASE("AcmeIssuer: renewal information from a directory that offers it", "[certmgr][ari]") {
  TempDir dir;
  TestHttpServer server;
  common::FakeClock clock;
  const auto window_start = clock.now() + 24h * 20;
  const auto window_end = clock.now() + 24h * 22;
  const std::string base = server.url();
  server.on("GET", "/dir", [base](const auto&, auto& response) {
    TestHttpServer::reply(response, 200,
                          R"({"newNonce":")" + base + R"(/nonce","newAccount":")" + base +
                              R"(/acct","newOrder":")" + base + R"(/order","renewalInfo":")" +
                              base + R"(/renewal-info"})",
                          {{"Content-Type", "application/json"}});
  });
  server.onPrefix("GET", "/renewal-info/", [&](const auto&, auto& response) {
    TestHttpServer::reply(response, 200,
                          R"({"suggestedWindow":{"start":")" + certmgr::formatTime(window_start) +
                              R"(","end":")" + certmgr::formatTime(window_end) + R"("}})",
                          {{"Content-Type", "application/json"}, {"Retry-After", "21600"}});
  });

  certmgr::AcmeConfig config;
  config.directory_url = base + "/dir";
  config.account_key_path = dir / "account.key";
  certmgr::AcmeIssuer issuer(config, std::make_unique<NoSolver>(), clock);

  // A leaf from a LAN CA has an AKI, like every CA-issued certificate.
  certmgr::LanCa ca(dir.path(), clock, 24h * 90);
  auto leaf = certmgr::parseCertificatesPem(
      ca.issue({{"a.example"}, {}}, certmgr::KeyType::EcP256, std::nullopt).chain_pem);
  const auto info = certmgr::inspectCertificate(leaf.front().get());
  REQUIRE(info.ari_cert_id);

  const auto window = issuer.renewalWindow(info);
  REQUIRE(window);
  CHECK(window->start == window_start);
  CHECK(window->end == window_end);
  CHECK(server.count("GET", "/renewal-info/" + *info.ari_cert_id) == 1);

  SECTION("the window decides, not the 2/3 rule") {
    certmgr::CurrentPair current;
    current.state = certmgr::CurrentPair::State::Valid;
    current.info = info;
    certmgr::RenewalInputs inputs{&current, info.identifiers, std::nullopt, window, 0.5};
    auto decision = certmgr::decideRenewal(inputs, clock.now());
    CHECK_FALSE(decision.renew);
    CHECK(decision.due == window_start + 24h);
    clock.advance(24h * 21);
    decision = certmgr::decideRenewal(inputs, clock.now());
    CHECK(decision.renew);
    CHECK(decision.reason.find("renewal window") != std::string::npos);
  }

  SECTION("Retry-After is honoured: no new request before it has passed") {
    clock.advance(5h);
    CHECK(issuer.renewalWindow(info));
    CHECK(server.count("GET", "/renewal-info/" + *info.ari_cert_id) == 1);
    clock.advance(2h);
    CHECK(issuer.renewalWindow(info));
    CHECK(server.count("GET", "/renewal-info/" + *info.ari_cert_id) == 2);
  }

  SECTION("a failing renewalInfo endpoint keeps the last window") {
    server.onPrefix("GET", "/renewal-info/", [](const auto&, auto& response) {
      TestHttpServer::reply(response, 500, "{}");
    });
    clock.advance(7h);
    const auto kept = issuer.renewalWindow(info);
    REQUIRE(kept);
    CHECK(kept->start == window_start);
  }
}

TEST_CASE("AcmeIssuer: no renewal information without renewalInfo in the directory",
          "[certmgr][ari]") {
  TempDir dir;
  TestHttpServer server;
  common::FakeClock clock;
  const std::string base = server.url();
  server.on("GET", "/dir", [base](const auto&, auto& response) {
    TestHttpServer::reply(response, 200,
                          R"({"newNonce":")" + base + R"(/nonce","newAccount":")" + base +
                              R"(/acct","newOrder":")" + base + R"(/order"})");
  });
  certmgr::AcmeConfig config;
  config.directory_url = base + "/dir";
  config.account_key_path = dir / "account.key";
  certmgr::AcmeIssuer issuer(config, std::make_unique<NoSolver>(), clock);
  const auto cert = rfcExampleCertificate();
  CHECK_FALSE(issuer.renewalWindow(certmgr::inspectCertificate(cert.get())));
  CHECK(server.requests().size() == 1);
}
