#include "config.hpp"

#include "common/atomic_file.hpp"
#include "common/duration.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"

#include <algorithm>
#include <set>
#include <yaml-cpp/yaml.h>

extern char** environ;

namespace certmgr {
namespace {

// Every setting, by its environment variable; the YAML key is the name without the CERTMGR_
// prefix in lower case (HOMELAB_ ones: see kYamlAliases).
const std::set<std::string>& knownVariables() {
  static const std::set<std::string> kNames = {
      "CERTMGR_MODE",
      "CERTMGR_OUTPUT_DIR",
      "HOMELAB_APP_EXTERNAL_DOMAIN",
      "HOMELAB_APP_EXTERNAL_IP",
      "CERTMGR_INCLUDE_LOCALHOST",
      "CERTMGR_KEY_TYPE",
      "CERTMGR_CHECK_INTERVAL",
      "CERTMGR_RETRY_INITIAL",
      "CERTMGR_RETRY_MAX",
      "CERTMGR_LAN_LEAF_VALIDITY",
      "CERTMGR_ACME_DIRECTORY",
      "CERTMGR_ACME_EMAIL",
      "CERTMGR_ACME_CA_BUNDLE",
      "CERTMGR_ACME_EAB_KID",
      "CERTMGR_ACME_EAB_HMAC_KEY",
      "CERTMGR_ACME_ACCOUNT_KEY",
      "CERTMGR_ACME_ORDER_TIMEOUT",
      "CERTMGR_CHALLENGE",
      "CERTMGR_HTTP01_ADDR",
      "CERTMGR_HTTP01_WEBROOT",
      "CERTMGR_DNS01_COMMAND",
      "CERTMGR_DNS01_RESOLVERS",
      "CERTMGR_DNS01_SKIP_PROPAGATION",
      "CERTMGR_DNS01_PROPAGATION_TIMEOUT",
      "CERTMGR_DNS01_HOOK_TIMEOUT",
      "HOMELAB_HEALTHCHECK_URL",
      "CERTMGR_HEALTHCHECK_CA_BUNDLE",
      "CERTMGR_LOG_LEVEL",
  };
  return kNames;
}

const std::map<std::string, std::string> kYamlAliases = {
    {"domains", "HOMELAB_APP_EXTERNAL_DOMAIN"},
    {"ips", "HOMELAB_APP_EXTERNAL_IP"},
    {"healthcheck_url", "HOMELAB_HEALTHCHECK_URL"},
};

// Secrets: their values never appear in an error message or a log.
const std::set<std::string> kSecrets = {"CERTMGR_ACME_EAB_HMAC_KEY", "HOMELAB_HEALTHCHECK_URL"};

struct Setting {
  std::string value;
  /// "environment" or "<file> key <k>", for error messages.
  std::string source;
};

class Settings {
public:
  void set(const std::string& name, std::string value, std::string source) {
    values_[name] = Setting{std::move(value), std::move(source)};
  }

  std::optional<std::string> get(const std::string& name) const {
    const auto it = values_.find(name);
    if (it == values_.end()) {
      return std::nullopt;
    }
    return it->second.value;
  }

  std::string getOr(const std::string& name, const std::string& fallback) const {
    return get(name).value_or(fallback);
  }

  [[noreturn]] void fail(const std::string& name, const std::string& expected) const {
    const auto it = values_.find(name);
    std::string message = name;
    if (it != values_.end()) {
      if (it->second.source != "environment") {
        message += " (" + it->second.source + ")";
      }
      message += kSecrets.count(name) ? ": value not shown (a secret)"
                                      : ": bad value \"" + it->second.value + "\"";
    }
    throw common::ConfigError(message + ", expected " + expected);
  }

private:
  std::map<std::string, Setting> values_;
};

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    return "";
  }
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const auto item =
        trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!item.empty()) {
      out.push_back(item);
    }
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

