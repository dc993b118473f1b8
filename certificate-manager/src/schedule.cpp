#include "schedule.hpp"

#include "common/logging.hpp"
#include "time_format.hpp"

#include <algorithm>

namespace certmgr {

common::Clock::TimePoint nextCheckTime(common::Clock::TimePoint now, int failures,
                                       std::optional<common::Clock::TimePoint> due,
                                       const ScheduleOptions& options) {
  const auto regular = now + options.interval;
  if (failures > 0) {
    auto delay = options.retry_initial;
    for (int i = 1; i < failures && delay < options.retry_max; ++i) {
      delay *= 2;
    }
    delay = std::min({delay, options.retry_max, options.interval});
    return now + delay;
  }
  if (due && *due > now && *due < regular) {
    return *due;
  }
  return regular;
}

Scheduler::Scheduler(const common::Clock& clock, std::function<common::Clock::TimePoint()> check)
    : clock_(clock), check_(std::move(check)) {}

void Scheduler::run() {
  auto log = common::logger("schedule");
  std::unique_lock lock(mutex_);
  while (!stopped_) {
    lock.unlock();
    const auto next = check_();
    lock.lock();
    log->info("next check scheduled: at={}", formatTime(next));
    // Wall-clock target, re-read after every wake-up: a suspended host catches up at once.
    while (!stopped_ && clock_.now() < next) {
      const auto left = next - clock_.now();
      wake_.wait_for(lock,
                     std::min<common::Clock::TimePoint::duration>(left, std::chrono::minutes(1)));
    }
  }
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  wake_.notify_all();
}

} // namespace certmgr
