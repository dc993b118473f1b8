#pragma once

#include "openssl_util.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace certmgr {

/// The ACME account key: ECDSA P-256, signing with ES256 (RFC 7518 §3.4).
class AccountKey {
public:
  /// Takes a P-256 key. Throws CryptoError for any other kind.
  explicit AccountKey(PkeyPtr key);

  /// Loads the key from `path`, or creates it there (0600) when the file does not exist.
  /// Throws common::SetupError when the file exists but is not a P-256 private key.
  static AccountKey loadOrCreate(const std::filesystem::path& path);

  /// The public JWK with the required members in lexicographic order and no whitespace, the
  /// form RFC 7638 §3 hashes for the thumbprint.
  const std::string& jwk() const { return jwk_; }

  /// base64url(SHA-256(jwk)), RFC 7638.
  const std::string& thumbprint() const { return thumbprint_; }

  /// The ES256 signature of `input`: r and s, 32 bytes each, concatenated (not DER).
  std::string sign(std::string_view input) const;

  EVP_PKEY* get() const { return key_.get(); }

private:
  PkeyPtr key_;
  std::string jwk_;
  std::string thumbprint_;
};

/// A JWS in flattened JSON serialization (RFC 7515 §7.2.2), as ACME requires (RFC 8555 §6.2):
/// `{"protected":..,"payload":..,"signature":..}`. `payload` is the JSON text, or empty for a
/// POST-as-GET.
std::string signJws(const AccountKey& key, const std::string& protected_header,
                    std::string_view payload);

/// The external account binding JWS of RFC 8555 §7.3.4: the account's JWK as payload, signed
/// with HS256 under the CA-provided MAC key (raw bytes).
std::string externalAccountBinding(const AccountKey& key, const std::string& kid,
                                   std::string_view mac_key, const std::string& new_account_url);

/// Converts a DER ECDSA signature to the fixed-width r||s form of JWS (`width` bytes each).
std::string derToRawSignature(std::string_view der, size_t width);

/// RFC 8555 §8.1: token "." thumbprint.
inline std::string keyAuthorization(const std::string& token, const AccountKey& key) {
  return token + "." + key.thumbprint();
}

} // namespace certmgr
