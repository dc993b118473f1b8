#pragma once

#include "common/clock.hpp"
#include "issuer.hpp"

#include <chrono>
#include <filesystem>

namespace certmgr {

/// A private CA for the LAN in the style of mkcert: an ECDSA P-256 root valid for 10 years with
/// path length 0, created once in the output directory (`ca.crt` published, `ca.key` 0600) and
/// kept across renewals, so clients trust it once.
class LanCa : public Issuer {
public:
  /// Loads `ca.crt` and `ca.key` from `dir`, or creates them when both are absent. Throws
  /// common::SetupError when only one exists or they do not belong together (a user must decide
  /// whether to restore or to remove them: a new CA means every client must trust it again).
  LanCa(const std::filesystem::path& dir, const common::Clock& clock,
        std::chrono::seconds leaf_validity);

  std::string name() const override { return "lan-ca"; }
  IssuedPair issue(const Identifiers& identifiers, KeyType key_type,
                   const std::optional<std::string>& replaces) override;
  std::optional<std::string> rejectCurrent(X509* leaf) override;

  X509* certificate() const { return ca_cert_.get(); }
  /// True when this run created the CA.
  bool created() const { return created_; }

  static constexpr std::chrono::hours kCaValidity{24 * 3650};

private:
  void create(const std::filesystem::path& dir);

  const common::Clock& clock_;
  std::chrono::seconds leaf_validity_;
  PkeyPtr ca_key_;
  X509Ptr ca_cert_;
  bool created_ = false;
};

} // namespace certmgr
