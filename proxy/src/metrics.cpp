#include "metrics.hpp"

#include <sstream>

namespace proxy {

void Metrics::recordRequest(const std::string& route, int status, const std::string& source,
                            std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  if (source == "cache" || source == "stale") {
    ++hits_;
    ++hits_by_route_[route];
    bytes_by_source_["cache"] += bytes;
  } else if (source == "upstream") {
    ++misses_;
    ++misses_by_route_[route];
    bytes_by_source_["upstream"] += bytes;
  }
}

std::map<std::string, std::uint64_t> Metrics::bytesBySource() const {
  std::lock_guard lock(mutex_);
  return bytes_by_source_;
}

std::string Metrics::prometheusCounters() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP dcp_requests_total Requests answered, by route and status.\n"
         "# TYPE dcp_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out << "dcp_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} "
        << count << "\n";
  }
  out << "# HELP dcp_cache_hits_total Requests answered from the cache, by kind.\n"
         "# TYPE dcp_cache_hits_total counter\n";
  for (const auto& [route, count] : hits_by_route_) {
    out << "dcp_cache_hits_total{kind=\"" << route << "\"} " << count << "\n";
  }
  out << "# HELP dcp_cache_misses_total Requests that needed the upstream, by kind.\n"
         "# TYPE dcp_cache_misses_total counter\n";
  for (const auto& [route, count] : misses_by_route_) {
    out << "dcp_cache_misses_total{kind=\"" << route << "\"} " << count << "\n";
  }
  out << "# HELP dcp_served_bytes_total Body bytes sent to clients, by where they came from.\n"
         "# TYPE dcp_served_bytes_total counter\n";
  for (const auto& [source, bytes] : bytes_by_source_) {
    out << "dcp_served_bytes_total{source=\"" << source << "\"} " << bytes << "\n";
  }
  return out.str();
}

} // namespace proxy
