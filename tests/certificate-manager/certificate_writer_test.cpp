#include "certificate_writer.hpp"
#include "common/atomic_file.hpp"
#include "common/clock.hpp"
#include "lan_ca.hpp"
#include "test_util.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <thread>

using certmgr::CurrentPair;
using certmgr_test::TempDir;
using namespace std::chrono_literals;

namespace {

mode_t modeOf(const std::filesystem::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// The inode a name points at now; 0 when it does not exist.
ino_t inodeOf(const std::filesystem::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

size_t entriesIn(const std::filesystem::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++n;
  }
  return n;
}

} // namespace

TEST_CASE("CertificateWriter: writes the pair, keeps the previous one", "[certmgr][writer]") {
  TempDir ca_dir;
  TempDir out;
  common::SystemClock clock;
  certmgr::LanCa ca(ca_dir.path(), clock, 24h);
  certmgr::Identifiers ids{{"a.example"}, {}};
  const auto first = ca.issue(ids, certmgr::KeyType::EcP256, std::nullopt);
  const auto second = ca.issue(ids, certmgr::KeyType::EcP256, std::nullopt);

  certmgr::CertificateWriter writer(out.path());
  CHECK(writer.readCurrent().state == CurrentPair::State::Missing);

  writer.write(first);
  CHECK(common::readFile(out / "tls.crt") == first.chain_pem);
  CHECK(common::readFile(out / "tls.key") == first.key_pem);
  CHECK(modeOf(out / "tls.key") == 0600);
  CHECK(modeOf(out / "tls.crt") == 0644);
  CHECK(writer.readCurrent().state == CurrentPair::State::Valid);

  SECTION("a renewal moves the old pair to *.prev and leaves no temporary files") {
    writer.write(second);
    CHECK(common::readFile(out / "tls.crt") == second.chain_pem);
    CHECK(common::readFile(out / "tls.key") == second.key_pem);
    CHECK(common::readFile(out / "tls.crt.prev") == first.chain_pem);
    CHECK(common::readFile(out / "tls.key.prev") == first.key_pem);
    CHECK(modeOf(out / "tls.key.prev") == 0600);
    CHECK(entriesIn(out.path()) == 4);
  }

  SECTION("a key that belongs to another certificate is a mismatch") {
    common::writeFileAtomically(out / "tls.key", second.key_pem, 0600);
    const auto current = writer.readCurrent();
    CHECK(current.state == CurrentPair::State::KeyMismatch);
  }

  SECTION("a missing key is missing") {
    std::filesystem::remove(out / "tls.key");
    const auto current = writer.readCurrent();
    CHECK(current.state == CurrentPair::State::Missing);
    CHECK(current.detail == "tls.key missing");
  }

  SECTION("garbage is unreadable, with the OpenSSL reason") {
    common::writeFileAtomically(out / "tls.crt", "not a certificate\n", 0644);
    const auto current = writer.readCurrent();
    CHECK(current.state == CurrentPair::State::Unreadable);
    CHECK(current.detail.find("tls.crt") != std::string::npos);
    CHECK(current.detail.find("openssl=") != std::string::npos);
  }
}

TEST_CASE("CertificateWriter: a reader never sees a key without its certificate",
          "[certmgr][writer]") {
  TempDir ca_dir;
  common::SystemClock clock;
  certmgr::LanCa ca(ca_dir.path(), clock, 24h);
  const auto pair = ca.issue({{"a.example"}, {}}, certmgr::KeyType::EcP256, std::nullopt);

  for (int round = 0; round < 20; ++round) {
    TempDir out;
    certmgr::CertificateWriter writer(out.path());
    std::atomic<bool> done{false};
    std::atomic<int> violations{0};
    std::thread reader([&] {
      while (!done) {
        // The key first: if it exists now, the certificate must exist from now on.
        if (std::filesystem::exists(out / "tls.key")) {
          if (!std::filesystem::exists(out / "tls.crt")) {
            ++violations;
          }
        }
      }
    });
    writer.write(pair);
    done = true;
    reader.join();
    CHECK(violations == 0);
  }
}

TEST_CASE("CertificateWriter: during a renewal a reader never sees the new key with the old "
          "certificate, and the previous pair is in place first",
          "[certmgr][writer]") {
  TempDir ca_dir;
  common::SystemClock clock;
  certmgr::LanCa ca(ca_dir.path(), clock, 24h);
  const auto old_pair = ca.issue({{"a.example"}, {}}, certmgr::KeyType::EcP256, std::nullopt);
  const auto new_pair = ca.issue({{"a.example"}, {}}, certmgr::KeyType::EcP256, std::nullopt);

  // The window between the two renames is a few microseconds: the reader compares inodes (a
  // stat is quicker than a read), over enough rounds that a writer renaming the key first is
  // caught (checked by swapping the two commits).
  for (int round = 0; round < 100; ++round) {
    TempDir out;
    certmgr::CertificateWriter writer(out.path());
    writer.write(old_pair);
    const ino_t old_cert = inodeOf(out / "tls.crt");
    const ino_t old_key = inodeOf(out / "tls.key");
    std::atomic<bool> done{false};
    std::atomic<int> new_key_old_cert{0};
    std::atomic<int> new_cert_without_previous{0};
    std::thread reader([&] {
      while (!done) {
        // The key first: once the new key is there, the new certificate must be too.
        const ino_t key = inodeOf(out / "tls.key");
        const ino_t cert = inodeOf(out / "tls.crt");
        if (key != old_key && cert == old_cert) {
          ++new_key_old_cert;
        }
        if (cert != old_cert && (inodeOf(out / "tls.crt.prev") != old_cert ||
                                 inodeOf(out / "tls.key.prev") != old_key)) {
          ++new_cert_without_previous;
        }
      }
    });
    writer.write(new_pair);
    done = true;
    reader.join();
    CHECK(new_key_old_cert == 0);
    CHECK(new_cert_without_previous == 0);
    CHECK(common::readFile(out / "tls.crt") == new_pair.chain_pem);
    CHECK(common::readFile(out / "tls.key") == new_pair.key_pem);
    CHECK(common::readFile(out / "tls.crt.prev") == old_pair.chain_pem);
    CHECK(common::readFile(out / "tls.key.prev") == old_pair.key_pem);
  }
}
