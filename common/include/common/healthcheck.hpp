#pragma once

#include "common/http_client.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <spdlog/sinks/base_sink.h>
#include <string>
#include <string_view>
#include <thread>

namespace common {

/// A log sink that keeps the last `capacity` bytes of formatted log lines: the tail of a run's
/// log, for the body of a failure ping. Attach it to the loggers of a run, clear() it when a
/// run starts.
class LogTail : public spdlog::sinks::base_sink<std::mutex> {
public:
  explicit LogTail(std::size_t capacity = 100 * 1024);

  /// What was logged since the last clear(), at most `capacity` bytes, whole lines.
  std::string text() const;
  void clear();

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

private:
  std::size_t capacity_;
  mutable std::mutex buffer_mutex_;
  std::string buffer_;
};

/// How the pinger retries; the defaults are what healthchecks.io recommends.
struct HealthcheckOptions {
  /// Per ping attempt.
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  /// Retries after the first attempt, on timeouts, 408, 429 and 5xx.
  int max_retries = 5;
  /// Delay before the first retry, doubled before each further one.
  std::chrono::milliseconds first_retry_delay = std::chrono::seconds(1);
  /// How to wait between attempts; tests pass one that does not sleep.
  std::function<void(std::chrono::milliseconds)> sleep;
  /// PEM bundle for a self-hosted healthchecks server with a private CA; empty: system store.
  std::string ca_file;
};

/// Pings a healthchecks.io check (hc-ping.com or self-hosted): `<url>/start` when a run starts,
/// `<url>` when it succeeded, `<url>/fail` with the tail of the run's log as POST body when it
/// failed, each with `?rid=<uuid>` so start and end pair up.
///
/// Pings are sent in order by a background thread, so a slow or unreachable server never
/// blocks the run; a failed ping is logged as a warning and never fails anything. Destroying
/// the pinger abandons the ping in flight within about a second and drops the queued ones:
/// call flush() first to give them a bounded time. An empty URL disables the pinger. No method
/// throws.
class HealthcheckPinger {
public:
  explicit HealthcheckPinger(std::string url, HealthcheckOptions options = {});
  ~HealthcheckPinger();
  HealthcheckPinger(const HealthcheckPinger&) = delete;
  HealthcheckPinger& operator=(const HealthcheckPinger&) = delete;

  bool enabled() const { return !url_.empty(); }

  /// Begins a run with a new run id and queues the start ping.
  void start();
  /// Queues the success ping of the current run, with an optional log body.
  void success(std::string_view log = {});
  /// Queues the failure ping of the current run with the log tail as its body.
  void fail(std::string_view log);

  /// Waits until every queued ping was sent or given up, at most `limit`. True when done.
  bool flush(std::chrono::milliseconds limit = std::chrono::seconds(90));

  /// The body limit the server announced in `Ping-Body-Limit` (100 kB until it says).
  std::size_t bodyLimit() const;

  /// The run id of the current run ("" before start()).
  std::string runId() const;

private:
  struct Ping {
    std::string suffix;
    std::string run_id;
    std::string body;
  };

  void enqueue(std::string suffix, std::string_view body);
  void work();
  bool send(const Ping& ping);

  std::string url_;
  HealthcheckOptions options_;
  std::unique_ptr<HttpClient> client_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Ping> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  // Aborts the HTTP request in flight when the pinger is destroyed.
  std::atomic<bool> cancel_{false};
  std::string run_id_;
  std::size_t body_limit_ = 100 * 1024;
  std::thread worker_;
};

/// A random RFC 4122 version 4 UUID in lower-case text.
std::string randomUuid();

} // namespace common
