#include "certificate_manager.hpp"

#include "common/errors.hpp"
#include "common/logging.hpp"
#include "status_file.hpp"
#include "time_format.hpp"

#include <algorithm>
#include <random>

namespace certmgr {
namespace {

// Every component logger of this program: the run's log tail must see all of them.
const char* const kComponents[] = {"certmgr", "lan-ca", "acme",     "http01",
                                   "dns01",   "writer", "schedule", "healthcheck"};

// Clients stop trusting the status file this long after a missed check.
constexpr std::chrono::minutes kStaleGrace{15};

} // namespace

void attachLogTail(const std::shared_ptr<common::LogTail>& tail) {
  for (const char* name : kComponents) {
    auto& sinks = common::logger(name)->sinks();
    if (std::find(sinks.begin(), sinks.end(), tail) == sinks.end()) {
      sinks.push_back(tail);
    }
  }
}

CertificateManager::CertificateManager(const Config& config, Issuer& issuer,
                                       CertificateWriter& writer, const common::Clock& clock,
                                       common::HealthcheckPinger& pinger,
                                       std::shared_ptr<common::LogTail> log_tail)
    : config_(config), issuer_(issuer), writer_(writer), clock_(clock), pinger_(pinger),
      log_tail_(std::move(log_tail)), schedule_{config.check_interval, config.retry_initial,
                                                config.retry_max} {}

RenewalDecision CertificateManager::decide(const CurrentPair& current) {
  RenewalInputs inputs;
  inputs.current = &current;
  inputs.wanted = config_.identifiers;
  if (current.state == CurrentPair::State::Valid) {
    inputs.rejected = issuer_.rejectCurrent(current.leaf.get());
    inputs.window = issuer_.renewalWindow(*current.info);
  }
  if (inputs.window) {
    const bool same = drawn_window_ && drawn_window_->start == inputs.window->start &&
                      drawn_window_->end == inputs.window->end;
    if (!same) {
      static thread_local std::mt19937_64 rng{std::random_device{}()};
      window_fraction_ = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      drawn_window_ = inputs.window;
    }
    inputs.window_fraction = window_fraction_;
  }
  return decideRenewal(inputs, clock_.now());
}

void CertificateManager::verifyIssued(const IssuedPair& pair) const {
  auto chain = parseCertificatesPem(pair.chain_pem);
  auto key = parsePrivateKeyPem(pair.key_pem);
  if (!keyMatchesCertificate(key.get(), chain.front().get())) {
    throw common::UnavailableError("issued certificate does not match the new key");
  }
  const auto info = inspectCertificate(chain.front().get());
  if (const auto mismatch = describeMismatch(config_.identifiers, info.identifiers)) {
    throw common::UnavailableError("issued certificate has other names than requested: " +
                                   *mismatch);
  }
  if (info.not_after <= clock_.now()) {
    throw common::UnavailableError("issued certificate has already expired");
  }
}

CheckResult CertificateManager::check() {
  auto log = common::logger("certmgr");
  if (log_tail_) {
    log_tail_->clear();
  }
  pinger_.start();
  log->info("check started: mode={} names={}", issuer_.name(), config_.identifiers.describe());

  CheckResult result;
  CurrentPair current = writer_.readCurrent();
  std::optional<RenewalDecision> decision;
  try {
    decision = decide(current);
    log->info("{}", decision->reason);
    if (decision->renew) {
      std::optional<std::string> replaces;
      if (current.state == CurrentPair::State::Valid) {
        replaces = current.info->ari_cert_id;
      }
      const IssuedPair pair = issuer_.issue(config_.identifiers, config_.key_type, replaces);
      verifyIssued(pair);
      writer_.write(pair);
      last_renewal_ = clock_.now();
      result.renewed = true;

      current = writer_.readCurrent();
      if (current.state != CurrentPair::State::Valid) {
        throw common::SetupError("certificate written but cannot be read back: " + current.detail);
      }
      decision = decide(current);
      log->info("certificate issued: serial={} not_before={} not_after={} next={}",
                current.info->serial, formatTime(current.info->not_before),
                formatTime(current.info->not_after), decision->reason);
    }
    result.ok = true;
    result.message = decision->reason;
    consecutive_failures_ = 0;
    last_success_ = clock_.now();
  } catch (const std::exception& e) {
    ++consecutive_failures_;
    result.ok = false;
    result.message = e.what();
    const bool serving =
        current.state == CurrentPair::State::Valid && current.info->not_after > clock_.now();
    if (serving) {
      log->error("renewal failed, the current certificate stays in place: not_after={} "
                 "failures={} err={}",
                 formatTime(current.info->not_after), consecutive_failures_, e.what());
    } else {
      log->error("issuance failed, no valid certificate in place: failures={} err={}",
                 consecutive_failures_, e.what());
    }
  }

  std::optional<common::Clock::TimePoint> due;
  if (decision && !decision->renew) {
    due = decision->due;
  }
  result.next_check = nextCheckTime(clock_.now(), consecutive_failures_, due, schedule_);
  recordStatus(result, current, decision);

  const std::string tail = log_tail_ ? log_tail_->text() : std::string();
  if (result.ok) {
    pinger_.success(tail);
  } else {
    pinger_.fail(tail);
  }
  return result;
}

void CertificateManager::recordStatus(const CheckResult& result, const CurrentPair& current,
                                      const std::optional<RenewalDecision>& decision) {
  Status status;
  status.mode = issuer_.name();
  status.result = result.ok ? "ok" : "failed";
  status.message = result.message;
  status.checked_at = clock_.now();
  status.last_success_at = last_success_;
  status.last_renewal_at = last_renewal_;
  status.next_check_at = result.next_check;
  status.stale_after = result.next_check + kStaleGrace + config_.acme.order_timeout;
  status.consecutive_failures = consecutive_failures_;
  if (current.state == CurrentPair::State::Valid) {
    StatusCertificate cert;
    cert.serial = current.info->serial;
    cert.sha256_fingerprint = current.info->sha256_fingerprint;
    cert.not_before = current.info->not_before;
    cert.not_after = current.info->not_after;
    cert.renew_at = decision && !decision->renew
                        ? decision->due
                        : renewalTime(current.info->not_before, current.info->not_after);
    const auto& ids = current.info->identifiers;
    cert.names = ids.dns_names;
    cert.names.insert(cert.names.end(), ids.ip_addresses.begin(), ids.ip_addresses.end());
    status.certificate = cert;
  }
  try {
    writeStatus(config_.statusPath(), status);
  } catch (const std::exception& e) {
    common::logger("certmgr")->error("cannot write status file: path={} err={}",
                                     config_.statusPath().string(), e.what());
  }
}

} // namespace certmgr
