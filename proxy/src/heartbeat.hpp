#pragma once

#include "common/healthcheck.hpp"
#include "monitoring.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace proxy {

/// Pings healthchecks.io every interval while the self-check passes, and `/fail` with the
/// reason when it does not, so a proxy that died or stopped caching is noticed.
class Heartbeat {
public:
  Heartbeat(const HeartbeatConfig& config, Monitoring& monitoring);
  ~Heartbeat();

  void start();
  void stop();

private:
  void run();

  HeartbeatConfig config_;
  Monitoring& monitoring_;
  common::HealthcheckPinger pinger_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace proxy
