#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace proxy {

/// Counters for /metrics and /status. Cheap to update from every request. Thread-safe.
class Metrics {
public:
  /// One answered request. `route` is the API route ("manifest", "blob", ...), `source`
  /// where its bytes came from ("cache", "stale", "upstream", "-").
  void recordRequest(const std::string& route, int status, const std::string& source,
                     std::uint64_t bytes);
  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }
  /// Body bytes sent, by where they came from ("cache", "upstream").
  std::map<std::string, std::uint64_t> bytesBySource() const;

  /// The counters in Prometheus text format, without the upstreams' and the cache's, which the
  /// caller adds.
  std::string prometheusCounters() const;

private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, std::uint64_t> hits_by_route_;
  std::map<std::string, std::uint64_t> misses_by_route_;
  std::map<std::string, std::uint64_t> bytes_by_source_;
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
};

} // namespace proxy
