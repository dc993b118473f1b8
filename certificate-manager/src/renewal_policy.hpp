#pragma once

#include "certificate_writer.hpp"
#include "common/clock.hpp"
#include "issuer.hpp"

#include <optional>
#include <string>

namespace certmgr {

/// When a certificate is due without renewal information from its CA: notBefore + 2/3 of the
/// lifetime, or + 1/2 for lifetimes of 10 days or less (as certbot 4, lego 5, certmagic agree).
common::Clock::TimePoint renewalTime(common::Clock::TimePoint not_before,
                                     common::Clock::TimePoint not_after);

/// A point inside an RFC 9773 suggested window; `fraction` in [0, 1) picks where (§4.2 asks
/// for a uniformly random choice; the caller draws it once per window).
common::Clock::TimePoint timeInWindow(const RenewalWindow& window, double fraction);

/// What a check decided.
struct RenewalDecision {
  bool renew = false;
  /// Why, as the log line says it: "names changed, renewing: missing=b.example",
  /// "renewal not due until 2026-01-02T03:04:05Z".
  std::string reason;
  /// When the certificate becomes due (renew == false), or now.
  common::Clock::TimePoint due;
};

/// Everything a decision depends on.
struct RenewalInputs {
  const CurrentPair* current = nullptr;
  Identifiers wanted;
  /// Issuer's objection to the current leaf ("not signed by the current lan ca").
  std::optional<std::string> rejected;
  /// ACME Renewal Information for the current certificate, when the CA offers it.
  std::optional<RenewalWindow> window;
  /// Where in `window` to renew, drawn once per window.
  double window_fraction = 0.5;
};

/// Decides whether to renew now: at once when files are missing, unreadable or do not match,
/// when names or IPs changed, when the issuer rejects the leaf, or when it has expired;
/// otherwise at the ARI window time if there is one, else at renewalTime().
RenewalDecision decideRenewal(const RenewalInputs& inputs, common::Clock::TimePoint now);

} // namespace certmgr
