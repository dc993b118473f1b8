#pragma once

#include "common/clock.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace certmgr {

/// The certificate being served, as the status file shows it.
struct StatusCertificate {
  std::string serial;
  std::string sha256_fingerprint;
  common::Clock::TimePoint not_before;
  common::Clock::TimePoint not_after;
  common::Clock::TimePoint renew_at;
  std::vector<std::string> names;
};

/// `status.json` in the output directory: the result of the last check. Written after every
/// check; read by `certificate-manager --healthcheck` (the container's HEALTHCHECK) and by
/// anyone curious.
struct Status {
  std::string mode;
  /// "ok" or "failed".
  std::string result;
  /// The decision or the error of the last check.
  std::string message;
  common::Clock::TimePoint checked_at;
  std::optional<common::Clock::TimePoint> last_success_at;
  std::optional<common::Clock::TimePoint> last_renewal_at;
  common::Clock::TimePoint next_check_at;
  /// After this the file counts as stale: the checking loop stopped.
  common::Clock::TimePoint stale_after;
  int consecutive_failures = 0;
  std::optional<StatusCertificate> certificate;
};

/// Writes the status atomically. Throws common::SetupError.
void writeStatus(const std::filesystem::path& path, const Status& status);

/// Reads a status file; on failure returns nothing and says why in `error`.
std::optional<Status> readStatus(const std::filesystem::path& path, std::string& error);

/// The container health verdict: healthy when the last check succeeded, the file is not
/// stale, and the certificate has not expired.
struct HealthVerdict {
  bool healthy = false;
  std::string reason;
};
HealthVerdict evaluateHealth(const Status& status, common::Clock::TimePoint now);

} // namespace certmgr
