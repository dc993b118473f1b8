#include "openssl_util.hpp"

#include <ctime>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

namespace certmgr {
namespace {

std::string bioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, size > 0 ? static_cast<size_t>(size) : 0);
}

BioPtr memoryBio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) {
    throwOpensslError("cannot create memory BIO");
  }
  return bio;
}

BioPtr readOnlyBio(std::string_view data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) {
    throwOpensslError("cannot create memory BIO");
  }
  return bio;
}

} // namespace

std::string opensslErrors() {
  std::string out;
  char buf[256];
  while (const unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) {
      out += "; ";
    }
    out += buf;
  }
  return out.empty() ? "none" : out;
}

void throwOpensslError(const std::string& what) {
  throw CryptoError(what + ": openssl=" + opensslErrors());
}

std::optional<KeyType> parseKeyType(std::string_view text) {
  static const std::pair<std::string_view, KeyType> kNames[] = {
      {"ec256", KeyType::EcP256},    {"p256", KeyType::EcP256},     {"ec384", KeyType::EcP384},
      {"p384", KeyType::EcP384},     {"rsa2048", KeyType::Rsa2048}, {"rsa3072", KeyType::Rsa3072},
      {"rsa4096", KeyType::Rsa4096},
  };
  for (const auto& [name, type] : kNames) {
    if (text == name) {
      return type;
    }
  }
  return std::nullopt;
}

std::string keyTypeName(KeyType type) {
  switch (type) {
  case KeyType::EcP256:
    return "ec256";
  case KeyType::EcP384:
    return "ec384";
  case KeyType::Rsa2048:
    return "rsa2048";
  case KeyType::Rsa3072:
    return "rsa3072";
  case KeyType::Rsa4096:
    return "rsa4096";
  }
  return "unknown";
}

PkeyPtr generateKey(KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
  case KeyType::EcP256:
    key = EVP_EC_gen("P-256");
    break;
  case KeyType::EcP384:
    key = EVP_EC_gen("P-384");
    break;
  case KeyType::Rsa2048:
    key = EVP_RSA_gen(2048);
    break;
  case KeyType::Rsa3072:
    key = EVP_RSA_gen(3072);
    break;
  case KeyType::Rsa4096:
    key = EVP_RSA_gen(4096);
    break;
  }
  if (key == nullptr) {
    throwOpensslError("cannot generate " + keyTypeName(type) + " key");
  }
  return PkeyPtr(key);
}

std::string privateKeyPem(EVP_PKEY* key) {
  auto bio = memoryBio();
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throwOpensslError("cannot encode private key");
  }
  return bioContents(bio.get());
}

PkeyPtr parsePrivateKeyPem(std::string_view pem) {
  auto bio = readOnlyBio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    throwOpensslError("cannot parse private key");
  }
  return key;
}

std::string certificatePem(X509* cert) {
  auto bio = memoryBio();
  if (PEM_write_bio_X509(bio.get(), cert) != 1) {
    throwOpensslError("cannot encode certificate");
  }
  return bioContents(bio.get());
}

std::vector<X509Ptr> parseCertificatesPem(std::string_view pem) {
  auto bio = readOnlyBio(pem);
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  if (certs.empty()) {
    throwOpensslError("no certificate in PEM data");
  }
  // The loop ends on "no start line" after the last certificate: expected, not an error.
  const unsigned long last = ERR_peek_last_error();
  if (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
    throwOpensslError("malformed certificate in PEM data");
  }
  ERR_clear_error();
  return certs;
}

std::string certificateDer(X509* cert) {
  unsigned char* der = nullptr;
  const int size = i2d_X509(cert, &der);
  if (size <= 0) {
    throwOpensslError("cannot encode certificate as DER");
  }
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return out;
}

std::string requestDer(X509_REQ* request) {
  unsigned char* der = nullptr;
  const int size = i2d_X509_REQ(request, &der);
  if (size <= 0) {
    throwOpensslError("cannot encode certificate request as DER");
  }
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return out;
}

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64urlDecode(std::string_view text) {
  // Accept the standard alphabet and padding too: EAB keys are sometimes handed out that way.
  while (!text.empty() && text.back() == '=') {
    text.remove_suffix(1);
  }
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '-' || c == '+') {
      v = 62;
    } else if (c == '_' || c == '/') {
      v = 63;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  if (bits >= 6) {
    return std::nullopt;
  }
  return out;
}

std::string sha256(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  if (EVP_Digest(bytes.data(), bytes.size(), digest, nullptr, EVP_sha256(), nullptr) != 1) {
    throwOpensslError("cannot compute SHA-256");
  }
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

std::string toHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    out += kDigits[(static_cast<unsigned char>(c) >> 4) & 15];
    out += kDigits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

common::Clock::TimePoint asn1TimeToTimePoint(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    throwOpensslError("malformed certificate time");
  }
  return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

void setRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    throwOpensslError("cannot draw a random serial number");
  }
  bytes[0] &= 0x7f; // positive, and DER needs no leading zero byte
  bytes[0] |= 0x01; // a non-zero first byte: always 16 bytes long
  BignumPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    throwOpensslError("cannot set serial number");
  }
}

} // namespace certmgr
