#include "common/atomic_file.hpp"
#include "jws.hpp"
#include "test_util.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <algorithm>
#include <catch2/catch.hpp>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <sys/stat.h>

using certmgr_test::runCommand;
using certmgr_test::TempDir;

namespace {

Poco::JSON::Object::Ptr parse(const std::string& json) {
  Poco::JSON::Parser parser;
  return parser.parse(json).extract<Poco::JSON::Object::Ptr>();
}

// r||s back to DER, the form the openssl command line verifies.
std::string rawToDer(const std::string& raw) {
  certmgr::EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  REQUIRE(ECDSA_SIG_set0(sig.get(), r, s) == 1);
  unsigned char* der = nullptr;
  const int length = i2d_ECDSA_SIG(sig.get(), &der);
  REQUIRE(length > 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

std::string publicKeyPem(EVP_PKEY* key) {
  certmgr::BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PUBKEY(bio.get(), key) == 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

} // namespace

TEST_CASE("AccountKey: ES256 JWS that the openssl command line verifies", "[certmgr][jws]") {
  TempDir dir;
  const auto key = certmgr::AccountKey::loadOrCreate(dir / "account.key");
  const std::string header = R"({"alg":"ES256","nonce":"abc","url":"https://ca.test/new-order"})";
  const std::string payload = R"({"identifiers":[{"type":"dns","value":"a.example"}]})";
  const auto jws = parse(certmgr::signJws(key, header, payload));

  const auto protected_b64 = jws->getValue<std::string>("protected");
  const auto payload_b64 = jws->getValue<std::string>("payload");
  CHECK(certmgr::base64urlDecode(protected_b64) == header);
  CHECK(certmgr::base64urlDecode(payload_b64) == payload);
  const auto signature = certmgr::base64urlDecode(jws->getValue<std::string>("signature"));
  REQUIRE(signature);
  CHECK(signature->size() == 64);

  common::writeFileAtomically(dir / "input", protected_b64 + "." + payload_b64);
  common::writeFileAtomically(dir / "sig.der", rawToDer(*signature));
  common::writeFileAtomically(dir / "pub.pem", publicKeyPem(key.get()));
  std::string out;
  CHECK(runCommand("openssl dgst -sha256 -verify " + (dir / "pub.pem").string() + " -signature " +
                       (dir / "sig.der").string() + " " + (dir / "input").string(),
                   out) == 0);
  INFO(out);

  SECTION("a changed payload does not verify") {
    common::writeFileAtomically(dir / "input", protected_b64 + "." + payload_b64 + "x");
    CHECK(runCommand("openssl dgst -sha256 -verify " + (dir / "pub.pem").string() + " -signature " +
                         (dir / "sig.der").string() + " " + (dir / "input").string(),
                     out) != 0);
  }

  SECTION("a POST-as-GET has an empty payload") {
    const auto get = parse(certmgr::signJws(key, header, ""));
    CHECK(get->getValue<std::string>("payload").empty());
  }

  SECTION("the key is kept (0600) and reused") {
    struct stat st {};
    REQUIRE(::stat((dir / "account.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    const auto again = certmgr::AccountKey::loadOrCreate(dir / "account.key");
    CHECK(again.jwk() == key.jwk());
  }
}

TEST_CASE("AccountKey: JWK and thumbprint per RFC 7638", "[certmgr][jws]") {
  TempDir dir;
  const auto key = certmgr::AccountKey::loadOrCreate(dir / "account.key");
  const auto jwk = parse(key.jwk());
  CHECK(key.jwk().rfind(R"({"crv":"P-256","kty":"EC","x":")", 0) == 0);
  CHECK(key.jwk().find(' ') == std::string::npos);

  // x and y are the public point openssl prints.
  const auto x = certmgr::base64urlDecode(jwk->getValue<std::string>("x"));
  const auto y = certmgr::base64urlDecode(jwk->getValue<std::string>("y"));
  REQUIRE(x);
  REQUIRE(y);
  CHECK(x->size() == 32);
  CHECK(y->size() == 32);
  common::writeFileAtomically(dir / "pub.pem", publicKeyPem(key.get()));
  std::string out;
  REQUIRE(runCommand("openssl pkey -pubin -in " + (dir / "pub.pem").string() +
                         " -outform DER | tail -c 64 | od -An -tx1 | tr -d ' \\n'",
                     out) == 0);
  CHECK(out == certmgr::toHex(*x + *y));

  // The thumbprint is the SHA-256 of exactly that JSON text.
  common::writeFileAtomically(dir / "jwk.json", key.jwk());
  REQUIRE(runCommand("openssl dgst -sha256 -binary " + (dir / "jwk.json").string() +
                         " | od -An -tx1 | tr -d ' \\n'",
                     out) == 0);
  CHECK(certmgr::toHex(*certmgr::base64urlDecode(key.thumbprint())) == out);
  CHECK(certmgr::keyAuthorization("tok", key) == "tok." + key.thumbprint());
}

TEST_CASE("externalAccountBinding: HS256 over the account JWK", "[certmgr][jws]") {
  TempDir dir;
  const auto key = certmgr::AccountKey::loadOrCreate(dir / "account.key");
  const std::string mac_key = "0123456789abcdef0123456789abcdef";
  const auto eab =
      parse(certmgr::externalAccountBinding(key, "kid-1", mac_key, "https://ca.test/new-acct"));

  const auto header = parse(*certmgr::base64urlDecode(eab->getValue<std::string>("protected")));
  CHECK(header->getValue<std::string>("alg") == "HS256");
  CHECK(header->getValue<std::string>("kid") == "kid-1");
  CHECK(header->getValue<std::string>("url") == "https://ca.test/new-acct");
  CHECK(certmgr::base64urlDecode(eab->getValue<std::string>("payload")) == key.jwk());

  const std::string input =
      eab->getValue<std::string>("protected") + "." + eab->getValue<std::string>("payload");
  common::writeFileAtomically(dir / "input", input);
  std::string out;
  REQUIRE(runCommand("openssl mac -digest SHA256 -macopt key:" + mac_key + " -in " +
                         (dir / "input").string() + " HMAC",
                     out) == 0);
  const auto mac = certmgr::base64urlDecode(eab->getValue<std::string>("signature"));
  REQUIRE(mac);
  std::string expected = out.substr(0, out.find_first_of("\r\n"));
  std::transform(expected.begin(), expected.end(), expected.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  CHECK(certmgr::toHex(*mac) == expected);
}

TEST_CASE("base64url: RFC 4648 test vectors without padding", "[certmgr][jws]") {
  CHECK(certmgr::base64url("") == "");
  CHECK(certmgr::base64url("f") == "Zg");
  CHECK(certmgr::base64url("fo") == "Zm8");
  CHECK(certmgr::base64url("foo") == "Zm9v");
  CHECK(certmgr::base64url("foob") == "Zm9vYg");
  CHECK(certmgr::base64url("\xfb\xff") == "-_8");
  CHECK(certmgr::base64urlDecode("-_8") == std::string("\xfb\xff"));
  CHECK(certmgr::base64urlDecode("Zm9vYg==") == std::string("foob"));
  CHECK_FALSE(certmgr::base64urlDecode("Zm9v!"));
}