void readYaml(const std::string& path, Settings& settings) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw common::ConfigError("cannot read config file " + path + ": " + e.what());
  }
  if (root.IsNull()) {
    return;
  }
  if (!root.IsMap()) {
    throw common::ConfigError("config file " + path + ": expected a mapping of settings");
  }
  for (const auto& entry : root) {
    const auto key = entry.first.as<std::string>();
    std::string name;
    if (const auto alias = kYamlAliases.find(key); alias != kYamlAliases.end()) {
      name = alias->second;
    } else {
      name = "CERTMGR_" + key;
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    }
    const bool lower_case =
        std::none_of(key.begin(), key.end(), [](unsigned char c) { return std::isupper(c) != 0; });
    if (!knownVariables().count(name) || !lower_case) {
      throw common::ConfigError("config file " + path + ": unknown key \"" + key +
                                "\", expected one of the settings in docs/certificates.md");
    }
    std::string value;
    if (entry.second.IsSequence()) {
      for (const auto& item : entry.second) {
        value += (value.empty() ? "" : ",") + item.as<std::string>();
      }
    } else if (entry.second.IsScalar()) {
      value = entry.second.as<std::string>();
    } else {
      throw common::ConfigError("config file " + path + ": key \"" + key +
                                "\" expected a value or a list");
    }
    settings.set(name, value, path + " key " + key);
  }
}

// NAME, or the contents of the file named by NAME_FILE (trailing whitespace trimmed).
void applyFileVariant(const std::map<std::string, std::string>& env, const std::string& name,
                      Settings& settings) {
  const auto it = env.find(name + "_FILE");
  if (it == env.end() || it->second.empty()) {
    return;
  }
  if (env.count(name) && !env.at(name).empty()) {
    throw common::ConfigError(name + " and " + name + "_FILE are both set, expected only one");
  }
  std::string content;
  try {
    content = common::readFile(it->second);
  } catch (const common::Error& e) {
    throw common::ConfigError(name + "_FILE: " + e.what());
  }
  settings.set(name, trim(content), "file " + it->second);
}

std::chrono::seconds durationSetting(const Settings& s, const std::string& name,
                                     std::chrono::seconds fallback, std::chrono::seconds minimum) {
  const auto text = s.get(name);
  if (!text) {
    return fallback;
  }
  const auto parsed = common::parseDuration(*text);
  if (!parsed || *parsed < minimum) {
    s.fail(name, "a duration like \"12h\", \"30m\" or \"90s\" of at least " +
                     common::formatDuration(minimum));
  }
  return std::chrono::duration_cast<std::chrono::seconds>(*parsed);
}

bool boolSetting(const Settings& s, const std::string& name, bool fallback) {
  const auto text = s.get(name);
  if (!text || text->empty()) {
    return fallback;
  }
  if (*text == "true" || *text == "1" || *text == "yes") {
    return true;
  }
  if (*text == "false" || *text == "0" || *text == "no") {
    return false;
  }
  s.fail(name, "true or false");
}

bool validResolver(const std::string& text) {
  std::string host = text;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) {
      return false;
    }
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') {
        return false;
      }
      port = text.substr(close + 2);
    }
  } else if (const auto colon = text.find(':');
             colon != std::string::npos && text.find(':', colon + 1) == std::string::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (!canonicalIp(host)) {
    return false;
  }
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) {
      return false;
    }
    const int value = std::stoi(port);
    return value > 0 && value < 65536;
  }
  return true;
}

