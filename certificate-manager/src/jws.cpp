#include "jws.hpp"

#include "common/atomic_file.hpp"
#include "common/logging.hpp"

#include <Poco/JSON/Object.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <sstream>
#include <system_error>

namespace certmgr {
namespace {

std::string compactJson(const Poco::JSON::Object& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

} // namespace

AccountKey::AccountKey(PkeyPtr key) : key_(std::move(key)) {
  char group[64] = {};
  size_t group_length = 0;
  if (!key_ || EVP_PKEY_is_a(key_.get(), "EC") != 1 ||
      EVP_PKEY_get_utf8_string_param(key_.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &group_length) != 1 ||
      std::string_view(group) != "prime256v1") {
    throwOpensslError("account key is not an ECDSA P-256 key");
  }

  // The uncompressed point: 0x04, then X and Y, 32 bytes each.
  unsigned char point[65];
  size_t point_length = 0;
  if (EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                      &point_length) != 1 ||
      point_length != 65 || point[0] != 0x04) {
    throwOpensslError("cannot read the account public key");
  }
  const std::string x(reinterpret_cast<char*>(point) + 1, 32);
  const std::string y(reinterpret_cast<char*>(point) + 33, 32);

  // RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
  jwk_ =
      R"({"crv":"P-256","kty":"EC","x":")" + base64url(x) + R"(","y":")" + base64url(y) + R"("})";
  thumbprint_ = base64url(sha256(jwk_));
}

AccountKey AccountKey::loadOrCreate(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    try {
      return AccountKey(parsePrivateKeyPem(common::readFile(path)));
    } catch (const CryptoError& e) {
      throw common::SetupError("acme account key " + path.string() + " is not usable: " + e.what());
    }
  }
  AccountKey created(generateKey(KeyType::EcP256));
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
  }
  common::writeFileAtomically(path, privateKeyPem(created.get()), 0600);
  common::logger("acme")->info("acme account key created: path={}", path.string());
  return created;
}

std::string AccountKey::sign(std::string_view input) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1) {
    throwOpensslError("cannot start ES256 signature");
  }
  size_t length = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    throwOpensslError("cannot size ES256 signature");
  }
  std::string der(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &length,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    throwOpensslError("cannot compute ES256 signature");
  }
  der.resize(length);
  return derToRawSignature(der, 32);
}

std::string derToRawSignature(std::string_view der, size_t width) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) {
    throwOpensslError("malformed DER ECDSA signature");
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(2 * width, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, static_cast<int>(width)) < 0 ||
      BN_bn2binpad(s, out + width, static_cast<int>(width)) < 0) {
    throwOpensslError("ECDSA signature does not fit its width");
  }
  return raw;
}

std::string signJws(const AccountKey& key, const std::string& protected_header,
                    std::string_view payload) {
  const std::string encoded_header = base64url(protected_header);
  const std::string encoded_payload = base64url(payload);
  const std::string signature = key.sign(encoded_header + "." + encoded_payload);
  Poco::JSON::Object jws(Poco::JSON_PRESERVE_KEY_ORDER);
  jws.set("protected", encoded_header);
  jws.set("payload", encoded_payload);
  jws.set("signature", base64url(signature));
  return compactJson(jws);
}

std::string externalAccountBinding(const AccountKey& key, const std::string& kid,
                                   std::string_view mac_key, const std::string& new_account_url) {
  Poco::JSON::Object header(Poco::JSON_PRESERVE_KEY_ORDER);
  header.set("alg", "HS256");
  header.set("kid", kid);
  header.set("url", new_account_url);
  const std::string encoded_header = base64url(compactJson(header));
  const std::string encoded_payload = base64url(key.jwk());
  const std::string input = encoded_header + "." + encoded_payload;

  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  if (HMAC(EVP_sha256(), mac_key.data(), static_cast<int>(mac_key.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
           &mac_length) == nullptr) {
    throwOpensslError("cannot compute the external account binding MAC");
  }
  Poco::JSON::Object jws(Poco::JSON_PRESERVE_KEY_ORDER);
  jws.set("protected", encoded_header);
  jws.set("payload", encoded_payload);
  jws.set("signature", base64url(std::string_view(reinterpret_cast<char*>(mac), mac_length)));
  return compactJson(jws);
}

} // namespace certmgr
