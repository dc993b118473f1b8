#pragma once

#include "config.hpp"
#include "upstream.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace proxy {

/// The configured upstreams and a client for each: what routing reads. Immutable; a reload
/// makes a new one.
struct UpstreamSet {
  /// The configuration the set was made from (routing reads its upstreams and default).
  ProxyConfig config;
  /// Clients by upstream name.
  std::map<std::string, std::shared_ptr<Upstream>> clients;

  /// The client of the upstream named `name` as configured, or null.
  std::shared_ptr<Upstream> client(const std::string& name) const;
};

/// Holds the current UpstreamSet. A request takes the set once and keeps it until it is done,
/// so a reload never changes an upstream under a request; a download keeps its client alive.
class Upstreams {
public:
  Upstreams(const ProxyConfig& config, common::HttpClient& http, const common::Clock& clock);

  std::shared_ptr<const UpstreamSet> current() const;

  /// Switches to the upstreams of `config`. A client whose settings did not change is kept, with
  /// its tokens and connections.
  void replace(const ProxyConfig& config);

private:
  std::shared_ptr<const UpstreamSet> build(const ProxyConfig& config,
                                           const UpstreamSet* previous) const;

  common::HttpClient& http_;
  const common::Clock& clock_;
  mutable std::mutex mutex_;
  std::shared_ptr<const UpstreamSet> current_;
};

} // namespace proxy
