#pragma once

#include "config.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace proxy {

/// Reads the configuration again (the file and the environment it was first read from).
/// Throws common::ConfigError when it is not valid.
using ConfigSource = std::function<ProxyConfig()>;

/// The whole proxy, built from its configuration: storage, upstream clients, the API and the
/// server. `main` is this plus signal handling; tests build one on port 0.
class ProxyApp {
public:
  /// Builds every part. Throws common::Error subclasses on setup failure. Without a source, the
  /// configuration cannot be reloaded.
  explicit ProxyApp(ProxyConfig config, ConfigSource source = nullptr);
  ~ProxyApp();

  void start();
  /// Graceful: stop accepting, let transfers finish within the configured timeout.
  void stop();
  /// Applies a new configuration without a restart: upstreams, cache limits and the warm list.
  /// Settings that need a restart (listen addresses, storage, TLS, auth) are kept and named in
  /// a warning. A configuration that is not valid is refused and the running one kept: the
  /// error message is returned.
  std::optional<std::string> reload();
  std::vector<std::uint16_t> ports() const;
  const ProxyConfig& config() const;

private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

} // namespace proxy
