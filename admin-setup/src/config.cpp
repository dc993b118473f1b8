#include "config.hpp"

#include "common/atomic_file.hpp"
#include "common/duration.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <charconv>
#include <set>
#include <yaml-cpp/yaml.h>

extern char** environ;

namespace admin {
namespace {

constexpr const char* kProxyUrl = "SETUP_PROXY_URL";
constexpr const char* kTlsUrl = "SETUP_PROXY_TLS_URL";
constexpr const char* kCaFile = "SETUP_CA_FILE";
constexpr const char* kWaitTimeout = "SETUP_WAIT_TIMEOUT";
constexpr const char* kBcryptCost = "SETUP_BCRYPT_COST";
constexpr const char* kWarmImages = "DCP_WARM_IMAGES";
constexpr const char* kWarmPlatforms = "DCP_WARM_PLATFORMS";
constexpr const char* kClientDir = "SETUP_CLIENT_CONFIG_DIR";
constexpr const char* kClientHttpPort = "SETUP_CLIENT_HTTP_PORT";
constexpr const char* kClientHttpsPort = "SETUP_CLIENT_HTTPS_PORT";
constexpr const char* kLogLevel = "SETUP_LOG_LEVEL";
constexpr const char* kHealthcheckCa = "SETUP_HEALTHCHECK_CA_BUNDLE";
constexpr const char* kPullHtpasswd = "DCP_AUTH_HTPASSWD";
constexpr const char* kAdminHtpasswd = "DCP_ADMIN_HTPASSWD";
constexpr const char* kPullUsers = "DCP_PULL_USERS";
constexpr const char* kAdminUser = "DCP_ADMIN_USER";
constexpr const char* kAdminPassword = "DCP_ADMIN_PASSWORD";
constexpr const char* kDomains = "HOMELAB_APP_EXTERNAL_DOMAIN";
constexpr const char* kIps = "HOMELAB_APP_EXTERNAL_IP";
constexpr const char* kHealthcheckUrl = "HOMELAB_HEALTHCHECK_URL";

// The settings a YAML file may hold: the SETUP_ variables and the warm list (DCP_WARM_*, which
// the proxy reads too), keyed without the prefix in lower case. Credentials and the names
// shared with the other programs come from the environment.
const std::set<std::string> kYamlSettings = {
    kProxyUrl,  kTlsUrl,         kCaFile,          kWaitTimeout, kBcryptCost,    kWarmImages,
    kClientDir, kClientHttpPort, kClientHttpsPort, kLogLevel,    kHealthcheckCa, kWarmPlatforms};

// Values never shown in a message.
const std::set<std::string> kSecrets = {kPullUsers, kAdminPassword, kHealthcheckUrl};

struct Setting {
  std::string value;
  /// "environment", "file /run/secrets/x" or "<yaml> key <k>".
  std::string source;
};

class Settings {
public:
  void set(const std::string& name, std::string value, std::string source) {
    values_[name] = Setting{std::move(value), std::move(source)};
  }

  std::optional<std::string> get(const std::string& name) const {
    const auto it = values_.find(name);
    return it == values_.end() ? std::nullopt : std::optional<std::string>(it->second.value);
  }

  std::string getOr(const std::string& name, const std::string& fallback) const {
    return get(name).value_or(fallback);
  }

  std::string source(const std::string& name) const {
    const auto it = values_.find(name);
    return it == values_.end() ? "" : it->second.source;
  }

