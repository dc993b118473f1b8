#pragma once

#include "common/http_client.hpp"
#include "config.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace admin {

/// The clock and the sleep of the bounded waits; tests pass ones that do not sleep.
struct Pacer {
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<void(std::chrono::milliseconds)> sleep;

  /// The steady clock and std::this_thread::sleep_for.
  static Pacer real();
};

/// Calls `attempt` until it returns nothing (done) or `timeout` has passed, sleeping between
/// tries (1 s, growing to 5 s). `attempt` returns why it is not done yet. Returns nothing when
/// done, else the last reason. Logs the reason when it changes and every 15 s.
std::optional<std::string> pollUntil(const Pacer& pacer, std::chrono::milliseconds timeout,
                                     const std::string& what,
                                     const std::function<std::optional<std::string>()>& attempt);

/// Step 1: waits until the proxy answers GET /readyz with 200 and, when TLS is on, its HTTPS
/// listener answers GET /v2/ with a certificate the CA file (or the system) verifies. Throws
/// StepError (75) naming the URL and the last answer when `config.wait_timeout` runs out.
void waitForProxy(common::HttpClient& http, const Config& config, const Pacer& pacer);

/// For --healthcheck: one GET of `url` (default <proxy>/readyz); true on 200.
bool proxyReady(common::HttpClient& http, const std::string& url, std::string& reason);

} // namespace admin
