#include "wait.hpp"

#include "common/logging.hpp"
#include "registry_client.hpp"
#include "step_error.hpp"

#include <algorithm>
#include <filesystem>
#include <thread>

namespace admin {

Pacer Pacer::real() {
  return Pacer{[] { return std::chrono::steady_clock::now(); },
               [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }};
}

std::optional<std::string> pollUntil(const Pacer& pacer, std::chrono::milliseconds timeout,
                                     const std::string& what,
                                     const std::function<std::optional<std::string>()>& attempt) {
  auto log = common::logger("wait");
  const auto start = pacer.now();
  auto delay = std::chrono::milliseconds(1000);
  std::string last_logged;
  auto logged_at = start;
  while (true) {
    auto reason = attempt();
    if (!reason) {
      return std::nullopt;
    }
    const auto now = pacer.now();
    if (now - start >= timeout) {
      return reason;
    }
    if (*reason != last_logged || now - logged_at >= std::chrono::seconds(15)) {
      const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
      log->info("waiting for {}: waited={}s reason={}", what, waited, *reason);
      last_logged = *reason;
      logged_at = now;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout - (now - start));
    pacer.sleep(std::min(delay, left));
    delay = std::min(delay * 3 / 2, std::chrono::milliseconds(5000));
  }
}

bool proxyReady(common::HttpClient& http, const std::string& url, std::string& reason) {
  common::HttpRequest request;
  request.url = url;
  request.connect_timeout = std::chrono::seconds(5);
  request.timeout = std::chrono::seconds(10);
  const auto result = http.perform(request);
  if (!result) {
    reason = "no answer: " + result.error().message;
    return false;
  }
  if (result->status != 200) {
    const auto summary = errorSummary(result->body);
    reason = "answered " + std::to_string(result->status) + (summary.empty() ? "" : ": " + summary);
    return false;
  }
  reason = "ready";
  return true;
}

void waitForProxy(common::HttpClient& http, const Config& config, const Pacer& pacer) {
  auto log = common::logger("wait");
  const auto start = pacer.now();
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.wait_timeout);

  const std::string ready_url = config.proxy_url + "/readyz";
  auto failure = pollUntil(pacer, timeout, "proxy readiness", [&]() -> std::optional<std::string> {
    std::string reason;
    if (proxyReady(http, ready_url, reason)) {
      return std::nullopt;
    }
    return reason;
  });
  if (failure) {
    throw StepError("proxy not ready after " + std::to_string(config.wait_timeout.count()) +
                        "s: GET " + ready_url + " " + *failure +
                        " (is the proxy running, and is SETUP_PROXY_URL its address?)",
                    common::kExitTempFail);
  }
  log->info("proxy ready: url={}", config.proxy_url);

  if (!config.tlsEnabled()) {
    return;
  }
  // The certificate may come after the proxy is ready: certificate-manager writes it, the
  // proxy picks it up when it appears.
  const std::string tls_url = config.tls_url + "/v2/";
  const auto left = std::max(
      std::chrono::milliseconds(1000),
      timeout - std::chrono::duration_cast<std::chrono::milliseconds>(pacer.now() - start));
  failure = pollUntil(pacer, left, "the HTTPS listener", [&]() -> std::optional<std::string> {
    std::error_code ec;
    const bool have_ca = std::filesystem::exists(config.ca_file, ec);
    common::HttpRequest request;
    request.url = tls_url;
    request.ca_file = have_ca ? config.ca_file.string() : "";
    request.connect_timeout = std::chrono::seconds(5);
    request.timeout = std::chrono::seconds(10);
    const auto result = http.perform(request);
    if (!result) {
      return "no verified answer (" +
             std::string(have_ca ? "CA " + config.ca_file.string() : "system trust store") +
             "): " + result.error().message;
    }
    // 401 means TLS works and the proxy wants credentials: enough here.
    if (result->status != 200 && result->status != 401) {
      return "answered " + std::to_string(result->status);
    }
    return std::nullopt;
  });
  if (failure) {
    throw StepError("HTTPS listener not usable after " +
                        std::to_string(config.wait_timeout.count()) + "s: GET " + tls_url + " " +
                        *failure +
                        " (is certificate-manager running? does the certificate name the host "
                        "of SETUP_PROXY_TLS_URL?)",
                    common::kExitTempFail);
  }
  log->info("https listener verified: url={} ca={}", config.tls_url, config.ca_file.string());
}

} // namespace admin
