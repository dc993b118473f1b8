#pragma once

#include "access.hpp"
#include "blob_store.hpp"
#include "cache_cleaner.hpp"
#include "metrics.hpp"
#include "registry_api.hpp"
#include "upstream_set.hpp"
#include "warmer.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace proxy {

/// The result of the proxy's self-check (readiness, heartbeat).
struct SelfCheck {
  bool ok = true;
  std::string reason;
};

/// Totals of what is cached.
struct CacheTotals {
  std::uint64_t bytes = 0;
  std::uint64_t blobs = 0;
  std::uint64_t manifests = 0;
};

/// The endpoints outside /v2/: /healthz (alive), /readyz (can cache), /status (JSON for
/// uptime-kuma and people), /metrics (Prometheus, protected), and the ACME HTTP-01 files the
/// certificate-manager writes.
class Monitoring {
public:
  Monitoring(const ProxyConfig& config, BlobStore& store, Metrics& metrics, AccessControl& access,
             Upstreams& upstreams);

  /// Adds the cleanup's and the warm list's figures to /metrics and /status.
  void watch(const CacheCleaner* cleaner, const Warmer* warmer);

  /// The answer for `request`, or nothing when the path is not one of these.
  std::optional<ApiResponse> handle(const ApiRequest& request);

  /// Storage writable and with room.
  SelfCheck selfCheck();

private:
  ApiResponse status();
  ApiResponse metrics(const ApiRequest& request);
  std::optional<ApiResponse> acmeChallenge(const std::string& token);
  CacheTotals cacheTotals();

  const ProxyConfig& config_;
  BlobStore& store_;
  Metrics& metrics_;
  AccessControl& access_;
  Upstreams& upstreams_;
  const CacheCleaner* cleaner_ = nullptr;
  const Warmer* warmer_ = nullptr;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::mutex mutex_;
  std::optional<CacheTotals> totals_;
  std::chrono::steady_clock::time_point totals_at_{};
};

} // namespace proxy