  [[noreturn]] void fail(const std::string& name, const std::string& expected) const {
    std::string message = name;
    if (const auto it = values_.find(name); it != values_.end()) {
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

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return "";
  }
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

// Splits on any of `separators`, dropping empty items.
std::vector<std::string> split(std::string_view text, std::string_view separators) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    const auto end = text.find_first_of(separators, start);
    auto item = trim(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (!item.empty()) {
      items.push_back(std::move(item));
    }
    if (end == std::string_view::npos) {
      break;
    }
    start = end + 1;
  }
  return items;
}

// "warm_images" for DCP_WARM_IMAGES, "proxy_url" for SETUP_PROXY_URL.
std::string yamlKeyFor(const std::string& variable) {
  std::string key = variable.substr(variable.find('_') + 1);
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return key;
}

std::string scalarList(const YAML::Node& node, const std::string& where) {
  if (node.IsScalar()) {
    return node.as<std::string>();
  }
  if (!node.IsSequence()) {
    throw common::ConfigError(where + ": expected a value or a list of values");
  }
  std::string joined;
  for (const auto& item : node) {
    if (!item.IsScalar()) {
      throw common::ConfigError(where + ": expected a list of plain values");
    }
    joined += (joined.empty() ? "" : ",") + item.as<std::string>();
  }
  return joined;
}

// warm_images in YAML: a list of "image" strings or {image: ..., platforms: [...]} maps. Kept
// as the DCP_WARM_IMAGES text, so both sources go through one parser.
std::string yamlWarmImages(const YAML::Node& node, const std::string& where) {
  if (node.IsScalar()) {
    return node.as<std::string>();
  }
  if (!node.IsSequence()) {
    throw common::ConfigError(where + ": expected a list of images");
  }
  std::string text;
  for (const auto& item : node) {
    std::string entry;
    if (item.IsScalar()) {
      entry = item.as<std::string>();
    } else if (item.IsMap() && item["image"] && item["image"].IsScalar()) {
      entry = item["image"].as<std::string>();
      for (const auto& field : item) {
        const auto key = field.first.as<std::string>();
        if (key != "image" && key != "platforms") {
          throw common::ConfigError(where + ": unknown key \"" + key +
                                    "\" in an image, expected image and platforms");
        }
      }
      if (item["platforms"]) {
        auto platforms = scalarList(item["platforms"], where + " platforms");
        std::replace(platforms.begin(), platforms.end(), ',', '+');
        entry += "=" + platforms;
      }
    } else {
      throw common::ConfigError(where + ": expected an image name or {image: NAME, platforms: "
                                        "[os/arch, ...]}");
    }
    if (entry.find_first_of(" \t,") != std::string::npos) {
      throw common::ConfigError(where + ": \"" + entry +
                                "\" holds a space or comma, expected "
                                "one image per list item");
    }
    text += (text.empty() ? "" : " ") + entry;
  }
  return text;
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
    const auto found = std::find_if(kYamlSettings.begin(), kYamlSettings.end(),
                                    [&](const std::string& v) { return yamlKeyFor(v) == key; });
    if (found == kYamlSettings.end()) {
      throw common::ConfigError("config file " + path + ": unknown key \"" + key +
                                "\", expected one of the settings in docs/admin-setup.md");
    }
    const std::string where = "config file " + path + " key " + key;
    const std::string value = *found == kWarmImages ? yamlWarmImages(entry.second, where)
                                                    : scalarList(entry.second, where);
    settings.set(*found, value, path + " key " + key);
  }
}

// NAME, or the content of the file NAME_FILE names. Returns false when neither is set.
bool readSecret(const std::map<std::string, std::string>& env, const std::string& name,
                Settings& settings, bool keep_lines) {
  const auto direct = env.find(name);
  const auto file = env.find(name + "_FILE");
  const bool has_direct = direct != env.end() && !direct->second.empty();
  const bool has_file = file != env.end() && !file->second.empty();
  if (has_direct && has_file) {
    throw common::ConfigError(name + " and " + name + "_FILE are both set, expected only one");
  }
  if (has_direct) {
    settings.set(name, direct->second, "environment");
    return true;
  }
  if (!has_file) {
    return false;
  }
  std::string content;
  try {
    content = common::readFile(file->second);
  } catch (const common::Error& e) {
    throw common::ConfigError(name + "_FILE: " + e.what());
  }
  settings.set(name, keep_lines ? content : trim(content), "file " + file->second);
  return true;
}

std::string baseUrl(const Settings& s, const char* name, const std::string& fallback,
                    bool https_only) {
  auto url = s.getOr(name, fallback);
  if (url.empty()) {
    return url;
  }
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  const bool https = url.rfind("https://", 0) == 0;
  const bool http = url.rfind("http://", 0) == 0;
  const auto authority = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
  if ((https_only ? !https : !(https || http)) || authority.empty() ||
      authority.find_first_of("/?#@") != std::string::npos) {
    s.fail(name, https_only ? "https://host[:port], or empty to skip the HTTPS checks"
                            : "http(s)://host[:port] without a path");
  }
  return url;
}

int intSetting(const Settings& s, const char* name, int fallback, int min, int max,
               const std::string& expected) {
  const auto text = s.get(name);
  if (!text || text->empty()) {
    return fallback;
  }
  int value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    s.fail(name, expected);
  }
  return value;
}

bool isDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253) {
    return false;
  }
  for (const auto& label : split(name, ".")) {
    if (label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(),
                     [](unsigned char c) { return std::isalnum(c) != 0 || c == '-'; })) {
      return false;
    }
  }
  return name.front() != '.' && name.back() != '.' && name.find("..") == std::string::npos;
}

bool isIpv4(const std::string& text) {
  in_addr addr{};
  return inet_pton(AF_INET, text.c_str(), &addr) == 1;
}

bool isIpv6(const std::string& text) {
  in6_addr addr{};
  return inet_pton(AF_INET6, text.c_str(), &addr) == 1;
}

