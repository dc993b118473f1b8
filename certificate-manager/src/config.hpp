#pragma once

#include "certificate.hpp"
#include "openssl_util.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <spdlog/common.h>
#include <string>
#include <vector>

namespace certmgr {

enum class Mode { LanCa, Acme };
enum class ChallengeType { Http01, Dns01 };

/// ACME settings (CERTMGR_MODE=acme).
struct AcmeConfig {
  /// Directory URL; "letsencrypt" and "letsencrypt-staging" are resolved to theirs.
  std::string directory_url;
  std::string email;
  /// PEM bundle to verify the ACME server with (pebble's own CA in tests); empty: system store.
  std::string ca_bundle;
  /// External account binding (RFC 8555 §7.3.4). The HMAC key is a secret: never logged.
  std::string eab_kid;
  std::string eab_hmac_key;
  ChallengeType challenge = ChallengeType::Http01;
  /// Where the HTTP-01 responder listens ("" = do not listen, only write webroot files).
  std::string http01_addr;
  /// A directory served as /.well-known/acme-challenge/ by another server ("" = none).
  std::string http01_webroot;
  /// Called as `<command> present|cleanup <fqdn> <value>`, through /bin/sh.
  std::string dns01_command;
  /// "host:port" resolvers for the propagation check; empty: the system's.
  std::vector<std::string> dns01_resolvers;
  bool dns01_skip_propagation = false;
  std::chrono::seconds dns01_propagation_timeout{120};
  std::chrono::seconds dns01_hook_timeout{120};
  /// How long an order may take from creation to download.
  std::chrono::seconds order_timeout{300};
  /// The account key, ECDSA P-256, created once and kept (0600).
  std::filesystem::path account_key_path;
};

/// Everything certificate-manager reads at start.
struct Config {
  Mode mode = Mode::LanCa;
  std::filesystem::path output_dir = "/certs";
  /// The names and IPs to certify (with localhost and 127.0.0.1 in LAN CA mode by default).
  Identifiers identifiers;
  KeyType key_type = KeyType::EcP256;
  std::chrono::seconds check_interval{12 * 3600};
  /// After a failed check: first retry delay, doubled up to retry_max.
  std::chrono::seconds retry_initial{60};
  std::chrono::seconds retry_max{6 * 3600};
  /// Validity of LAN CA leaf certificates.
  std::chrono::seconds lan_leaf_validity{90 * 24 * 3600};
  /// healthchecks.io ping URL (a credential: never logged); empty: no pings.
  std::string healthcheck_url;
  std::string healthcheck_ca_bundle;
  spdlog::level::level_enum log_level = spdlog::level::info;
  AcmeConfig acme;

  std::filesystem::path statusPath() const { return output_dir / "status.json"; }
};

inline constexpr const char* kLetsEncryptProduction =
    "https://acme-v02.api.letsencrypt.org/directory";
inline constexpr const char* kLetsEncryptStaging =
    "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Reads the YAML file (if any; flat keys named like the variables without the CERTMGR_
/// prefix, lower case), applies the environment on top, validates, and returns the result.
/// Throws common::ConfigError naming the variable, the bad value (never a secret) and what is
/// expected.
Config loadConfig(const std::optional<std::string>& yaml_path,
                  const std::map<std::string, std::string>& env);

/// The process environment as a map.
std::map<std::string, std::string> processEnvironment();

} // namespace certmgr