void loadAcme(const Settings& s, Config& config) {
  AcmeConfig& acme = config.acme;

  const auto directory = s.getOr("CERTMGR_ACME_DIRECTORY", "letsencrypt");
  if (directory == "letsencrypt" || directory == "letsencrypt-production") {
    acme.directory_url = kLetsEncryptProduction;
  } else if (directory == "letsencrypt-staging") {
    acme.directory_url = kLetsEncryptStaging;
  } else if (directory.rfind("https://", 0) == 0 || directory.rfind("http://", 0) == 0) {
    acme.directory_url = directory;
  } else {
    s.fail("CERTMGR_ACME_DIRECTORY",
           "an https:// directory URL, \"letsencrypt\" or \"letsencrypt-staging\"");
  }

  acme.email = s.getOr("CERTMGR_ACME_EMAIL", "");
  if (!acme.email.empty() &&
      (acme.email.find('@') == std::string::npos || acme.email.find(',') != std::string::npos)) {
    s.fail("CERTMGR_ACME_EMAIL", "one e-mail address like admin@example.com");
  }
  acme.ca_bundle = s.getOr("CERTMGR_ACME_CA_BUNDLE", "");
  if (!acme.ca_bundle.empty() && !std::filesystem::exists(acme.ca_bundle)) {
    s.fail("CERTMGR_ACME_CA_BUNDLE", "the path of a readable PEM file");
  }

  acme.eab_kid = s.getOr("CERTMGR_ACME_EAB_KID", "");
  acme.eab_hmac_key = s.getOr("CERTMGR_ACME_EAB_HMAC_KEY", "");
  if (acme.eab_kid.empty() != acme.eab_hmac_key.empty()) {
    throw common::ConfigError(
        "CERTMGR_ACME_EAB_KID and CERTMGR_ACME_EAB_HMAC_KEY: expected both or neither "
        "(external account binding needs the key id and its HMAC key)");
  }
  if (!acme.eab_hmac_key.empty()) {
    const auto decoded = base64urlDecode(acme.eab_hmac_key);
    if (!decoded || decoded->empty()) {
      s.fail("CERTMGR_ACME_EAB_HMAC_KEY", "the base64url HMAC key the CA handed out");
    }
  }

  const auto challenge = s.getOr("CERTMGR_CHALLENGE", "http-01");
  if (challenge == "http-01") {
    acme.challenge = ChallengeType::Http01;
  } else if (challenge == "dns-01") {
    acme.challenge = ChallengeType::Dns01;
  } else {
    s.fail("CERTMGR_CHALLENGE", "http-01 or dns-01");
  }

  acme.http01_webroot = s.getOr("CERTMGR_HTTP01_WEBROOT", "");
  acme.http01_addr = s.getOr("CERTMGR_HTTP01_ADDR", acme.http01_webroot.empty() ? ":80" : "");
  if (acme.challenge == ChallengeType::Http01 && acme.http01_addr.empty() &&
      acme.http01_webroot.empty()) {
    throw common::ConfigError("CERTMGR_HTTP01_ADDR and CERTMGR_HTTP01_WEBROOT are both empty, "
                              "expected at least one way to answer HTTP-01 challenges");
  }
  if (!acme.http01_addr.empty() && acme.http01_addr.find(':') == std::string::npos) {
    s.fail("CERTMGR_HTTP01_ADDR", "\"host:port\", \"[v6]:port\" or \":port\"");
  }

  acme.dns01_command = s.getOr("CERTMGR_DNS01_COMMAND", "");
  acme.dns01_resolvers = splitList(s.getOr("CERTMGR_DNS01_RESOLVERS", ""));
  for (const auto& resolver : acme.dns01_resolvers) {
    if (!validResolver(resolver)) {
      s.fail("CERTMGR_DNS01_RESOLVERS",
             "comma-separated resolver addresses like \"1.1.1.1\", \"192.0.2.53:53\" or "
             "\"[2001:db8::53]:53\"");
    }
  }
  acme.dns01_skip_propagation = boolSetting(s, "CERTMGR_DNS01_SKIP_PROPAGATION", false);
  acme.dns01_propagation_timeout =
      durationSetting(s, "CERTMGR_DNS01_PROPAGATION_TIMEOUT", acme.dns01_propagation_timeout,
                      std::chrono::seconds(1));
  acme.dns01_hook_timeout = durationSetting(s, "CERTMGR_DNS01_HOOK_TIMEOUT",
                                            acme.dns01_hook_timeout, std::chrono::seconds(1));
  acme.order_timeout = durationSetting(s, "CERTMGR_ACME_ORDER_TIMEOUT", acme.order_timeout,
                                       std::chrono::seconds(10));
  if (acme.challenge == ChallengeType::Dns01) {
    if (acme.dns01_command.empty()) {
      throw common::ConfigError("CERTMGR_DNS01_COMMAND is not set, expected the command that "
                                "publishes TXT records when CERTMGR_CHALLENGE=dns-01");
    }
    if (!config.identifiers.ip_addresses.empty()) {
      s.fail("HOMELAB_APP_EXTERNAL_IP",
             "no IP addresses with CERTMGR_CHALLENGE=dns-01 (an IP address can only be "
             "validated by http-01)");
    }
  }

  acme.account_key_path =
      s.getOr("CERTMGR_ACME_ACCOUNT_KEY", (config.output_dir / "acme-account.key").string());
  if (config.identifiers.empty()) {
    throw common::ConfigError("HOMELAB_APP_EXTERNAL_DOMAIN and HOMELAB_APP_EXTERNAL_IP are "
                              "empty, expected at least one name to request a certificate for");
  }
}

} // namespace

