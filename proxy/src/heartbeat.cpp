#include "heartbeat.hpp"

#include "common/logging.hpp"

namespace proxy {

Heartbeat::Heartbeat(const HeartbeatConfig& config, Monitoring& monitoring)
    : config_(config), monitoring_(monitoring), pinger_(config.url) {}

Heartbeat::~Heartbeat() {
  stop();
}

void Heartbeat::start() {
  if (!pinger_.enabled()) {
    return;
  }
  common::logger("heartbeat")
      ->info("heartbeat on: interval={}s",
             std::chrono::duration_cast<std::chrono::seconds>(config_.interval).count());
  pinger_.start();
  thread_ = std::thread([this] { run(); });
}

void Heartbeat::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  pinger_.flush(std::chrono::seconds(5));
}

void Heartbeat::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    const auto check = monitoring_.selfCheck();
    if (check.ok) {
      pinger_.success();
    } else {
      common::logger("heartbeat")->warn("self-check failed, reporting: reason={}", check.reason);
      pinger_.fail("docker-cache-proxy self-check failed: " + check.reason + "\n");
    }
    lock.lock();
    wake_.wait_for(lock, config_.interval, [this] { return stopping_; });
  }
}

} // namespace proxy
