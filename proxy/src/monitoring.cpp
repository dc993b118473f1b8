#include "monitoring.hpp"

#include "common/logging.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <fstream>
#include <sstream>

namespace proxy {
namespace {

// Counting a large cache reads every file's size; /status is polled every minute or so.
constexpr auto kTotalsLifetime = std::chrono::seconds(30);

ApiResponse textAnswer(int status, std::string body, const std::string& type = "text/plain") {
  ApiResponse response;
  response.status = status;
  response.body = std::move(body);
  response.content_length = response.body.size();
  response.setHeader("Content-Type", type);
  response.setHeader("Cache-Control", "no-store");
  response.route = "monitoring";
  return response;
}

bool isAcmeToken(const std::string& token) {
  if (token.empty() || token.size() > 256) {
    return false;
  }
  for (char c : token) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

} // namespace

Monitoring::Monitoring(const ProxyConfig& config, BlobStore& store, Metrics& metrics,
                       AccessControl& access, Upstreams& upstreams)
    : config_(config), store_(store), metrics_(metrics), access_(access), upstreams_(upstreams) {}

void Monitoring::watch(const CacheCleaner* cleaner, const Warmer* warmer) {
  cleaner_ = cleaner;
  warmer_ = warmer;
}

SelfCheck Monitoring::selfCheck() {
  if (!store_.writable()) {
    return {false, "storage is not writable"};
  }
  if (!store_.hasRoomFor(0)) {
    return {false, "storage is full"};
  }
  return {};
}

std::optional<ApiResponse> Monitoring::handle(const ApiRequest& request) {
  const auto path = request.target.substr(0, request.target.find('?'));
  if (request.method != "GET" && request.method != "HEAD") {
    return std::nullopt;
  }
  if (path == "/healthz") {
    return textAnswer(200, "ok\n");
  }
  if (path == "/readyz") {
    const auto check = selfCheck();
    if (!check.ok) {
      common::logger("proxy")->warn("readiness failed: reason={}", check.reason);
      return textAnswer(503, "not ready: " + check.reason +
                                 "; cached content is still served, nothing new is cached\n");
    }
    return textAnswer(200, "ok\n");
  }
  if (path == "/status") {
    return status();
  }
  if (path == "/metrics") {
    return metrics(request);
  }
  constexpr std::string_view kAcme = "/.well-known/acme-challenge/";
  if (path.rfind(kAcme, 0) == 0) {
    return acmeChallenge(path.substr(kAcme.size()));
  }
  return std::nullopt;
}

CacheTotals Monitoring::cacheTotals() {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (totals_ && now - totals_at_ < kTotalsLifetime) {
    return *totals_;
  }
  CacheTotals totals;
  for (const auto& digest : store_.list()) {
    if (auto stat = store_.stat(digest)) {
      totals.bytes += stat->size;
      ++totals.blobs;
    }
  }
  totals.manifests = 0;
  for (const auto& algorithm : store_.listMeta("manifests")) {
    totals.manifests += store_.listMeta("manifests/" + algorithm).size();
  }
  totals.blobs -= std::min(totals.blobs, totals.manifests);
  totals_ = totals;
  totals_at_ = now;
  return totals;
}

ApiResponse Monitoring::status() {
  const auto check = selfCheck();
  bool all_reachable = true;

  const auto current = upstreams_.current();
  Poco::JSON::Array upstreams;
  for (const auto& upstream_config : current->config.upstreams) {
    const auto client = current->client(upstream_config.name);
    const auto health = client ? client->health() : UpstreamHealth{};
    const auto limit = client ? client->rateLimit() : RateLimitStatus{};
    all_reachable = all_reachable && health.reachable;
    Poco::JSON::Object entry;
    entry.set("name", upstream_config.name);
    entry.set("reachable", health.reachable);
    entry.set("last_error", health.last_error.empty() ? Poco::Dynamic::Var()
                                                      : Poco::Dynamic::Var(health.last_error));
    entry.set("ratelimit_remaining",
              limit.remaining ? Poco::Dynamic::Var(*limit.remaining) : Poco::Dynamic::Var());
    upstreams.add(entry);
  }

  const auto totals = cacheTotals();
  Poco::JSON::Object cache;
  cache.set("bytes", totals.bytes);
  cache.set("blobs", totals.blobs);
  cache.set("manifests", totals.manifests);
  if (cleaner_) {
    cache.set("limit_bytes", cleaner_->status().limit);
  }
  Poco::JSON::Object requests;
  requests.set("hits", metrics_.hits());
  requests.set("misses", metrics_.misses());

  Poco::JSON::Object root;
  // "ok" while the proxy can cache and every upstream answers; "degraded" while it still
  // serves its cache but cannot refresh or add to it.
  root.set("status", check.ok && all_reachable ? "ok" : "degraded");
  root.set("version", DCP_VERSION_STRING);
  root.set("uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::steady_clock::now() - started_)
                                 .count());
  root.set("ready", check.ok);
  root.set("problem", check.ok ? Poco::Dynamic::Var() : Poco::Dynamic::Var(check.reason));
  root.set("upstreams", upstreams);
  root.set("cache", cache);
  root.set("requests", requests);
  std::ostringstream out;
  root.stringify(out);
  return textAnswer(200, out.str(), "application/json");
}

ApiResponse Monitoring::metrics(const ApiRequest& request) {
  const auto verdict = access_.checkMetrics(request.client_address, request.authorization);
  if (!verdict.allowed) {
    auto refused = textAnswer(verdict.status, verdict.message + "\n");
    refused.setHeader("WWW-Authenticate", "Basic realm=\"docker-cache-proxy metrics\"");
    return refused;
  }
  auto text = metrics_.prometheusCounters();
  const auto totals = cacheTotals();
  std::ostringstream out;
  out << "# HELP dcp_cache_size_bytes Bytes of cached blobs and manifests.\n"
         "# TYPE dcp_cache_size_bytes gauge\n"
      << "dcp_cache_size_bytes " << totals.bytes << "\n"
      << "# HELP dcp_cache_objects Cached objects, by kind.\n"
         "# TYPE dcp_cache_objects gauge\n"
      << "dcp_cache_objects{kind=\"blob\"} " << totals.blobs << "\n"
      << "dcp_cache_objects{kind=\"manifest\"} " << totals.manifests << "\n"
      << "# HELP dcp_upstream_requests_total Requests sent to the upstream, by upstream.\n"
         "# TYPE dcp_upstream_requests_total counter\n";
  for (const auto& [name, upstream] : upstreams_.current()->clients) {
    out << "dcp_upstream_requests_total{upstream=\"" << name << "\"} "
        << upstream->health().requests << "\n";
  }
  out << "# HELP dcp_upstream_errors_total Upstream requests without an answer, timed out, or "
         "answered 429 or 5xx.\n"
         "# TYPE dcp_upstream_errors_total counter\n";
  for (const auto& [name, upstream] : upstreams_.current()->clients) {
    out << "dcp_upstream_errors_total{upstream=\"" << name << "\"} " << upstream->health().errors
        << "\n";
  }
  out << "# HELP dcp_upstream_ratelimit_remaining Pulls left in the upstream's window "
         "(Docker Hub).\n"
         "# TYPE dcp_upstream_ratelimit_remaining gauge\n";
  for (const auto& [name, upstream] : upstreams_.current()->clients) {
    if (const auto remaining = upstream->rateLimit().remaining) {
      out << "dcp_upstream_ratelimit_remaining{upstream=\"" << name << "\"} " << *remaining << "\n";
    }
  }
  if (cleaner_) {
    const auto status = cleaner_->status();
    out << "# HELP dcp_cache_limit_bytes The cache's size limit (0: none).\n"
           "# TYPE dcp_cache_limit_bytes gauge\n"
        << "dcp_cache_limit_bytes " << status.limit << "\n"
        << "# HELP dcp_cache_evictions_total Images removed from the cache, by reason.\n"
           "# TYPE dcp_cache_evictions_total counter\n";
    for (const auto& [reason, count] : status.removed_images) {
      out << "dcp_cache_evictions_total{reason=\"" << reason << "\"} " << count << "\n";
    }
    out << "# HELP dcp_cache_evicted_bytes_total Bytes freed by removals, by reason.\n"
           "# TYPE dcp_cache_evicted_bytes_total counter\n";
    for (const auto& [reason, bytes] : status.removed_bytes) {
      out << "dcp_cache_evicted_bytes_total{reason=\"" << reason << "\"} " << bytes << "\n";
    }
  }
  if (warmer_) {
    const auto images = warmer_->status();
    const auto now = std::chrono::system_clock::now();
    // Stale: never refreshed, or not in the last two intervals (one failed refresh is allowed).
    const auto stale_after = 2 * warmer_->interval();
    std::size_t stale = 0;
    std::ostringstream ages;
    for (const auto& image : images) {
      if (!image.refreshed_at || now - *image.refreshed_at > stale_after) {
        ++stale;
      }
      if (image.refreshed_at) {
        ages << "dcp_warm_image_age_seconds{image=\"" << image.image << "\"} "
             << std::chrono::duration_cast<std::chrono::seconds>(now - *image.refreshed_at).count()
             << "\n";
      }
    }
    out << "# HELP dcp_warm_images Images on the warm list.\n"
           "# TYPE dcp_warm_images gauge\n"
        << "dcp_warm_images " << images.size() << "\n"
        << "# HELP dcp_warm_images_stale Warm images not refreshed within two intervals.\n"
           "# TYPE dcp_warm_images_stale gauge\n"
        << "dcp_warm_images_stale " << stale << "\n"
        << "# HELP dcp_warm_image_age_seconds Seconds since a warm image was last refreshed.\n"
           "# TYPE dcp_warm_image_age_seconds gauge\n"
        << ages.str();
  }
  return textAnswer(200, text + out.str(), "text/plain; version=0.0.4");
}

std::optional<ApiResponse> Monitoring::acmeChallenge(const std::string& token) {
  if (config_.acme_challenge_dir.empty()) {
    return std::nullopt;
  }
  if (!isAcmeToken(token)) {
    return textAnswer(404, "not found\n");
  }
  std::ifstream in(config_.acme_challenge_dir + "/" + token, std::ios::binary);
  if (!in) {
    return textAnswer(404, "not found\n");
  }
  std::ostringstream body;
  body << in.rdbuf();
  return textAnswer(200, body.str(), "application/octet-stream");
}

} // namespace proxy
