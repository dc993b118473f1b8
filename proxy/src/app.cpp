#include "app.hpp"

#include "admin_api.hpp"
#include "blobs.hpp"
#include "cache_cleaner.hpp"
#include "common/clock.hpp"
#include "common/errors.hpp"
#include "common/http_client.hpp"
#include "common/logging.hpp"
#include "fetcher.hpp"
#include "fs_blob_store.hpp"
#include "heartbeat.hpp"
#include "manifests.hpp"
#include "metadata.hpp"
#include "monitoring.hpp"
#include "registry_api.hpp"
#include "server.hpp"
#include "upstream_set.hpp"
#include "warmer.hpp"

namespace proxy {
namespace {

CleanupSettings cleanupSettings(const ProxyConfig& config) {
  return CleanupSettings{config.cache, config.storage_min_free, pinnedImages(config)};
}

// The settings a reload cannot change, by their key, when `next` changes them.
std::vector<std::string> restartOnlyChanges(const ProxyConfig& running, const ProxyConfig& next) {
  std::vector<std::string> keys;
  const auto note = [&](bool changed, const char* key) {
    if (changed) {
      keys.emplace_back(key);
    }
  };
  note(running.listen != next.listen, "http.addr");
  note(running.server_threads != next.server_threads, "http.threads");
  note(running.storage_root != next.storage_root, "storage.root");
  note(running.tls.addr != next.tls.addr || running.tls.certificate != next.tls.certificate ||
           running.tls.key != next.tls.key,
       "tls");
  note(running.auth.htpasswd != next.auth.htpasswd ||
           running.auth.admin_htpasswd != next.auth.admin_htpasswd ||
           running.auth.anonymous_networks != next.auth.anonymous_networks ||
           running.auth.trusted_proxies != next.auth.trusted_proxies ||
           running.auth.metrics_networks != next.auth.metrics_networks,
       "auth");
  note(running.heartbeat.url != next.heartbeat.url ||
           running.heartbeat.interval != next.heartbeat.interval,
       "healthcheck");
  note(running.acme_challenge_dir != next.acme_challenge_dir, "http.acme_challenge_dir");
  note(running.log_level != next.log_level, "log.level");
  return keys;
}

} // namespace

struct ProxyApp::Parts {
  Parts(ProxyConfig c, ConfigSource s)
      : config(std::move(c)), source(std::move(s)),
        store(config.storage_root, config.storage_min_free), metadata(store, clock),
        fetcher(store, metadata), manifests(metadata, clock), blobs(store, metadata, fetcher),
        access(config.auth), upstreams(config, http, clock), cleaner(store, metadata, clock),
        warmer(upstreams, manifests, blobs, clock) {
    cleaner.configure(cleanupSettings(config));
    warmer.configure(config.warm);
    metadata.onStored([this](std::uint64_t bytes) { cleaner.noteStored(bytes); });
    api = std::make_unique<RegistryApi>(upstreams, metadata, manifests, blobs, &access);
    monitoring = std::make_unique<Monitoring>(config, store, metrics, access, upstreams);
    monitoring->watch(&cleaner, &warmer);
    admin = std::make_unique<AdminApi>(access, cleaner, warmer, metadata, upstreams, metrics,
                                       [this] { return reload(); });
    server = std::make_unique<Server>(
        config, *api,
        [this](const ApiRequest& request) {
          auto answer = admin->handle(request);
          return answer ? answer : monitoring->handle(request);
        },
        &access, &metrics);
    heartbeat = std::make_unique<Heartbeat>(config.heartbeat, *monitoring);
  }

  std::optional<std::string> reload() {
    auto log = common::logger("proxy");
    if (!source) {
      return std::string("no configuration source to read again");
    }
    ProxyConfig next;
    try {
      next = source();
    } catch (const common::Error& e) {
      log->error("configuration reload refused, keeping the running one: err={}", e.what());
      return std::string(e.what());
    }
    for (const auto& key : restartOnlyChanges(config, next)) {
      log->warn("configuration change needs a restart, not applied: key={}", key);
    }
    upstreams.replace(next);
    cleaner.configure(cleanupSettings(next));
    warmer.configure(next.warm);
    std::string names;
    for (const auto& upstream : next.upstreams) {
      names += (names.empty() ? "" : ",") + upstream.name;
    }
    log->info("configuration reloaded: upstreams={} default={} warm_images={}", names,
              next.defaultUpstream().name, next.warm.images.size());
    return std::nullopt;
  }

  ProxyConfig config;
  ConfigSource source;
  const common::SystemClock& clock = common::SystemClock::instance();
  common::HttpClient http;
  FsBlobStore store;
  Metadata metadata;
  BlobFetcher fetcher;
  ManifestService manifests;
  BlobService blobs;
  AccessControl access;
  Metrics metrics;
  Upstreams upstreams;
  CacheCleaner cleaner;
  Warmer warmer;
  std::unique_ptr<RegistryApi> api;
  std::unique_ptr<Monitoring> monitoring;
  std::unique_ptr<AdminApi> admin;
  std::unique_ptr<Server> server;
  std::unique_ptr<Heartbeat> heartbeat;
};

ProxyApp::ProxyApp(ProxyConfig config, ConfigSource source)
    : parts_(std::make_unique<Parts>(std::move(config), std::move(source))) {}

ProxyApp::~ProxyApp() = default;

void ProxyApp::start() {
  parts_->server->start();
  parts_->heartbeat->start();
  parts_->cleaner.start();
  parts_->warmer.start();
  std::string names;
  for (const auto& upstream : parts_->config.upstreams) {
    names += (names.empty() ? "" : ",") + upstream.name;
  }
  common::logger("proxy")->info("started: storage={} upstreams={} default={}",
                                parts_->config.storage_root, names,
                                parts_->config.defaultUpstream().name);
}

void ProxyApp::stop() {
  parts_->warmer.stop();
  parts_->heartbeat->stop();
  parts_->server->stop(parts_->config.shutdown_timeout);
  parts_->fetcher.drain(std::chrono::seconds(5));
  parts_->cleaner.stop();
}

std::optional<std::string> ProxyApp::reload() {
  return parts_->reload();
}

std::vector<std::uint16_t> ProxyApp::ports() const {
  return parts_->server->ports();
}

const ProxyConfig& ProxyApp::config() const {
  return parts_->config;
}

} // namespace proxy
