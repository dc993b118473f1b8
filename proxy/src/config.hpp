#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <spdlog/common.h>
#include <string>
#include <vector>

namespace proxy {

/// One registry the proxy pulls from.
struct UpstreamConfig {
  /// The name clients use for it: "docker.io", "ghcr.io", "quay.io", "registry.k8s.io",
  /// "host:port". Matched against `?ns=` and the first path segment of a prefixed request.
  std::string name;
  /// Base URL, scheme and authority, no path: "https://registry-1.docker.io".
  std::string url;
  /// Credentials for the upstream (Basic, or to obtain Bearer tokens). Secrets: never logged.
  std::optional<std::string> username;
  std::optional<std::string> password;
  /// How long a tag is answered from the cache before it is revalidated with a HEAD.
  std::chrono::milliseconds tag_ttl = std::chrono::minutes(5);
  /// Connecting, and the whole of a small request (manifest, token, tags/list).
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  std::chrono::milliseconds request_timeout = std::chrono::seconds(60);
  /// A blob download is abandoned when no byte arrived for this long.
  std::chrono::milliseconds stall_timeout = std::chrono::seconds(60);
  /// Extra CA certificates (PEM file) to trust for this upstream; empty: the system's.
  std::string ca_file;
  /// Skip TLS verification of this upstream (only for test setups; logged as a warning).
  bool insecure_skip_verify = false;
};

/// Everything the proxy reads at start.
struct ProxyConfig {
  /// Listen addresses "host:port", "[v6]:port" or ":port" (every IPv4 and IPv6 address).
  std::vector<std::string> listen = {":5000"};
  /// Worker threads of the HTTP server: the number of connections served at once.
  int server_threads = 64;
  /// On SIGTERM, how long running transfers may take to finish.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(30);
  /// The cache directory.
  std::string storage_root = "/var/lib/docker-cache-proxy";
  spdlog::level::level_enum log_level = spdlog::level::info;
  /// At least one; the default serves requests that name no upstream.
  std::vector<UpstreamConfig> upstreams;
  std::string default_upstream = "docker.io";

  /// The upstream clients call `name` (normalizing Docker Hub's aliases), or null.
  const UpstreamConfig* findUpstream(const std::string& name) const;
  const UpstreamConfig& defaultUpstream() const;
};

/// Docker Hub's canonical name for any of its aliases ("index.docker.io",
/// "registry-1.docker.io", "docker.io"); other names unchanged, lowercased.
std::string normalizeRegistryName(const std::string& name);

/// The configuration with nothing given: Docker Hub, ":5000", the default storage root.
ProxyConfig defaultConfig();

/// Reads the YAML file (if any), then applies the environment on top, validates, and returns
/// the result. Throws common::ConfigError naming the key, the bad value (never a secret) and
/// what is expected. `env` maps variable names to values (the process environment in `main`).
ProxyConfig loadConfig(const std::optional<std::string>& yaml_path,
                       const std::map<std::string, std::string>& env);

/// The process environment as a map.
std::map<std::string, std::string> processEnvironment();

} // namespace proxy
