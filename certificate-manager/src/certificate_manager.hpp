#pragma once

#include "certificate_writer.hpp"
#include "common/clock.hpp"
#include "common/healthcheck.hpp"
#include "config.hpp"
#include "issuer.hpp"
#include "renewal_policy.hpp"
#include "schedule.hpp"

#include <memory>
#include <optional>
#include <string>

namespace certmgr {

/// The outcome of one check.
struct CheckResult {
  bool ok = false;
  bool renewed = false;
  /// The decision, or the error that ended the check.
  std::string message;
  common::Clock::TimePoint next_check;
};

/// One check, end to end: look at the files, decide, issue and write when due, record the
/// status file, report to healthchecks. The certificate being served is left alone when
/// anything fails.
class CertificateManager {
public:
  CertificateManager(const Config& config, Issuer& issuer, CertificateWriter& writer,
                     const common::Clock& clock, common::HealthcheckPinger& pinger,
                     std::shared_ptr<common::LogTail> log_tail);

  /// Never throws: failures are results, logged and reported.
  CheckResult check();

private:
  RenewalDecision decide(const CurrentPair& current);
  void verifyIssued(const IssuedPair& pair) const;
  void recordStatus(const CheckResult& result, const CurrentPair& current,
                    const std::optional<RenewalDecision>& decision);

  const Config& config_;
  Issuer& issuer_;
  CertificateWriter& writer_;
  const common::Clock& clock_;
  common::HealthcheckPinger& pinger_;
  std::shared_ptr<common::LogTail> log_tail_;
  ScheduleOptions schedule_;

  int consecutive_failures_ = 0;
  std::optional<common::Clock::TimePoint> last_success_;
  std::optional<common::Clock::TimePoint> last_renewal_;
  // RFC 9773 §4.2: one random point per suggested window, not a new one at every check.
  std::optional<RenewalWindow> drawn_window_;
  double window_fraction_ = 0.5;
};

/// Loggers of the certificate-manager's components, with `tail` attached so a failed run's
/// log can travel in the failure ping.
void attachLogTail(const std::shared_ptr<common::LogTail>& tail);

} // namespace certmgr