// The first name clients can use: a wildcard names no host, so it is skipped.
std::string clientHost(const Settings& s) {
  for (const auto& name : split(s.getOr(kDomains, ""), ",")) {
    if (name.rfind("*.", 0) == 0) {
      continue;
    }
    if (!isDnsName(name)) {
      s.fail(kDomains, "comma-separated DNS names like \"registry.home.example,cache.lan\"");
    }
    return name;
  }
  for (const auto& ip : split(s.getOr(kIps, ""), ",")) {
    if (isIpv4(ip)) {
      return ip;
    }
    if (isIpv6(ip)) {
      return "[" + ip + "]";
    }
    s.fail(kIps, "comma-separated IP addresses like \"192.168.1.10,fd00::10\"");
  }
  return "localhost";
}

void validateUserName(const std::string& user, const std::string& what) {
  const bool bad_char = std::any_of(user.begin(), user.end(), [](unsigned char c) {
    return c == ':' || std::isspace(c) != 0 || std::iscntrl(c) != 0;
  });
  if (user.empty() || user.size() > 255 || bad_char) {
    throw common::ConfigError(what + ": bad user name \"" + user +
                              "\", expected 1 to 255 characters without ':', spaces or control "
                              "characters");
  }
}

void validatePassword(const std::string& user, const std::string& password,
                      const std::string& what) {
  // bcrypt reads at most 72 bytes: a longer password would silently match any that shares
  // its first 72.
  if (password.empty() || password.size() > 72) {
    throw common::ConfigError(what + ": the password of user \"" + user + "\" is " +
                              (password.empty() ? "empty" : "longer than 72 bytes") +
                              ", expected 1 to 72 bytes (bcrypt ignores the rest)");
  }
  if (std::any_of(password.begin(), password.end(),
                  [](unsigned char c) { return c == '\n' || c == '\r' || c == '\0'; })) {
    throw common::ConfigError(what + ": the password of user \"" + user +
                              "\" holds a line break, expected one line");
  }
}

} // namespace

std::vector<Credential> parseUsers(const std::string& text, bool lines_only,
                                   const std::string& source) {
  std::vector<Credential> users;
  std::set<std::string> names;
  for (const auto& line : split(text, "\n")) {
    if (line.front() == '#') {
      continue;
    }
    const auto entries = lines_only ? std::vector<std::string>{line} : split(line, " \t");
    for (const auto& entry : entries) {
      const auto colon = entry.find(':');
      if (colon == std::string::npos) {
        throw common::ConfigError(std::string(kPullUsers) + " (" + source +
                                  "): an entry has no ':', expected user:password entries");
      }
      Credential user{entry.substr(0, colon), entry.substr(colon + 1)};
      validateUserName(user.user, std::string(kPullUsers) + " (" + source + ")");
      validatePassword(user.user, user.password, std::string(kPullUsers) + " (" + source + ")");
      if (!names.insert(user.user).second) {
        throw common::ConfigError(std::string(kPullUsers) + " (" + source + "): user \"" +
                                  user.user + "\" is listed twice, expected each user once");
      }
      users.push_back(std::move(user));
    }
  }
  return users;
}

std::string healthcheckUrl(const std::map<std::string, std::string>& env) {
  try {
    Settings s;
    readSecret(env, kHealthcheckUrl, s, false);
    const auto url = s.getOr(kHealthcheckUrl, "");
    if (url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0) {
      return url;
    }
  } catch (const common::Error&) {
    // loadConfig reports it.
  }
  return "";
}

