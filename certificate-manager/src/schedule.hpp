#pragma once

#include "common/clock.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

namespace certmgr {

/// When checks happen.
struct ScheduleOptions {
  std::chrono::seconds interval{12 * 3600};
  std::chrono::seconds retry_initial{60};
  std::chrono::seconds retry_max{6 * 3600};
};

/// The next check after one that ended at `now`: after a success at the regular interval, or
/// earlier when the certificate becomes due before that (short-lived certificates); after
/// `failures` failed checks in a row retry_initial doubled per failure, at most retry_max and
/// never later than the regular interval.
common::Clock::TimePoint nextCheckTime(common::Clock::TimePoint now, int failures,
                                       std::optional<common::Clock::TimePoint> due,
                                       const ScheduleOptions& options);

/// Runs `check` once at start and then whenever the time it returns has come, until stop().
/// `check` returns the time of the next check.
class Scheduler {
public:
  Scheduler(const common::Clock& clock, std::function<common::Clock::TimePoint()> check);

  /// Blocks until stop() is called.
  void run();
  /// Thread-safe; makes run() return after the running check, if any.
  void stop();

private:
  const common::Clock& clock_;
  std::function<common::Clock::TimePoint()> check_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopped_ = false;
};

} // namespace certmgr
