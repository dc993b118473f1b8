#pragma once

#include "common/healthcheck.hpp"

#include <memory>
#include <string>

namespace admin {

/// The component loggers of admin-setup, in one place so the run's log tail sees them all.
extern const char* const kComponents[];

/// Step 6: tells healthchecks.io how the run went: `/start` when it begins, then the success
/// ping with the summary, or `/fail` with the tail of the run's log. Pings never fail the run,
/// and the run waits for them (bounded) before it exits.
class RunReport {
public:
  /// `url` empty: no pings. `ca_bundle`: PEM for a self-hosted server with a private CA.
  RunReport(std::string url, std::string ca_bundle);

  void started();
  void succeeded(const std::string& summary);
  void failed();

  /// Waits for the queued pings, at most 30 s.
  void flush();

  bool enabled() const { return pinger_.enabled(); }

private:
  std::shared_ptr<common::LogTail> tail_;
  common::HealthcheckPinger pinger_;
};

} // namespace admin
