#pragma once

#include "config.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace proxy {

/// The whole proxy, built from its configuration: storage, upstream clients, the API and the
/// server. `main` is this plus signal handling; tests build one on port 0.
class ProxyApp {
public:
  /// Builds every part. Throws common::Error subclasses on setup failure.
  explicit ProxyApp(ProxyConfig config);
  ~ProxyApp();

  void start();
  /// Graceful: stop accepting, let transfers finish within the configured timeout.
  void stop();
  std::vector<std::uint16_t> ports() const;
  const ProxyConfig& config() const;

private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

} // namespace proxy
