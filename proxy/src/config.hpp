#pragma once

#include "common/warm_list.hpp"

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
  /// Whether clients without credentials may pull what the proxy fetched with this upstream's
  /// credentials. Unset, it is on unless the upstream has credentials and pull users are
  /// configured (auth.htpasswd): without pull users every client is anonymous, as with the
  /// reference registry, and Docker daemons cannot send credentials to a mirror anyway.
  bool anonymous_pull = true;

  bool operator==(const UpstreamConfig&) const = default;
};

/// The HTTPS listener; off while `addr` is empty.
struct TlsConfig {
  std::string addr;
  /// PEM certificate chain and private key, reloaded when they change on disk.
  std::string certificate;
  std::string key;
};

/// Who may pull, and who may read the protected endpoints.
struct AuthConfig {
  /// htpasswd file (bcrypt) of pull users; empty: no client authentication.
  std::string htpasswd;
  /// htpasswd file of the users allowed on /metrics and the admin endpoints.
  std::string admin_htpasswd;
  /// Clients pulling without credentials must come from one of these (CIDR).
  std::vector<std::string> anonymous_networks = {
      "127.0.0.0/8",    "::1/128",        "10.0.0.0/8", "172.16.0.0/12",
      "192.168.0.0/16", "169.254.0.0/16", "fc00::/7",   "fe80::/10"};
  /// Peers whose X-Forwarded-For is believed (a reverse proxy in front).
  std::vector<std::string> trusted_proxies;
  /// Networks that may read /metrics without credentials (a Prometheus on the LAN).
  std::vector<std::string> metrics_networks;
};

/// The heartbeat to healthchecks.io while the self-check passes.
struct HeartbeatConfig {
  /// The check's ping URL (a secret: anyone with it can ping); empty: no pings.
  std::string url;
  std::chrono::milliseconds interval = std::chrono::minutes(5);
};

/// How big the cache may grow, and how long unused content stays.
struct CacheConfig {
  /// The most the cached content may take, in bytes; 0: no limit of its own (only min_free).
  std::uint64_t max_size = 0;
  /// Or a share of the cache filesystem's size, in percent; 0: not used. One of the two at most.
  double max_size_percent = 0;
  /// Eviction starts when the content passes this share of the limit (percent)...
  double high_watermark = 95;
  /// ...and removes the least recently served images until it is down to this share.
  double low_watermark = 85;
  /// Content not served for this long is removed; zero: kept until space is needed.
  std::chrono::milliseconds expire_after{0};
  /// How often the cleanup looks at the cache (it also runs when a download passes the limit).
  std::chrono::milliseconds cleanup_interval = std::chrono::minutes(5);
};

/// Images kept in the cache whatever happens: never evicted, refreshed on a schedule.
struct WarmConfig {
  std::vector<common::WarmImage> images;
  /// How often each warm image's tag is checked with the upstream, and fetched when it moved.
  std::chrono::milliseconds refresh_interval = std::chrono::hours(1);
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
  /// Free space to leave on the cache's filesystem: below it, the least recently served images
  /// are evicted, and when nothing more can go, nothing new is cached.
  std::uint64_t storage_min_free = 1ull << 30;
  CacheConfig cache;
  WarmConfig warm;
  TlsConfig tls;
  AuthConfig auth;
  HeartbeatConfig heartbeat;
  /// Files the certificate-manager writes for ACME HTTP-01, served under
  /// /.well-known/acme-challenge/; empty: not served.
  std::string acme_challenge_dir;
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
