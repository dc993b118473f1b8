#include "temp_dir.hpp"
#include "tls.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

using testsupport::TempDir;

namespace {

struct PemPair {
  std::string certificate;
  std::string key;
};

std::string pemOf(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

// A self-signed P-256 certificate for localhost with the given serial, and its key.
PemPair selfSigned(long serial) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  REQUIRE(key);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  REQUIRE(cert);
  REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial) == 1);
  REQUIRE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) != nullptr);
  REQUIRE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400) != nullptr);
  REQUIRE(X509_set_pubkey(cert.get(), key.get()) == 1);
  X509_NAME* name = X509_get_subject_name(cert.get());
  REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                                     0) == 1);
  REQUIRE(X509_set_issuer_name(cert.get(), name) == 1);
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);

  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), BIO_free);
  REQUIRE(PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1);
  REQUIRE(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                   nullptr) == 1);
  return {pemOf(cert_bio.get()), pemOf(key_bio.get())};
}

// Written aside, then renamed into place: a new inode, as the certificate-manager does it.
void install(const std::filesystem::path& path, const std::string& content) {
  const auto temp = path.string() + ".new";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << content;
    REQUIRE(out.good());
  }
  std::filesystem::rename(temp, path);
}

// The serial of the certificate a context serves; -1 without a context.
long servedSerial(const Poco::Net::Context::Ptr& context) {
  if (!context) {
    return -1;
  }
  X509* leaf = SSL_CTX_get0_certificate(context->sslContext());
  REQUIRE(leaf != nullptr);
  return ASN1_INTEGER_get(X509_get0_serialNumber(leaf));
}

} // namespace

TEST_CASE("TlsContextProvider: a renewed pair is used once key and certificate belong together",
          "[proxy][tls]") {
  TempDir dir;
  const auto cert_path = dir.path() / "tls.crt";
  const auto key_path = dir.path() / "tls.key";
  const auto old_pair = selfSigned(1001);
  const auto new_pair = selfSigned(2002);
  install(cert_path, old_pair.certificate);
  install(key_path, old_pair.key);

  proxy::TlsContextProvider provider(proxy::TlsConfig{"127.0.0.1:0", cert_path, key_path});
  const auto first = provider.current();
  REQUIRE(servedSerial(first) == 1001);

  SECTION("baseline: the new pair replaces the context; the old one lives on for its users") {
    install(cert_path, new_pair.certificate);
    install(key_path, new_pair.key);
    CHECK(provider.refresh());
    CHECK(servedSerial(provider.current()) == 2002);
    CHECK(servedSerial(first) == 1001);
  }

  SECTION("new certificate, old key (between the writer's two renames): the old context stays") {
    install(cert_path, new_pair.certificate);
    CHECK(provider.refresh());
    CHECK(servedSerial(provider.current()) == 1001);
    CHECK(provider.current() == first);

    install(key_path, new_pair.key);
    CHECK(provider.refresh());
    CHECK(servedSerial(provider.current()) == 2002);
  }

  SECTION("new key, old certificate: the old context stays until the certificate follows") {
    install(key_path, new_pair.key);
    CHECK(provider.refresh());
    CHECK(servedSerial(provider.current()) == 1001);

    install(cert_path, new_pair.certificate);
    CHECK(provider.refresh());
    CHECK(servedSerial(provider.current()) == 2002);
  }

  SECTION("a certificate file that is not PEM: the old context stays") {
    install(cert_path, "not a certificate\n");
    CHECK(provider.refresh());
    CHECK(servedSerial(provider.current()) == 1001);
  }

  SECTION("both files gone: the old context stays") {
    std::filesystem::remove(cert_path);
    std::filesystem::remove(key_path);
    CHECK(provider.refresh());
    CHECK(servedSerial(provider.current()) == 1001);
  }
}

TEST_CASE("TlsContextProvider: no context until a matching pair appears", "[proxy][tls]") {
  TempDir dir;
  const auto cert_path = dir.path() / "tls.crt";
  const auto key_path = dir.path() / "tls.key";
  const auto pair = selfSigned(3003);
  const auto other = selfSigned(4004);

  proxy::TlsContextProvider provider(proxy::TlsConfig{"127.0.0.1:0", cert_path, key_path});
  CHECK_FALSE(provider.refresh());
  CHECK_FALSE(provider.current());

  install(cert_path, pair.certificate);
  CHECK_FALSE(provider.refresh());
  install(key_path, other.key);
  CHECK_FALSE(provider.refresh());
  CHECK_FALSE(provider.current());

  install(key_path, pair.key);
  CHECK(provider.refresh());
  CHECK(servedSerial(provider.current()) == 3003);
}
