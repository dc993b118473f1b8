#pragma once

#include "acme_client.hpp"
#include "challenge_solver.hpp"
#include "common/clock.hpp"
#include "common/http_client.hpp"
#include "config.hpp"
#include "issuer.hpp"

#include <chrono>
#include <map>
#include <memory>

namespace certmgr {

/// A certificate signing request for `identifiers` (DNS and IP SANs), signed by `key`.
/// Throws CryptoError.
std::string makeCsrDer(EVP_PKEY* key, const Identifiers& identifiers);

/// Issues certificates from an ACME CA: account, order, one challenge per authorization
/// answered by `solver`, finalize with a CSR for a new key, download of the chain. Asks for
/// renewal information (RFC 9773) when the directory offers it.
class AcmeIssuer : public Issuer {
public:
  AcmeIssuer(const AcmeConfig& config, std::unique_ptr<ChallengeSolver> solver,
             const common::Clock& clock, AcmeClientOptions client_options = {});

  std::string name() const override { return "acme"; }
  IssuedPair issue(const Identifiers& identifiers, KeyType key_type,
                   const std::optional<std::string>& replaces) override;
  std::optional<RenewalWindow> renewalWindow(const CertificateInfo& info) override;

private:
  AcmeClient& client();
  IssuedPair issueOnce(const Identifiers& identifiers, KeyType key_type,
                       const std::optional<std::string>& replaces);

  const AcmeConfig& config_;
  std::unique_ptr<ChallengeSolver> solver_;
  const common::Clock& clock_;
  AcmeClientOptions client_options_;
  common::HttpClient http_;
  std::unique_ptr<AccountKey> account_key_;
  std::unique_ptr<AcmeClient> client_;
  bool account_ready_ = false;

  struct CachedWindow {
    RenewalWindow window;
    common::Clock::TimePoint fetch_after;
  };
  std::map<std::string, CachedWindow> windows_;
};

} // namespace certmgr
