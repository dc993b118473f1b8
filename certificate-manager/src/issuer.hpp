#pragma once

#include "certificate.hpp"
#include "openssl_util.hpp"

#include <optional>
#include <string>

namespace certmgr {

/// A new private key with its certificate chain, both PEM, leaf first in the chain.
struct IssuedPair {
  std::string key_pem;
  std::string chain_pem;
};

/// RFC 9773 suggested renewal window.
struct RenewalWindow {
  common::Clock::TimePoint start;
  common::Clock::TimePoint end;
};

/// Where certificates come from: the LAN CA or an ACME server.
class Issuer {
public:
  virtual ~Issuer() = default;

  /// "lan-ca" or "acme": for logs and the status file.
  virtual std::string name() const = 0;

  /// Issues a certificate for `identifiers` with a new key of `key_type`. `replaces` is the
  /// ARI certificate identifier of the certificate being renewed, when known. Throws
  /// common::Error (or a subclass) when issuance fails.
  virtual IssuedPair issue(const Identifiers& identifiers, KeyType key_type,
                           const std::optional<std::string>& replaces) = 0;

  /// Why the current leaf must be replaced whatever its dates say, e.g. "not signed by the
  /// current CA"; nothing when it is fine.
  virtual std::optional<std::string> rejectCurrent(X509* leaf) {
    (void)leaf;
    return std::nullopt;
  }

  /// The CA's suggested renewal window for `info` (ACME Renewal Information), when offered.
  virtual std::optional<RenewalWindow> renewalWindow(const CertificateInfo& info) {
    (void)info;
    return std::nullopt;
  }
};

} // namespace certmgr
