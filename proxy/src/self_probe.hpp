#pragma once

#include "config.hpp"

#include <string>

namespace proxy {

/// What `--healthcheck` found: whether the running proxy answered, and what to print.
struct ProbeOutcome {
  bool healthy = false;
  std::string message;
};

/// The URL of the running proxy's /healthz on loopback, from its first plain listen address
/// (a wildcard address is probed on 127.0.0.1 or ::1), else from its HTTPS listener.
std::string healthUrl(const ProxyConfig& config);

/// Asks the proxy described by `config` for /healthz. The container's HEALTHCHECK runs this,
/// so the image needs no curl.
ProbeOutcome probeHealth(const ProxyConfig& config);

} // namespace proxy
