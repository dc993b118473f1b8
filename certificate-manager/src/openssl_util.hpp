#pragma once

#include "common/clock.hpp"
#include "common/errors.hpp"

#include <memory>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certmgr {

/// Frees an OpenSSL object with its own free function.
template <auto FreeFn> struct OpensslDeleter {
  template <typename T> void operator()(T* p) const { FreeFn(p); }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpensslDeleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpensslDeleter<EVP_MD_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OpensslDeleter<X509_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OpensslDeleter<X509_REQ_free>>;
using X509ExtPtr = std::unique_ptr<X509_EXTENSION, OpensslDeleter<X509_EXTENSION_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpensslDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpensslDeleter<X509_STORE_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OpensslDeleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpensslDeleter<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpensslDeleter<ECDSA_SIG_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpensslDeleter<GENERAL_NAMES_free>>;
using AuthorityKeyIdPtr = std::unique_ptr<AUTHORITY_KEYID, OpensslDeleter<AUTHORITY_KEYID_free>>;

/// A failed OpenSSL call; the message carries the drained OpenSSL error queue.
class CryptoError : public common::Error {
public:
  using common::Error::Error;
};

/// Drains the OpenSSL error queue of this thread into one line ("none" when empty).
std::string opensslErrors();

/// Throws CryptoError "`what`: <OpenSSL error queue>".
[[noreturn]] void throwOpensslError(const std::string& what);

/// Key algorithms for certificate keys.
enum class KeyType { EcP256, EcP384, Rsa2048, Rsa3072, Rsa4096 };

/// "ec256", "ec384", "rsa2048", "rsa3072", "rsa4096" (the names lego uses, also "p256").
std::optional<KeyType> parseKeyType(std::string_view text);
std::string keyTypeName(KeyType type);

/// A new private key. Throws CryptoError.
PkeyPtr generateKey(KeyType type);

/// PKCS#8 PEM of a private key. Throws CryptoError.
std::string privateKeyPem(EVP_PKEY* key);

/// Parses a PEM private key. Throws CryptoError.
PkeyPtr parsePrivateKeyPem(std::string_view pem);

/// PEM of one certificate. Throws CryptoError.
std::string certificatePem(X509* cert);

/// Every certificate of a PEM bundle, in order; throws CryptoError when there is none.
std::vector<X509Ptr> parseCertificatesPem(std::string_view pem);

/// DER encodings. Throw CryptoError.
std::string certificateDer(X509* cert);
std::string requestDer(X509_REQ* request);

/// RFC 4648 §5 base64url without padding, and its inverse (nothing on bad input).
std::string base64url(std::string_view bytes);
std::optional<std::string> base64urlDecode(std::string_view text);

/// SHA-256 digest (32 raw bytes) and lower-case hex of any bytes.
std::string sha256(std::string_view bytes);
std::string toHex(std::string_view bytes);

/// ASN.1 time as a clock time point. Throws CryptoError on a malformed time.
common::Clock::TimePoint asn1TimeToTimePoint(const ASN1_TIME* time);

/// 16 random bytes as a positive serial number. Throws CryptoError.
void setRandomSerial(X509* cert);

} // namespace certmgr