Config loadConfig(const std::optional<std::string>& yaml_path,
                  const std::map<std::string, std::string>& env) {
  Settings s;
  if (yaml_path && !yaml_path->empty()) {
    readYaml(*yaml_path, s);
  }
  for (const auto& name : knownVariables()) {
    // An empty variable counts as unset (env files list every setting), except where empty
    // has a meaning of its own: no HTTP-01 listener.
    if (const auto it = env.find(name);
        it != env.end() && (!it->second.empty() || name == "CERTMGR_HTTP01_ADDR")) {
      s.set(name, it->second, "environment");
    }
  }
  applyFileVariant(env, "CERTMGR_ACME_EAB_HMAC_KEY", s);
  applyFileVariant(env, "HOMELAB_HEALTHCHECK_URL", s);

  Config config;
  const auto mode = s.getOr("CERTMGR_MODE", "lan-ca");
  if (mode == "lan-ca") {
    config.mode = Mode::LanCa;
  } else if (mode == "acme") {
    config.mode = Mode::Acme;
  } else {
    s.fail("CERTMGR_MODE", "lan-ca or acme");
  }

  config.output_dir = s.getOr("CERTMGR_OUTPUT_DIR", "/certs");
  if (config.output_dir.empty()) {
    s.fail("CERTMGR_OUTPUT_DIR", "a directory path");
  }

  for (const auto& name : splitList(s.getOr("HOMELAB_APP_EXTERNAL_DOMAIN", ""))) {
    if (!isValidDnsName(name)) {
      s.fail("HOMELAB_APP_EXTERNAL_DOMAIN",
             "comma-separated DNS names like \"registry.home.example,cache.lan\"");
    }
    config.identifiers.dns_names.push_back(name);
  }
  for (const auto& ip : splitList(s.getOr("HOMELAB_APP_EXTERNAL_IP", ""))) {
    if (!canonicalIp(ip)) {
      s.fail("HOMELAB_APP_EXTERNAL_IP",
             "comma-separated IP addresses like \"192.168.1.10,fd00::10\"");
    }
    config.identifiers.ip_addresses.push_back(ip);
  }
  if (config.mode == Mode::LanCa && boolSetting(s, "CERTMGR_INCLUDE_LOCALHOST", true)) {
    config.identifiers.dns_names.push_back("localhost");
    config.identifiers.ip_addresses.push_back("127.0.0.1");
  }
  config.identifiers.normalize();
  if (config.mode == Mode::LanCa && config.identifiers.empty()) {
    throw common::ConfigError("no names to certify: HOMELAB_APP_EXTERNAL_DOMAIN and "
                              "HOMELAB_APP_EXTERNAL_IP are empty and "
                              "CERTMGR_INCLUDE_LOCALHOST=false, expected at least one name");
  }

  const auto key_type = parseKeyType(s.getOr("CERTMGR_KEY_TYPE", "ec256"));
  if (!key_type) {
    s.fail("CERTMGR_KEY_TYPE", "ec256, ec384, rsa2048, rsa3072 or rsa4096");
  }
  config.key_type = *key_type;

  config.check_interval =
      durationSetting(s, "CERTMGR_CHECK_INTERVAL", config.check_interval, std::chrono::seconds(1));
  config.retry_initial =
      durationSetting(s, "CERTMGR_RETRY_INITIAL", config.retry_initial, std::chrono::seconds(1));
  config.retry_max =
      durationSetting(s, "CERTMGR_RETRY_MAX", config.retry_max, std::chrono::seconds(1));
  config.lan_leaf_validity = durationSetting(s, "CERTMGR_LAN_LEAF_VALIDITY",
                                             config.lan_leaf_validity, std::chrono::seconds(60));

  config.healthcheck_url = s.getOr("HOMELAB_HEALTHCHECK_URL", "");
  if (!config.healthcheck_url.empty() && config.healthcheck_url.rfind("https://", 0) != 0 &&
      config.healthcheck_url.rfind("http://", 0) != 0) {
    s.fail("HOMELAB_HEALTHCHECK_URL", "an http:// or https:// ping URL such as "
                                      "https://hc-ping.com/<uuid>");
  }
  config.healthcheck_ca_bundle = s.getOr("CERTMGR_HEALTHCHECK_CA_BUNDLE", "");

  if (const auto level = s.get("CERTMGR_LOG_LEVEL")) {
    const auto parsed = common::parseLogLevel(*level);
    if (!parsed) {
      s.fail("CERTMGR_LOG_LEVEL", "trace, debug, info, warn, error or off");
    }
    config.log_level = *parsed;
  }

  if (config.mode == Mode::Acme) {
    loadAcme(s, config);
  }
  return config;
}

std::map<std::string, std::string> processEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text(*entry);
    const auto eq = text.find('=');
    if (eq != std::string::npos) {
      env.emplace(text.substr(0, eq), text.substr(eq + 1));
    }
  }
  return env;
}

} // namespace certmgr
