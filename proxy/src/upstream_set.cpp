#include "upstream_set.hpp"

#include "common/logging.hpp"

namespace proxy {

std::shared_ptr<Upstream> UpstreamSet::client(const std::string& name) const {
  const auto it = clients.find(name);
  return it == clients.end() ? nullptr : it->second;
}

Upstreams::Upstreams(const ProxyConfig& config, common::HttpClient& http,
                     const common::Clock& clock)
    : http_(http), clock_(clock), current_(build(config, nullptr)) {}

std::shared_ptr<const UpstreamSet> Upstreams::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void Upstreams::replace(const ProxyConfig& config) {
  auto next = build(config, current().get());
  std::lock_guard lock(mutex_);
  current_ = std::move(next);
}

std::shared_ptr<const UpstreamSet> Upstreams::build(const ProxyConfig& config,
                                                    const UpstreamSet* previous) const {
  auto set = std::make_shared<UpstreamSet>();
  set->config = config;
  for (const auto& upstream : config.upstreams) {
    std::shared_ptr<Upstream> client;
    if (previous) {
      client = previous->client(upstream.name);
    }
    if (!client || !(client->config() == upstream)) {
      client = std::make_shared<Upstream>(upstream, http_, clock_);
      if (upstream.insecure_skip_verify) {
        common::logger("upstream")->warn("tls verification disabled: upstream={}", upstream.name);
      }
    }
    set->clients.emplace(upstream.name, std::move(client));
  }
  return set;
}

} // namespace proxy