Config loadConfig(const std::optional<std::string>& yaml_path,
                  const std::map<std::string, std::string>& env) {
  Settings s;
  if (yaml_path && !yaml_path->empty()) {
    readYaml(*yaml_path, s);
  }
  // An empty variable counts as unset: env files list every setting. SETUP_PROXY_TLS_URL is
  // the exception, where empty means "TLS is off".
  for (const char* name :
       {kProxyUrl, kCaFile, kWaitTimeout, kBcryptCost, kWarmImages, kWarmPlatforms, kClientDir,
        kClientHttpPort, kClientHttpsPort, kLogLevel, kHealthcheckCa, kPullHtpasswd, kAdminHtpasswd,
        kAdminUser, kDomains, kIps, kTlsUrl}) {
    const auto it = env.find(name);
    if (it != env.end() && (!it->second.empty() || std::string(name) == kTlsUrl)) {
      s.set(name, it->second, "environment");
    }
  }
  const bool has_users = readSecret(env, kPullUsers, s, true);
  const bool has_admin_password = readSecret(env, kAdminPassword, s, false);
  readSecret(env, kHealthcheckUrl, s, false);

  Config config;
  config.proxy_url = baseUrl(s, kProxyUrl, config.proxy_url, false);
  config.tls_url = baseUrl(s, kTlsUrl, config.tls_url, true);
  config.ca_file = s.getOr(kCaFile, config.ca_file.string());

  if (const auto text = s.get(kWaitTimeout)) {
    const auto parsed = common::parseDuration(*text);
    if (!parsed || *parsed < std::chrono::seconds(1)) {
      s.fail(kWaitTimeout, "a duration of at least 1s, such as 90s, 5m or 1h");
    }
    config.wait_timeout = std::chrono::duration_cast<std::chrono::seconds>(*parsed);
  }

  config.pull_htpasswd = s.getOr(kPullHtpasswd, "");
  if (has_users) {
    const bool from_file = s.source(kPullUsers).rfind("file ", 0) == 0;
    config.pull_users = parseUsers(*s.get(kPullUsers), from_file, s.source(kPullUsers));
  }
  if (config.clientAuthEnabled() && config.pull_users.empty()) {
    throw common::ConfigError(std::string(kPullHtpasswd) +
                              " is set, so the proxy asks clients outside its anonymous "
                              "networks for credentials, but " +
                              kPullUsers +
                              " is empty: expected user:password "
                              "entries in " +
                              kPullUsers + " or " + kPullUsers + "_FILE (or leave " +
                              kPullHtpasswd + " unset for anonymous pulls)");
  }
  if (!config.clientAuthEnabled() && !config.pull_users.empty()) {
    throw common::ConfigError(std::string(kPullUsers) + " is set but " + kPullHtpasswd +
                              " is not: expected the htpasswd path the proxy reads (such as "
                              "/credentials/htpasswd) so that the users take effect");
  }

  config.admin_htpasswd = s.getOr(kAdminHtpasswd, "");
  config.admin_user = s.getOr(kAdminUser, config.admin_user);
  validateUserName(config.admin_user, kAdminUser);
  if (has_admin_password) {
    config.admin_password = *s.get(kAdminPassword);
    validatePassword(config.admin_user, *config.admin_password, kAdminPassword);
  }
  if (has_admin_password && config.admin_htpasswd.empty()) {
    throw common::ConfigError(std::string(kAdminPassword) + " is set but " + kAdminHtpasswd +
                              " is not: expected the htpasswd path the proxy reads for its "
                              "protected endpoints (such as /credentials/admin.htpasswd)");
  }
  for (const auto* path : {&config.pull_htpasswd, &config.admin_htpasswd}) {
    if (!path->empty() && (!path->is_absolute() || !path->has_filename())) {
      s.fail(path == &config.pull_htpasswd ? kPullHtpasswd : kAdminHtpasswd,
             "an absolute file path such as /credentials/htpasswd");
    }
  }
  if (!config.pull_htpasswd.empty() && config.pull_htpasswd == config.admin_htpasswd) {
    throw common::ConfigError(std::string(kPullHtpasswd) + " and " + kAdminHtpasswd +
                              " name the same file, expected two files (pull users must not "
                              "read the protected endpoints)");
  }
  config.bcrypt_cost = intSetting(s, kBcryptCost, config.bcrypt_cost, 4, 31,
                                  "a bcrypt cost from 4 to 31 (10 is usual)");

  std::vector<common::Platform> platforms;
  try {
    platforms = common::parsePlatforms(s.getOr(kWarmPlatforms, "all"));
  } catch (const common::ConfigError& e) {
    throw common::ConfigError(std::string(kWarmPlatforms) + ": " + e.what());
  }
  config.warm_images = common::parseWarmImages(s.getOr(kWarmImages, ""), platforms, kWarmImages);

  config.client_config_dir = s.getOr(kClientDir, config.client_config_dir.string());
  if (config.client_config_dir.empty()) {
    s.fail(kClientDir, "a directory path");
  }
  config.client_host = clientHost(s);
  config.client_http_port = intSetting(s, kClientHttpPort, config.client_http_port, 1, 65535,
                                       "a port number from 1 to 65535");
  config.client_https_port = intSetting(s, kClientHttpsPort, config.client_https_port, 1, 65535,
                                        "a port number from 1 to 65535");

  config.healthcheck_url = s.getOr(kHealthcheckUrl, "");
  if (!config.healthcheck_url.empty() && config.healthcheck_url.rfind("https://", 0) != 0 &&
      config.healthcheck_url.rfind("http://", 0) != 0) {
    s.fail(kHealthcheckUrl, "an http:// or https:// ping URL such as https://hc-ping.com/<uuid>");
  }
  config.healthcheck_ca_bundle = s.getOr(kHealthcheckCa, "");
  if (const auto level = s.get(kLogLevel)) {
    const auto parsed = common::parseLogLevel(*level);
    if (!parsed) {
      s.fail(kLogLevel, "trace, debug, info, warn, error or off");
    }
    config.log_level = *parsed;
  }
  return config;
}

std::map<std::string, std::string> processEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (const auto eq = text.find('='); eq != std::string_view::npos) {
      env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
    }
  }
  return env;
}

} // namespace admin
