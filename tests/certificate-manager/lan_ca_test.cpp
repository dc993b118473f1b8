#include "certificate_writer.hpp"
#include "common/atomic_file.hpp"
#include "common/clock.hpp"
#include "common/errors.hpp"
#include "lan_ca.hpp"
#include "test_util.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>

using certmgr_test::runCommand;
using certmgr_test::TempDir;
using namespace std::chrono_literals;

namespace {

certmgr::Identifiers names(std::vector<std::string> dns, std::vector<std::string> ips) {
  certmgr::Identifiers ids{std::move(dns), std::move(ips)};
  ids.normalize();
  return ids;
}

mode_t modeOf(const std::filesystem::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

} // namespace

TEST_CASE("LanCa: a leaf that openssl verify accepts with the CA", "[certmgr][lan-ca]") {
  TempDir dir;
  common::SystemClock clock;
  certmgr::LanCa ca(dir.path(), clock, std::chrono::hours(24 * 90));
  CHECK(ca.created());
  CHECK(modeOf(dir / "ca.key") == 0600);

  const auto wanted = names({"registry.home.example", "localhost"}, {"127.0.0.1", "::1"});
  certmgr::CertificateWriter writer(dir.path());
  writer.write(ca.issue(wanted, certmgr::KeyType::EcP256, std::nullopt));

  std::string out;
  CHECK(runCommand("openssl verify -x509_strict -purpose sslserver -CAfile " +
                       (dir / "ca.crt").string() + " " + (dir / "tls.crt").string(),
                   out) == 0);
  INFO(out);

  const auto current = writer.readCurrent();
  REQUIRE(current.state == certmgr::CurrentPair::State::Valid);
  CHECK(current.info->identifiers == wanted);
  CHECK(current.info->not_after - current.info->not_before >= std::chrono::hours(24 * 90));

  SECTION("the CA is a P-256 root limited to path length 0 and valid for 10 years") {
    REQUIRE(runCommand("openssl x509 -noout -text -in " + (dir / "ca.crt").string(), out) == 0);
    CHECK(out.find("CA:TRUE, pathlen:0") != std::string::npos);
    CHECK(out.find("prime256v1") != std::string::npos);
    const auto ca_info = certmgr::inspectCertificate(ca.certificate());
    CHECK(ca_info.not_after - ca_info.not_before >= std::chrono::hours(24 * 3650));
  }

  SECTION("the leaf names every DNS name and IP, and is for servers only") {
    REQUIRE(runCommand("openssl x509 -noout -ext subjectAltName,extendedKeyUsage,basicConstraints"
                       " -in " +
                           (dir / "tls.crt").string(),
                       out) == 0);
    CHECK(out.find("DNS:registry.home.example") != std::string::npos);
    CHECK(out.find("IP Address:127.0.0.1") != std::string::npos);
    CHECK(out.find("IP Address:0:0:0:0:0:0:0:1") != std::string::npos);
    CHECK(out.find("TLS Web Server Authentication") != std::string::npos);
    CHECK(out.find("CA:FALSE") != std::string::npos);
  }

  SECTION("an RSA leaf verifies too") {
    writer.write(ca.issue(wanted, certmgr::KeyType::Rsa2048, std::nullopt));
    CHECK(runCommand("openssl verify -CAfile " + (dir / "ca.crt").string() + " " +
                         (dir / "tls.crt").string(),
                     out) == 0);
  }
}

TEST_CASE("LanCa: the CA survives restarts and renewals", "[certmgr][lan-ca]") {
  TempDir dir;
  common::SystemClock clock;
  std::string first_ca;
  {
    certmgr::LanCa ca(dir.path(), clock, 24h);
    first_ca = common::readFile(dir / "ca.crt");
  }
  certmgr::LanCa again(dir.path(), clock, 24h);
  CHECK_FALSE(again.created());
  CHECK(common::readFile(dir / "ca.crt") == first_ca);

  const auto wanted = names({"a.example"}, {});
  const auto pair = again.issue(wanted, certmgr::KeyType::EcP256, std::nullopt);
  auto leaf = certmgr::parseCertificatesPem(pair.chain_pem);
  CHECK_FALSE(again.rejectCurrent(leaf.front().get()));

  SECTION("a leaf of another CA is rejected") {
    TempDir other_dir;
    certmgr::LanCa other(other_dir.path(), clock, 24h);
    auto foreign = certmgr::parseCertificatesPem(
        other.issue(wanted, certmgr::KeyType::EcP256, std::nullopt).chain_pem);
    const auto reason = again.rejectCurrent(foreign.front().get());
    REQUIRE(reason);
    CHECK(reason->find("not signed by the current lan ca") != std::string::npos);
  }

  SECTION("ca.crt without ca.key is a setup error, not a silent new CA") {
    std::filesystem::remove(dir / "ca.key");
    CHECK_THROWS_AS(certmgr::LanCa(dir.path(), clock, 24h), common::SetupError);
    CHECK(common::readFile(dir / "ca.crt") == first_ca);
  }

  SECTION("a ca.key left over without ca.crt is replaced by a new CA") {
    std::filesystem::remove(dir / "ca.crt");
    certmgr::LanCa fresh(dir.path(), clock, 24h);
    CHECK(fresh.created());
    CHECK(common::readFile(dir / "ca.crt") != first_ca);
  }
}

TEST_CASE("LanCa: leaf validity follows the injected clock", "[certmgr][lan-ca]") {
  TempDir dir;
  common::FakeClock clock;
  certmgr::LanCa ca(dir.path(), clock, 30 * 24h);
  const auto pair = ca.issue(names({"a.example"}, {}), certmgr::KeyType::EcP256, std::nullopt);
  auto leaf = certmgr::parseCertificatesPem(pair.chain_pem);
  const auto info = certmgr::inspectCertificate(leaf.front().get());
  CHECK(info.not_after == clock.now() + 30 * 24h);
  CHECK(info.not_before <= clock.now());
  CHECK(info.ari_cert_id.has_value());
}
