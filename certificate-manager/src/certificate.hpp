#pragma once

#include "common/clock.hpp"
#include "openssl_util.hpp"

#include <optional>
#include <string>
#include <vector>

namespace certmgr {

/// The names a certificate is for: DNS names (lower case) and IP addresses (canonical text),
/// each sorted and without duplicates, so two sets compare with ==.
struct Identifiers {
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;

  /// Sorts, lower-cases DNS names, canonicalizes IPs and drops duplicates.
  void normalize();
  bool empty() const { return dns_names.empty() && ip_addresses.empty(); }
  bool operator==(const Identifiers&) const = default;
  /// "a.example,b.example,192.0.2.1" for logs.
  std::string describe() const;
};

/// "192.0.2.1", "2001:db8::1" for any way of writing the address; nothing if not an address.
std::optional<std::string> canonicalIp(std::string_view text);

/// A valid DNS name for a certificate: letters, digits, '-', dots, optionally "*." in front.
bool isValidDnsName(std::string_view name);

/// What renewal decisions need to know about a certificate.
struct CertificateInfo {
  common::Clock::TimePoint not_before;
  common::Clock::TimePoint not_after;
  Identifiers identifiers;
  /// Lower-case hex of the serial number.
  std::string serial;
  /// Lower-case hex SHA-256 of the DER certificate.
  std::string sha256_fingerprint;
  /// RFC 9773 §4.1 certificate identifier, when the certificate has an Authority Key Identifier.
  std::optional<std::string> ari_cert_id;
};

/// Reads validity, SANs, serial and fingerprint. Throws CryptoError.
CertificateInfo inspectCertificate(X509* cert);

/// True when `key` is the private key of `cert`'s public key.
bool keyMatchesCertificate(EVP_PKEY* key, X509* cert);

/// True when `cert` carries a valid signature by `issuer`'s key.
bool signedBy(X509* cert, X509* issuer);

/// What is missing from and extra in `have` compared with `want`, e.g.
/// "missing=b.example extra=old.example"; nothing when they are equal.
std::optional<std::string> describeMismatch(const Identifiers& want, const Identifiers& have);

} // namespace certmgr
