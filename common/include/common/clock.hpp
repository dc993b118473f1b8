#pragma once

#include <atomic>
#include <chrono>

namespace common {

/// Wall-clock time, injectable so tests control expiry and renewal decisions.
class Clock {
public:
  using TimePoint = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

/// The real clock.
class SystemClock : public Clock {
public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
  /// A process-wide instance for production wiring.
  static const SystemClock& instance();
};

/// A clock that only moves when told to.
class FakeClock : public Clock {
public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::seconds(1'700'000'000)))
      : now_(start.time_since_epoch().count()) {}
  TimePoint now() const override { return TimePoint(TimePoint::duration(now_.load())); }
  void advance(std::chrono::system_clock::duration d) { now_ += d.count(); }
  void set(TimePoint t) { now_ = t.time_since_epoch().count(); }

private:
  std::atomic<TimePoint::rep> now_;
};

} // namespace common
