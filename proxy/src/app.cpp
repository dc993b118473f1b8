#include "app.hpp"

#include "blobs.hpp"
#include "common/clock.hpp"
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
#include "upstream.hpp"

namespace proxy {

struct ProxyApp::Parts {
  explicit Parts(ProxyConfig c)
      : config(std::move(c)), store(config.storage_root, config.storage_min_free),
        metadata(store, clock), fetcher(store, metadata), manifests(metadata, clock),
        blobs(store, metadata, fetcher), access(config.auth) {
    std::map<std::string, Upstream*> by_name;
    for (const auto& upstream_config : config.upstreams) {
      upstreams.push_back(std::make_unique<Upstream>(upstream_config, http, clock));
      by_name.emplace(upstream_config.name, upstreams.back().get());
      if (upstream_config.insecure_skip_verify) {
        common::logger("upstream")
            ->warn("tls verification disabled: upstream={}", upstream_config.name);
      }
    }
    api = std::make_unique<RegistryApi>(config, by_name, metadata, manifests, blobs, &access);
    monitoring = std::make_unique<Monitoring>(config, store, metrics, access, by_name);
    server = std::make_unique<Server>(
        config, *api, [this](const ApiRequest& request) { return monitoring->handle(request); },
        &access, &metrics);
    heartbeat = std::make_unique<Heartbeat>(config.heartbeat, *monitoring);
  }

  ProxyConfig config;
  const common::SystemClock& clock = common::SystemClock::instance();
  common::HttpClient http;
  FsBlobStore store;
  Metadata metadata;
  BlobFetcher fetcher;
  ManifestService manifests;
  BlobService blobs;
  AccessControl access;
  Metrics metrics;
  std::vector<std::unique_ptr<Upstream>> upstreams;
  std::unique_ptr<RegistryApi> api;
  std::unique_ptr<Monitoring> monitoring;
  std::unique_ptr<Server> server;
  std::unique_ptr<Heartbeat> heartbeat;
};

ProxyApp::ProxyApp(ProxyConfig config) : parts_(std::make_unique<Parts>(std::move(config))) {}

ProxyApp::~ProxyApp() = default;

void ProxyApp::start() {
  parts_->server->start();
  parts_->heartbeat->start();
  std::string names;
  for (const auto& upstream : parts_->config.upstreams) {
    names += (names.empty() ? "" : ",") + upstream.name;
  }
  common::logger("proxy")->info("started: storage={} upstreams={} default={}",
                                parts_->config.storage_root, names,
                                parts_->config.defaultUpstream().name);
}

void ProxyApp::stop() {
  parts_->heartbeat->stop();
  parts_->server->stop(parts_->config.shutdown_timeout);
  parts_->fetcher.drain(std::chrono::seconds(5));
}

std::vector<std::uint16_t> ProxyApp::ports() const {
  return parts_->server->ports();
}

const ProxyConfig& ProxyApp::config() const {
  return parts_->config;
}

} // namespace proxy
