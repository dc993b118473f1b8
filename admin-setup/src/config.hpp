#pragma once

#include "common/warm_list.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <spdlog/common.h>
#include <string>
#include <vector>

namespace admin {

/// A user and password from the configuration. The password is a secret: never logged.
struct Credential {
  std::string user;
  std::string password;
};

/// Everything admin-setup reads at start. Defaults fit the compose bundle, where admin-setup
/// shares the proxy's network namespace (so 127.0.0.1 and localhost are the proxy).
struct Config {
  /// The proxy's plain HTTP base URL (SETUP_PROXY_URL).
  std::string proxy_url = "http://127.0.0.1:5000";
  /// Its HTTPS base URL, a name the certificate is for (SETUP_PROXY_TLS_URL); empty: TLS off.
  std::string tls_url = "https://localhost:5443";
  /// The CA clients are told to trust (SETUP_CA_FILE); when the file is absent, the system's
  /// store verifies the proxy (an ACME certificate).
  std::filesystem::path ca_file = "/certs/ca.crt";
  /// How long to wait for the proxy to be ready (SETUP_WAIT_TIMEOUT).
  std::chrono::seconds wait_timeout{300};

  /// The pull users' htpasswd file the proxy reads (DCP_AUTH_HTPASSWD); empty: client
  /// authentication is off and no pull users are written.
  std::filesystem::path pull_htpasswd;
  /// DCP_PULL_USERS or DCP_PULL_USERS_FILE.
  std::vector<Credential> pull_users;
  /// The htpasswd file of the protected endpoints (DCP_ADMIN_HTPASSWD); empty: not managed.
  std::filesystem::path admin_htpasswd;
  /// DCP_ADMIN_USER.
  std::string admin_user = "admin";
  /// DCP_ADMIN_PASSWORD or DCP_ADMIN_PASSWORD_FILE; none: one is generated once and kept in
  /// adminPasswordFile().
  std::optional<std::string> admin_password;
  /// Work factor of the bcrypt hashes written (SETUP_BCRYPT_COST).
  int bcrypt_cost = 10;

  /// DCP_WARM_IMAGES (with DCP_WARM_PLATFORMS), or warm_images in the YAML file.
  std::vector<common::WarmImage> warm_images;

  /// Where the client configuration is written (SETUP_CLIENT_CONFIG_DIR).
  std::filesystem::path client_config_dir = "/client-config";
  /// The name clients reach the proxy by: the first of HOMELAB_APP_EXTERNAL_DOMAIN, else of
  /// HOMELAB_APP_EXTERNAL_IP, else localhost.
  std::string client_host = "localhost";
  /// The ports published on the host (SETUP_CLIENT_HTTP_PORT, SETUP_CLIENT_HTTPS_PORT).
  int client_http_port = 5000;
  int client_https_port = 5443;

  /// healthchecks.io ping URL (HOMELAB_HEALTHCHECK_URL or _FILE; a secret); empty: no pings.
  std::string healthcheck_url;
  /// PEM bundle for a self-hosted healthchecks server (SETUP_HEALTHCHECK_CA_BUNDLE).
  std::string healthcheck_ca_bundle;
  spdlog::level::level_enum log_level = spdlog::level::info;

  bool tlsEnabled() const { return !tls_url.empty(); }
  bool clientAuthEnabled() const { return !pull_htpasswd.empty(); }
  /// Where a generated admin password is kept, beside the admin htpasswd file.
  std::filesystem::path adminPasswordFile() const {
    return admin_htpasswd.parent_path() / "admin-password";
  }
};

/// Reads the YAML file (if any; keys are the SETUP_ variables without the prefix, lower case),
/// applies the environment on top, validates, and returns the result. Throws
/// common::ConfigError naming the variable, the bad value (never a secret) and what is
/// expected.
Config loadConfig(const std::optional<std::string>& yaml_path,
                  const std::map<std::string, std::string>& env);

/// The healthchecks.io URL alone, read before anything else so that even a configuration error
/// can be reported. Empty when unset or unreadable.
std::string healthcheckUrl(const std::map<std::string, std::string>& env);

/// Parses DCP_PULL_USERS: `user:password` entries, one a line; in the variable itself they may
/// also be separated by spaces (a password holding a space must come from the _FILE).
std::vector<Credential> parseUsers(const std::string& text, bool lines_only,
                                   const std::string& source);

/// The process environment as a map.
std::map<std::string, std::string> processEnvironment();

} // namespace admin
