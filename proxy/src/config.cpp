#include "config.hpp"

#include "cidr.hpp"
#include "common/duration.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string_view>
#include <yaml-cpp/yaml.h>

extern char** environ;

namespace proxy {
namespace {

constexpr std::string_view kDockerHub = "docker.io";
constexpr std::string_view kDockerHubUrl = "https://registry-1.docker.io";
constexpr std::string_view kRedacted = "<redacted>";
constexpr std::size_t kMaxConfigSize = 1 << 20;
constexpr std::size_t kMaxSecretSize = 64 << 10;
constexpr int kMaxThreads = 10000;

constexpr std::string_view kExpectDuration = "expected e.g. 300s, 5m, 1h";
constexpr std::string_view kExpectUrl = "expected http(s)://host[:port]";
constexpr std::string_view kExpectListen = "expected host:port, [v6]:port or :port, e.g. :5000";
constexpr std::string_view kExpectLevel = "expected trace, debug, info, warn, error or off";
constexpr std::string_view kExpectName =
    "expected the registry's name as clients write it, host or host:port, e.g. ghcr.io";

// The environment variables read. The REGISTRY_* ones are those of the reference registry
// (distribution), so an existing docker-registry.env keeps working.
constexpr const char* kEnvRemoteUrl = "REGISTRY_PROXY_REMOTEURL";
constexpr const char* kEnvUsername = "REGISTRY_PROXY_USERNAME";
constexpr const char* kEnvUsernameFile = "REGISTRY_PROXY_USERNAME_FILE";
constexpr const char* kEnvPassword = "REGISTRY_PROXY_PASSWORD";
constexpr const char* kEnvPasswordFile = "REGISTRY_PROXY_PASSWORD_FILE";
constexpr const char* kEnvHttpAddr = "REGISTRY_HTTP_ADDR";
constexpr const char* kEnvStorageRoot = "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY";
constexpr const char* kEnvLogLevel = "DCP_LOG_LEVEL";
constexpr const char* kEnvTagTtl = "DCP_TAG_TTL";
constexpr const char* kEnvAnonymousPull = "DCP_ANONYMOUS_PULL";
constexpr const char* kEnvStorageMinFree = "DCP_STORAGE_MIN_FREE";
constexpr const char* kEnvTlsAddr = "DCP_TLS_ADDR";
constexpr const char* kEnvTlsCertificate = "DCP_TLS_CERTIFICATE";
constexpr const char* kEnvTlsKey = "DCP_TLS_KEY";
constexpr const char* kEnvHtpasswd = "DCP_AUTH_HTPASSWD";
constexpr const char* kEnvAdminHtpasswd = "DCP_ADMIN_HTPASSWD";
constexpr const char* kEnvAnonymousNetworks = "DCP_ANONYMOUS_NETWORKS";
constexpr const char* kEnvTrustedProxies = "DCP_TRUSTED_PROXIES";
constexpr const char* kEnvMetricsNetworks = "DCP_METRICS_NETWORKS";
constexpr const char* kEnvAcmeChallengeDir = "DCP_ACME_CHALLENGE_DIR";
constexpr const char* kEnvHeartbeatUrl = "HOMELAB_HEALTHCHECK_URL";
constexpr const char* kEnvHeartbeatUrlFile = "HOMELAB_HEALTHCHECK_URL_FILE";
constexpr const char* kEnvHeartbeatInterval = "DCP_HEARTBEAT_INTERVAL";
constexpr const char* kEnvCacheMaxSize = "DCP_CACHE_MAX_SIZE";
constexpr const char* kEnvCacheHighWatermark = "DCP_CACHE_HIGH_WATERMARK";
constexpr const char* kEnvCacheLowWatermark = "DCP_CACHE_LOW_WATERMARK";
constexpr const char* kEnvCacheExpireAfter = "DCP_CACHE_EXPIRE_AFTER";
constexpr const char* kEnvProxyTtl = "REGISTRY_PROXY_TTL";
constexpr const char* kEnvCacheCleanupInterval = "DCP_CACHE_CLEANUP_INTERVAL";
constexpr const char* kEnvWarmImages = "DCP_WARM_IMAGES";
constexpr const char* kEnvWarmPlatforms = "DCP_WARM_PLATFORMS";
constexpr const char* kEnvWarmRefreshInterval = "DCP_WARM_REFRESH_INTERVAL";

constexpr std::string_view kExpectNetwork =
    "expected networks in CIDR form, e.g. 192.168.0.0/16 or fd00::/8";
constexpr std::string_view kExpectSize = "expected a size such as 1GiB, 500MB or 1073741824";
constexpr std::string_view kExpectLimit =
    "expected a size such as 50GiB, or a share of the filesystem such as 80%";
constexpr std::string_view kExpectPercent = "expected a percentage above 0 and up to 100, e.g. 90%";

// Where a value came from: its key ("upstreams[1].tag_ttl", "DCP_TAG_TTL") and, for the YAML
// file, the file and line, so that a message leads the reader to it.
struct Origin {
  std::string key;
  std::string file;
  int line = -1;

  std::string where() const {
    if (file.empty() || line < 0) {
      return "";
    }
    return " (" + file + ", line " + std::to_string(line + 1) + ")";
  }
};

Origin envOrigin(const char* variable) {
  Origin origin;
  origin.key = variable;
  return origin;
}

[[noreturn]] void fail(const Origin& at, const std::string& problem) {
  throw common::ConfigError(at.key + ": " + problem + at.where());
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A value in double quotes, with quotes, backslashes and control characters escaped so that the
// message stays on one line and shows what was really there.
std::string quote(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", u);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// A URL as it may appear in a message: whatever precedes an '@' in the authority could be a
// password, so it is replaced.
std::string quoteUrl(std::string_view url) {
  const auto scheme = url.find("://");
  const auto start = scheme == std::string_view::npos ? 0 : scheme + 3;
  const auto end = url.find_first_of("/?#", start);
  const auto at = url.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) {
    return quote(url);
  }
  return quote(std::string(url.substr(0, start)) + std::string(kRedacted) +
               std::string(url.substr(at)));
}

bool isPort(std::string_view text) {
  if (text.empty() || text.size() > 5) {
    return false;
  }
  int port = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  return ec == std::errc() && end == text.data() + text.size() && port >= 1 && port <= 65535;
}

bool isIpv4(std::string_view text) {
  in_addr addr{};
  return inet_pton(AF_INET, std::string(text).c_str(), &addr) == 1;
}

bool isIpv6(std::string_view text) {
  in6_addr addr{};
  return inet_pton(AF_INET6, std::string(text).c_str(), &addr) == 1;
}

// A DNS name in lowercase (RFC 1123 labels), or a dotted IPv4 address.
bool isHostName(std::string_view text) {
  if (text.empty() || text.size() > 253) {
    return false;
  }
  if (text.find_first_not_of("0123456789.") == std::string_view::npos) {
    return isIpv4(text);
  }
  size_t start = 0;
  while (start <= text.size()) {
    auto dot = text.find('.', start);
    if (dot == std::string_view::npos) {
      dot = text.size();
    }
    const auto label = text.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (const char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        return false;
      }
    }
    start = dot + 1;
  }
  return true;
}

// "host", "host:port": the names upstreams are known by, already lowercase.
bool isRegistryName(std::string_view name) {
  const auto colon = name.find(':');
  if (colon != std::string_view::npos && !isPort(name.substr(colon + 1))) {
    return false;
  }
  return isHostName(name.substr(0, colon));
}

bool isListenAddress(std::string_view text) {
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    return isIpv6(text.substr(1, close - 1)) && isPort(text.substr(close + 2));
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return false;
  }
  const auto host = text.substr(0, colon);
  if (host.find(':') != std::string_view::npos) {
    return false;
  }
  return (host.empty() || isHostName(lowercase(host))) && isPort(text.substr(colon + 1));
}

struct UpstreamUrl {
  /// "scheme://host[:port]", lowercase, without a default port.
  std::string base;
  /// The upstream name the URL implies: "docker.io" for Docker Hub, else "host[:port]".
  std::string derived_name;
};

// Checks an upstream URL. `credentials_hint` says where credentials belong instead of the URL.
UpstreamUrl parseUpstreamUrl(const Origin& at, std::string_view text,
                             std::string_view credentials_hint) {
  const auto shown = quoteUrl(text);
  const auto not_url = [&] { fail(at, shown + " is not a URL; " + std::string(kExpectUrl)); };
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) {
    not_url();
  }
  const auto scheme = lowercase(text.substr(0, sep));
  if (scheme != "http" && scheme != "https") {
    not_url();
  }
  const auto rest = text.substr(sep + 3);
  const auto end = rest.find_first_of("/?#");
  const auto authority = lowercase(rest.substr(0, end));
  const auto tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string::npos) {
    fail(at, shown + " has credentials in it; " + std::string(kExpectUrl) + ", with " +
                 std::string(credentials_hint));
  }

  std::string host = authority;
  std::string port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos || !isIpv6(authority.substr(1, close - 1))) {
      not_url();
    }
    host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        not_url();
      }
      port = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.find(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty() || (host.front() != '[' && !isHostName(host)) ||
      (!port.empty() && !isPort(port)) || (port.empty() && authority.back() == ':')) {
    not_url();
  }
  if (tail.find('?') != std::string_view::npos || tail.find('#') != std::string_view::npos) {
    fail(at, shown + " has a query or fragment; " + std::string(kExpectUrl) + " and nothing after");
  }
  if (!tail.empty() && tail != "/") {
    fail(at, shown + " has a path; " + std::string(kExpectUrl) + " without a path");
  }

  if ((scheme == "https" && port == "443") || (scheme == "http" && port == "80")) {
    port.clear();
  }
  const auto host_port = port.empty() ? host : host + ":" + port;
  const auto hub = normalizeRegistryName(host) == kDockerHub;
  return {scheme + "://" + host_port, hub ? std::string(kDockerHub) : host_port};
}

spdlog::level::level_enum parseLevelAt(const Origin& at, const std::string& text) {
  const auto level = common::parseLogLevel(lowercase(text));
  if (!level) {
    fail(at, quote(text) + " is not a log level; " + std::string(kExpectLevel));
  }
  return *level;
}

std::chrono::milliseconds parseDurationAt(const Origin& at, const std::string& text,
                                          bool zero_allowed) {
  const auto duration = common::parseDuration(text);
  if (!duration) {
    fail(at, quote(text) + " is not a duration; " + std::string(kExpectDuration));
  }
  if (!zero_allowed && duration->count() == 0) {
    fail(at, quote(text) + " is zero; expected a duration above zero, e.g. 10s");
  }
  return *duration;
}

std::string parseStorageRootAt(const Origin& at, const std::string& text) {
  if (text.empty() || text.front() != '/') {
    fail(at, quote(text) + " is not an absolute path; expected e.g. /var/lib/docker-cache-proxy");
  }
  return text;
}

std::string parseListenAt(const Origin& at, const std::string& text) {
  if (!isListenAddress(text)) {
    fail(at, quote(text) + " is not a listen address; " + std::string(kExpectListen));
  }
  return text;
}

struct FileContent {
  std::string content;
  int err = 0;
  bool too_large = false;
};

// Reads a small file whole; `err` is the errno of what failed.
FileContent readSmallFile(const std::string& path, std::size_t limit) {
  FileContent out;
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) {
    out.err = errno;
    return out;
  }
  char buffer[4096];
  while (true) {
    const auto n = std::fread(buffer, 1, sizeof buffer, file.get());
    out.content.append(buffer, n);
    if (out.content.size() > limit) {
      out.too_large = true;
      return out;
    }
    if (n < sizeof buffer) {
      if (std::ferror(file.get())) {
        out.err = errno != 0 ? errno : EIO;
      }
      return out;
    }
  }
}

// The secret held in the file at `path` (a Docker secret, say), without the final newline.
// Messages name the key and the path, never what the file holds.
std::string readSecretFile(const Origin& at, const std::string& path) {
  if (path.empty()) {
    fail(at, "is empty; expected the path of a file holding the secret");
  }
  auto read = readSmallFile(path, kMaxSecretSize);
  if (read.err != 0) {
    fail(at, quote(path) + " cannot be read: " + std::strerror(read.err) +
                 "; expected a readable file holding the secret");
  }
  if (read.too_large) {
    fail(at, quote(path) + " is larger than 64 KiB; expected a file holding only the secret");
  }
  auto& secret = read.content;
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) {
    secret.pop_back();
  }
  if (secret.empty()) {
    fail(at, quote(path) + " is empty; expected a file holding the secret");
  }
  return secret;
}

void checkCaFile(const Origin& at, const std::string& path) {
  const auto read = readSmallFile(path, kMaxConfigSize * 16);
  if (read.err != 0) {
    fail(at, quote(path) + " cannot be read: " + std::strerror(read.err) +
                 "; expected a PEM file of CA certificates");
  }
}

std::string joinKeys(std::initializer_list<std::string_view> keys) {
  std::string out;
  for (const auto key : keys) {
    out += out.empty() ? "" : ", ";
    out += key;
  }
  return out;
}

std::string kindOf(const YAML::Node& node) {
  if (node.IsSequence()) {
    return "a list";
  }
  if (node.IsMap()) {
    return "a mapping";
  }
  return "a single value";
}

// A list of networks from a YAML list or a comma-separated text.
std::vector<std::string> parseNetworksAt(const Origin& at, const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& raw : items) {
    size_t start = 0;
    while (start <= raw.size()) {
      const auto comma = std::min(raw.find(',', start), raw.size());
      auto item = raw.substr(start, comma - start);
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      start = comma + 1;
      if (item.empty()) {
        continue;
      }
      if (!Network::parse(item)) {
        fail(at, quote(item) + " is not a network; " + std::string(kExpectNetwork));
      }
      out.push_back(item);
    }
  }
  return out;
}

std::uint64_t parseSizeAt(const Origin& at, const std::string& text) {
  const auto size = common::parseByteSize(text);
  if (!size) {
    fail(at, quote(text) + " is not a size; " + std::string(kExpectSize));
  }
  return *size;
}

// "95%" or "95": a share in percent, above 0 and at most 100.
double parsePercentAt(const Origin& at, const std::string& text) {
  std::string number = text;
  if (!number.empty() && number.back() == '%') {
    number.pop_back();
  }
  char* rest = nullptr;
  errno = 0;
  const double value = number.empty() ? 0 : std::strtod(number.c_str(), &rest);
  if (number.empty() || errno != 0 || *rest != '\0' || !(value > 0 && value <= 100)) {
    fail(at, quote(text) + " is not a percentage; " + std::string(kExpectPercent));
  }
  return value;
}

// cache.max_size: "50GiB" sets a size, "80%" a share of the filesystem, "0" no limit.
void parseCacheLimitAt(const Origin& at, const std::string& text, CacheConfig& cache) {
  if (!text.empty() && text.back() == '%') {
    cache.max_size_percent = parsePercentAt(at, text);
    cache.max_size = 0;
    return;
  }
  const auto size = common::parseByteSize(text);
  if (!size) {
    fail(at, quote(text) + " is not a size limit; " + std::string(kExpectLimit));
  }
  cache.max_size = *size;
  cache.max_size_percent = 0;
}

std::string parsePathAt(const Origin& at, const std::string& text, std::string_view what) {
  if (text.empty() || text.front() != '/') {
    fail(at, quote(text) + " is not an absolute path; expected " + std::string(what));
  }
  return text;
}

// One upstream as it is being read, with where each of its parts came from.
struct UpstreamEntry {
  UpstreamConfig config;
  /// "upstreams[1]"; empty for the built-in Docker Hub upstream.
  std::string key;
  /// The name as written, before normalization.
  std::string written_name;
  Origin name_from;
  Origin default_from;
  Origin username_from;
  Origin password_from;
  /// anonymous_pull as written; unset: on unless credentials upstream and pull users both exist.
  std::optional<bool> anonymous_pull;
};

// The configuration as it is being read.
struct Draft {
  ProxyConfig config;
  std::vector<UpstreamEntry> upstreams;
  /// Whether the file listed the upstreams (else the built-in Docker Hub one is used).
  bool upstreams_from_file = false;
  size_t default_index = 0;
  /// Where each warm image came from, for messages that name the entry.
  std::vector<Origin> warm_from;
  std::optional<Origin> high_watermark_from;
  std::optional<Origin> low_watermark_from;
};

std::vector<common::Platform> parsePlatformsAt(const Origin& at, const std::string& text) {
  try {
    return common::parsePlatforms(text);
  } catch (const common::ConfigError& e) {
    fail(at, e.what());
  }
}

// Adds the images of a warm-list text (one YAML entry, or DCP_WARM_IMAGES), skipping those
// listed already.
void addWarmImagesAt(const Origin& at, const std::string& text,
                     const std::vector<common::Platform>& platforms, Draft& draft) {
  std::vector<common::WarmImage> images;
  try {
    images = common::parseWarmImages(text, platforms, at.key);
  } catch (const common::ConfigError& e) {
    throw common::ConfigError(e.what() + at.where());
  }
  for (auto& image : images) {
    const auto& warm = draft.config.warm.images;
    const bool listed = std::any_of(warm.begin(), warm.end(), [&](const auto& other) {
      return other.image.str() == image.image.str();
    });
    if (!listed) {
      draft.config.warm.images.push_back(std::move(image));
      draft.warm_from.push_back(at);
    }
  }
}

class YamlReader {
public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  void read(const YAML::Node& root, Draft& draft) const {
    if (root.IsNull()) {
      return;
    }
    forEachKey(
        root, "",
        {"log", "http", "storage", "cache", "warm", "upstreams", "tls", "auth", "healthcheck"},
        [&](const std::string& name, const YAML::Node& value, const Origin& at) {
          if (name == "log") {
            readLog(value, draft);
          } else if (name == "http") {
            readHttp(value, draft);
          } else if (name == "storage") {
            readStorage(value, draft);
          } else if (name == "tls") {
            readTls(value, draft);
          } else if (name == "auth") {
            readAuth(value, draft);
          } else if (name == "healthcheck") {
            readHeartbeat(value, draft);
          } else if (name == "cache") {
            readCache(value, draft);
          } else if (name == "warm") {
            readWarm(value, draft);
          } else {
            readUpstreams(value, at, draft);
          }
        });
  }

private:
  Origin at(const std::string& key, const YAML::Node& node) const {
    return {key, file_, node.Mark().line};
  }

  // Calls `visit(name, value, origin)` for each key of the mapping `map` at `prefix`, refusing
  // keys outside `allowed` (typos) and keys given twice. A null value counts as not given.
  template <typename Visit>
  void forEachKey(const YAML::Node& map, const std::string& prefix,
                  std::initializer_list<std::string_view> allowed, Visit visit) const {
    const auto keys = joinKeys(allowed);
    if (!map.IsMap()) {
      fail(at(prefix.empty() ? "config" : prefix, map),
           "got " + kindOf(map) + "; expected a mapping with the keys " + keys);
    }
    std::vector<std::string> seen;
    for (const auto& entry : map) {
      const auto name = entry.first.IsScalar() ? entry.first.Scalar() : std::string("?");
      const auto key = prefix.empty() ? name : prefix + "." + name;
      if (!entry.first.IsScalar() ||
          std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        fail(at(key, entry.first), "unknown key; expected one of " + keys);
      }
      if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
        fail(at(key, entry.first), "given twice; expected each key once");
      }
      seen.push_back(name);
      if (!entry.second.IsNull()) {
        visit(name, entry.second, at(key, entry.second));
      }
    }
  }

  // The text of a single value; `expected` completes the message when it is something else.
  static std::string text(const YAML::Node& node, const Origin& at, std::string_view expected) {
    if (!node.IsScalar()) {
      fail(at, "got " + kindOf(node) + "; " + std::string(expected));
    }
    return node.Scalar();
  }

  static std::string nonEmptyText(const YAML::Node& node, const Origin& at,
                                  std::string_view expected) {
    auto value = text(node, at, expected);
    if (value.empty()) {
      fail(at, "is empty; " + std::string(expected));
    }
    return value;
  }

  static bool boolean(const YAML::Node& node, const Origin& at) {
    constexpr std::string_view kExpected = "expected true or false";
    const auto value = text(node, at, kExpected);
    bool result = false;
    if (!YAML::convert<bool>::decode(node, result)) {
      fail(at, quote(value) + " is not a boolean; " + std::string(kExpected));
    }
    return result;
  }

  void readLog(const YAML::Node& node, Draft& draft) const {
    forEachKey(node, "log", {"level"},
               [&](const std::string&, const YAML::Node& value, const Origin& at) {
                 draft.config.log_level = parseLevelAt(at, text(value, at, kExpectLevel));
               });
  }

  void readHttp(const YAML::Node& node, Draft& draft) const {
    forEachKey(
        node, "http", {"addr", "threads", "shutdown_timeout", "acme_challenge_dir"},
        [&](const std::string& name, const YAML::Node& value, const Origin& at) {
          if (name == "acme_challenge_dir") {
            draft.config.acme_challenge_dir =
                parsePathAt(at, text(value, at, "expected a directory"), "a directory");
          } else if (name == "addr") {
            readListen(value, at, draft);
          } else if (name == "threads") {
            constexpr std::string_view kExpected = "expected a whole number from 1 to 10000";
            const auto raw = text(value, at, kExpected);
            int threads = 0;
            const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), threads);
            if (ec != std::errc() || end != raw.data() + raw.size() || threads < 1 ||
                threads > kMaxThreads) {
              fail(at, quote(raw) + " is not a number of threads; " + std::string(kExpected));
            }
            draft.config.server_threads = threads;
          } else {
            draft.config.shutdown_timeout =
                parseDurationAt(at, text(value, at, kExpectDuration), true);
          }
        });
  }

  void readListen(const YAML::Node& node, const Origin& at, Draft& draft) const {
    std::vector<std::string> listen;
    if (node.IsSequence()) {
      if (node.size() == 0) {
        fail(at, "is an empty list; " + std::string(kExpectListen));
      }
      for (size_t i = 0; i < node.size(); ++i) {
        const auto item_at = this->at(at.key + "[" + std::to_string(i) + "]", node[i]);
        listen.push_back(parseListenAt(item_at, text(node[i], item_at, kExpectListen)));
      }
    } else {
      listen.push_back(parseListenAt(at, text(node, at, kExpectListen)));
    }
    draft.config.listen = std::move(listen);
  }

  void readStorage(const YAML::Node& node, Draft& draft) const {
    forEachKey(node, "storage", {"root", "min_free"},
               [&](const std::string& name, const YAML::Node& value, const Origin& at) {
                 if (name == "min_free") {
                   draft.config.storage_min_free = parseSizeAt(at, text(value, at, kExpectSize));
                   return;
                 }
                 draft.config.storage_root =
                     parseStorageRootAt(at, text(value, at, "expected an absolute path"));
               });
  }

  void readCache(const YAML::Node& node, Draft& draft) const {
    forEachKey(node, "cache",
               {"max_size", "high_watermark", "low_watermark", "expire_after", "cleanup_interval"},
               [&](const std::string& name, const YAML::Node& value, const Origin& at) {
                 auto& cache = draft.config.cache;
                 if (name == "max_size") {
                   parseCacheLimitAt(at, text(value, at, kExpectLimit), cache);
                 } else if (name == "high_watermark") {
                   cache.high_watermark = parsePercentAt(at, text(value, at, kExpectPercent));
                   draft.high_watermark_from = at;
                 } else if (name == "low_watermark") {
                   cache.low_watermark = parsePercentAt(at, text(value, at, kExpectPercent));
                   draft.low_watermark_from = at;
                 } else if (name == "expire_after") {
                   cache.expire_after = parseDurationAt(at, text(value, at, kExpectDuration), true);
                 } else {
                   cache.cleanup_interval =
                       parseDurationAt(at, text(value, at, kExpectDuration), false);
                 }
               });
  }

  // warm.images: a list of "image" strings or {image: NAME, platforms: [os/arch, ...]} maps,
  // read through the same parser as DCP_WARM_IMAGES.
  void readWarm(const YAML::Node& node, Draft& draft) const {
    std::vector<common::Platform> platforms;
    YAML::Node images;
    Origin images_from;
    forEachKey(node, "warm", {"images", "platforms", "refresh_interval"},
               [&](const std::string& name, const YAML::Node& value, const Origin& at) {
                 if (name == "images") {
                   images = value;
                   images_from = at;
                 } else if (name == "platforms") {
                   platforms = parsePlatformsAt(at, joinedList(value, at, ","));
                 } else {
                   draft.config.warm.refresh_interval =
                       parseDurationAt(at, text(value, at, kExpectDuration), false);
                 }
               });
    if (!images) {
      return;
    }
    if (!images.IsSequence()) {
      fail(images_from, "got " + kindOf(images) + "; expected a list of images");
    }
    for (size_t i = 0; i < images.size(); ++i) {
      const auto item = images[i];
      const auto at = this->at("warm.images[" + std::to_string(i) + "]", item);
      std::string entry;
      if (item.IsMap()) {
        std::vector<common::Platform> own = platforms;
        forEachKey(item, at.key, {"image", "platforms"},
                   [&](const std::string& name, const YAML::Node& value, const Origin& field) {
                     if (name == "image") {
                       entry = nonEmptyText(value, field, "expected an image such as alpine:3.20");
                     } else {
                       own = parsePlatformsAt(field, joinedList(value, field, ","));
                     }
                   });
        if (entry.empty()) {
          fail(at, "has no image; expected {image: NAME, platforms: [os/arch, ...]}");
        }
        addWarmImagesAt(at, entry, own, draft);
      } else {
        addWarmImagesAt(at, nonEmptyText(item, at, "expected an image such as alpine:3.20"),
                        platforms, draft);
      }
    }
  }

  // A YAML list of plain values, or one value, as one text joined by `separator`.
  static std::string joinedList(const YAML::Node& node, const Origin& at,
                                const std::string& separator) {
    if (node.IsScalar()) {
      return node.Scalar();
    }
    if (!node.IsSequence()) {
      fail(at, "got " + kindOf(node) + "; expected a list of values");
    }
    std::string joined;
    for (const auto& item : node) {
      joined += (joined.empty() ? "" : separator) + text(item, at, "expected a list of values");
    }
    return joined;
  }

  void readTls(const YAML::Node& node, Draft& draft) const {
    forEachKey(node, "tls", {"addr", "certificate", "key"},
               [&](const std::string& name, const YAML::Node& value, const Origin& at) {
                 auto& tls = draft.config.tls;
                 if (name == "addr") {
                   tls.addr = parseListenAt(at, text(value, at, kExpectListen));
                 } else if (name == "certificate") {
                   tls.certificate = parsePathAt(at, text(value, at, "expected a PEM file"),
                                                 "the PEM certificate chain");
                 } else {
                   tls.key = parsePathAt(at, text(value, at, "expected a PEM file"),
                                         "the PEM private key");
                 }
               });
  }

  std::vector<std::string> textList(const YAML::Node& node, const Origin& at,
                                    std::string_view expected) const {
    std::vector<std::string> out;
    if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); ++i) {
        out.push_back(
            text(node[i], this->at(at.key + "[" + std::to_string(i) + "]", node[i]), expected));
      }
    } else {
      out.push_back(text(node, at, expected));
    }
    return out;
  }

  void readAuth(const YAML::Node& node, Draft& draft) const {
    forEachKey(
        node, "auth",
        {"htpasswd", "admin_htpasswd", "anonymous_networks", "trusted_proxies", "metrics_networks"},
        [&](const std::string& name, const YAML::Node& value, const Origin& at) {
          auto& auth = draft.config.auth;
          if (name == "htpasswd") {
            auth.htpasswd = parsePathAt(at, text(value, at, "expected a file"), "an htpasswd file");
          } else if (name == "admin_htpasswd") {
            auth.admin_htpasswd =
                parsePathAt(at, text(value, at, "expected a file"), "an htpasswd file");
          } else {
            auto networks = parseNetworksAt(at, textList(value, at, kExpectNetwork));
            if (name == "anonymous_networks") {
              auth.anonymous_networks = std::move(networks);
            } else if (name == "trusted_proxies") {
              auth.trusted_proxies = std::move(networks);
            } else {
              auth.metrics_networks = std::move(networks);
            }
          }
        });
  }

  void readHeartbeat(const YAML::Node& node, Draft& draft) const {
    std::optional<Origin> url_from;
    forEachKey(node, "healthcheck", {"url", "url_file", "interval"},
               [&](const std::string& name, const YAML::Node& value, const Origin& at) {
                 auto& heartbeat = draft.config.heartbeat;
                 if (name == "interval") {
                   heartbeat.interval =
                       parseDurationAt(at, text(value, at, kExpectDuration), false);
                   return;
                 }
                 if (url_from) {
                   fail(at, "given together with " + url_from->key + "; expected one of them");
                 }
                 url_from = at;
                 // A ping URL is a secret: anyone who has it can ping the check.
                 heartbeat.url = name == "url"
                                     ? nonEmptyText(value, at, "expected a healthchecks.io URL")
                                     : readSecretFile(at, nonEmptyText(value, at,
                                                                       "expected a "
                                                                       "file"));
               });
  }

  void readUpstreams(const YAML::Node& node, const Origin& at, Draft& draft) const {
    if (!node.IsSequence()) {
      fail(at, "got " + kindOf(node) + "; expected a list of upstreams, each with a name");
    }
    if (node.size() == 0) {
      fail(at, "is an empty list; expected at least one upstream, e.g. - name: docker.io");
    }
    for (size_t i = 0; i < node.size(); ++i) {
      draft.upstreams.push_back(readUpstream(node[i], "upstreams[" + std::to_string(i) + "]"));
    }
    draft.upstreams_from_file = true;

    for (size_t i = 0; i < draft.upstreams.size(); ++i) {
      const auto& entry = draft.upstreams[i];
      for (size_t j = 0; j < i; ++j) {
        const auto& earlier = draft.upstreams[j];
        if (earlier.config.name == entry.config.name) {
          fail(entry.name_from, quote(entry.written_name) + " is the same registry as " +
                                    earlier.key + " (" + earlier.config.name +
                                    "); expected each registry once");
        }
      }
    }
    bool found_default = false;
    for (size_t i = 0; i < draft.upstreams.size(); ++i) {
      const auto& entry = draft.upstreams[i];
      if (entry.default_from.key.empty()) {
        continue;
      }
      if (found_default) {
        const auto& first = draft.upstreams[draft.default_index];
        fail(entry.default_from, "true, but " + first.key + " (" + first.config.name +
                                     ") is the default already; expected at most one default");
      }
      found_default = true;
      draft.default_index = i;
    }
  }

  UpstreamEntry readUpstream(const YAML::Node& node, const std::string& key) const {
    UpstreamEntry entry;
    entry.key = key;
    std::optional<std::string> url;
    std::optional<Origin> url_from;
    std::optional<Origin> username_file_from;
    std::optional<Origin> password_file_from;
    std::optional<Origin> ca_file_from;
    std::string username_file;
    std::string password_file;

    forEachKey(
        node, key,
        {"name", "url", "username", "username_file", "password", "password_file", "tag_ttl",
         "connect_timeout", "request_timeout", "stall_timeout", "ca_file", "insecure_skip_verify",
         "anonymous_pull", "default"},
        [&](const std::string& name, const YAML::Node& value, const Origin& at) {
          auto& config = entry.config;
          if (name == "name") {
            const auto raw = nonEmptyText(value, at, kExpectName);
            config.name = normalizeRegistryName(raw);
            entry.written_name = raw;
            entry.name_from = at;
            if (!isRegistryName(config.name)) {
              fail(at, quote(raw) + " is not a registry name; " + std::string(kExpectName));
            }
          } else if (name == "url") {
            url = nonEmptyText(value, at, kExpectUrl);
            url_from = at;
          } else if (name == "username") {
            config.username = nonEmptyText(value, at, "expected the upstream's user name");
            entry.username_from = at;
          } else if (name == "username_file") {
            username_file = nonEmptyText(value, at, "expected a file holding the user name");
            username_file_from = at;
          } else if (name == "password") {
            // The value is not shown whatever it is, so the messages are those of a secret.
            config.password = nonEmptyText(value, at, "expected the upstream's password");
            entry.password_from = at;
          } else if (name == "password_file") {
            password_file = nonEmptyText(value, at, "expected a file holding the password");
            password_file_from = at;
          } else if (name == "tag_ttl") {
            config.tag_ttl = parseDurationAt(at, text(value, at, kExpectDuration), true);
          } else if (name == "connect_timeout") {
            config.connect_timeout = parseDurationAt(at, text(value, at, kExpectDuration), false);
          } else if (name == "request_timeout") {
            config.request_timeout = parseDurationAt(at, text(value, at, kExpectDuration), false);
          } else if (name == "stall_timeout") {
            config.stall_timeout = parseDurationAt(at, text(value, at, kExpectDuration), false);
          } else if (name == "ca_file") {
            config.ca_file = nonEmptyText(value, at, "expected a PEM file of CA certificates");
            ca_file_from = at;
          } else if (name == "insecure_skip_verify") {
            config.insecure_skip_verify = boolean(value, at);
          } else if (name == "anonymous_pull") {
            entry.anonymous_pull = boolean(value, at);
          } else if (boolean(value, at)) {
            entry.default_from = at;
          }
        });

    auto& config = entry.config;
    if (config.name.empty()) {
      fail(at(key + ".name", node), "missing; " + std::string(kExpectName));
    }
    if (url) {
      config.url = parseUpstreamUrl(*url_from, *url, "the username and password keys").base;
    } else {
      // The registries clients name serve the API at their own name, except Docker Hub.
      config.url =
          config.name == kDockerHub ? std::string(kDockerHubUrl) : "https://" + config.name;
    }
    if (username_file_from) {
      if (config.username) {
        fail(*username_file_from, "given together with username; expected one of them");
      }
      config.username = readSecretFile(*username_file_from, username_file);
      entry.username_from = *username_file_from;
    }
    if (password_file_from) {
      if (config.password) {
        fail(*password_file_from, "given together with password; expected one of them");
      }
      config.password = readSecretFile(*password_file_from, password_file);
      entry.password_from = *password_file_from;
    }
    if (ca_file_from) {
      checkCaFile(*ca_file_from, config.ca_file);
    }
    return entry;
  }

  std::string file_;
};

void readFile(const std::string& path, Draft& draft) {
  const auto read = readSmallFile(path, kMaxConfigSize);
  if (read.err != 0) {
    throw common::ConfigError(path + ": cannot be read: " + std::strerror(read.err) +
                              "; expected a YAML configuration file");
  }
  if (read.too_large) {
    throw common::ConfigError(path + ": larger than 1 MiB; expected a YAML configuration file");
  }

  YAML::Node root;
  try {
    root = YAML::Load(read.content);
  } catch (const YAML::Exception& e) {
    // Only the kind of error: the detail after ':' may quote characters of the file, and
    // those may belong to a password.
    const auto kind = e.msg.substr(0, e.msg.find(": "));
    std::string where = path;
    if (!e.mark.is_null()) {
      where += ", line " + std::to_string(e.mark.line + 1) + ", column " +
               std::to_string(e.mark.column + 1);
    }
    throw common::ConfigError(where + ": not valid YAML: " + kind);
  }
  YamlReader(path).read(root, draft);
}

// The variable's value; an empty one counts as unset, as compose writes `VAR=` for "no value".
std::optional<std::string> envValue(const std::map<std::string, std::string>& env,
                                    const char* name) {
  const auto it = env.find(name);
  if (it == env.end() || it->second.empty()) {
    return std::nullopt;
  }
  return it->second;
}

// A credential of the default upstream from `name` or `name_FILE`; nothing if neither is set.
std::optional<std::string> envSecret(const std::map<std::string, std::string>& env,
                                     const char* name, const char* file_name, Origin& from) {
  const auto value = envValue(env, name);
  const auto path = envValue(env, file_name);
  if (value && path) {
    fail(envOrigin(file_name), std::string("set together with ") + name + "; expected one of them");
  }
  if (value) {
    from = envOrigin(name);
    return value;
  }
  if (path) {
    from = envOrigin(file_name);
    return readSecretFile(from, *path);
  }
  return std::nullopt;
}

// The cache's limits and the warm list from the environment. REGISTRY_PROXY_TTL is the reference
// registry's name for expiry, so an existing docker-registry.env keeps its meaning.
void applyCacheEnvironment(const std::map<std::string, std::string>& env, Draft& draft) {
  auto& cache = draft.config.cache;
  if (const auto limit = envValue(env, kEnvCacheMaxSize)) {
    parseCacheLimitAt(envOrigin(kEnvCacheMaxSize), *limit, cache);
  }
  if (const auto high = envValue(env, kEnvCacheHighWatermark)) {
    draft.high_watermark_from = envOrigin(kEnvCacheHighWatermark);
    cache.high_watermark = parsePercentAt(*draft.high_watermark_from, *high);
  }
  if (const auto low = envValue(env, kEnvCacheLowWatermark)) {
    draft.low_watermark_from = envOrigin(kEnvCacheLowWatermark);
    cache.low_watermark = parsePercentAt(*draft.low_watermark_from, *low);
  }
  const auto expire = envValue(env, kEnvCacheExpireAfter);
  const auto ttl = envValue(env, kEnvProxyTtl);
  if (expire && ttl) {
    fail(envOrigin(kEnvProxyTtl),
         std::string("set together with ") + kEnvCacheExpireAfter + "; expected one of them");
  }
  if (expire || ttl) {
    const auto* name = expire ? kEnvCacheExpireAfter : kEnvProxyTtl;
    cache.expire_after = parseDurationAt(envOrigin(name), expire ? *expire : *ttl, true);
  }
  if (const auto interval = envValue(env, kEnvCacheCleanupInterval)) {
    cache.cleanup_interval = parseDurationAt(envOrigin(kEnvCacheCleanupInterval), *interval, false);
  }

  auto& warm = draft.config.warm;
  if (const auto interval = envValue(env, kEnvWarmRefreshInterval)) {
    warm.refresh_interval = parseDurationAt(envOrigin(kEnvWarmRefreshInterval), *interval, false);
  }
  const auto platforms = envValue(env, kEnvWarmPlatforms);
  const auto images = envValue(env, kEnvWarmImages);
  if (platforms && !images) {
    fail(envOrigin(kEnvWarmPlatforms),
         std::string("set without ") + kEnvWarmImages + "; expected the images it applies to");
  }
  if (images) {
    // The environment's list replaces the file's, as every other variable does.
    warm.images.clear();
    draft.warm_from.clear();
    const auto defaults = platforms ? parsePlatformsAt(envOrigin(kEnvWarmPlatforms), *platforms)
                                    : std::vector<common::Platform>{};
    addWarmImagesAt(envOrigin(kEnvWarmImages), *images, defaults, draft);
  }
}

// Watermarks in the right order, and warm images only from configured upstreams: a warm list
// must not make the proxy dial a registry nobody configured.
void checkCache(const Draft& draft, const ProxyConfig& config) {
  const auto& cache = config.cache;
  if (cache.low_watermark >= cache.high_watermark) {
    const auto at = draft.low_watermark_from.value_or(
        draft.high_watermark_from.value_or(Origin{"cache.low_watermark", "", -1}));
    fail(at, "the low watermark (" + std::to_string(static_cast<int>(cache.low_watermark)) +
                 "%) is not below the high one (" +
                 std::to_string(static_cast<int>(cache.high_watermark)) +
                 "%); expected low_watermark < high_watermark");
  }
  for (size_t i = 0; i < config.warm.images.size(); ++i) {
    const auto& image = config.warm.images[i].image;
    if (config.findUpstream(image.registry) != nullptr) {
      continue;
    }
    std::string names;
    for (const auto& upstream : config.upstreams) {
      names += (names.empty() ? "" : ", ") + upstream.name;
    }
    fail(draft.warm_from[i], quote(image.str()) + " is from " + image.registry +
                                 ", which is not a configured upstream; expected an image of " +
                                 names);
  }
}

void applyEnvironment(const std::map<std::string, std::string>& env, Draft& draft) {
  auto& config = draft.config;
  auto& upstream = draft.upstreams[draft.default_index];

  if (const auto level = envValue(env, kEnvLogLevel)) {
    config.log_level = parseLevelAt(envOrigin(kEnvLogLevel), *level);
  }
  if (const auto addr = envValue(env, kEnvHttpAddr)) {
    // One address as the reference registry takes it, or several separated by commas.
    config.listen.clear();
    size_t start = 0;
    while (start <= addr->size()) {
      const auto comma = std::min(addr->find(',', start), addr->size());
      config.listen.push_back(
          parseListenAt(envOrigin(kEnvHttpAddr), addr->substr(start, comma - start)));
      start = comma + 1;
    }
  }
  if (const auto root = envValue(env, kEnvStorageRoot)) {
    config.storage_root = parseStorageRootAt(envOrigin(kEnvStorageRoot), *root);
  }
  if (const auto url = envValue(env, kEnvRemoteUrl)) {
    const auto parsed = parseUpstreamUrl(envOrigin(kEnvRemoteUrl), *url,
                                         "REGISTRY_PROXY_USERNAME and REGISTRY_PROXY_PASSWORD");
    upstream.config.url = parsed.base;
    if (!draft.upstreams_from_file) {
      // Without a list in the file the one upstream is whatever the URL names, as in the
      // reference registry.
      if (!isRegistryName(parsed.derived_name)) {
        fail(envOrigin(kEnvRemoteUrl), quoteUrl(*url) + " gives no registry name; " +
                                           std::string(kExpectUrl) + " with a DNS name or IPv4");
      }
      upstream.config.name = parsed.derived_name;
    }
  }
  if (auto username = envSecret(env, kEnvUsername, kEnvUsernameFile, upstream.username_from)) {
    upstream.config.username = std::move(username);
  }
  if (auto password = envSecret(env, kEnvPassword, kEnvPasswordFile, upstream.password_from)) {
    upstream.config.password = std::move(password);
  }
  if (const auto ttl = envValue(env, kEnvTagTtl)) {
    upstream.config.tag_ttl = parseDurationAt(envOrigin(kEnvTagTtl), *ttl, true);
  }
  if (const auto anonymous = envValue(env, kEnvAnonymousPull)) {
    const auto value = lowercase(*anonymous);
    if (value != "true" && value != "false") {
      fail(envOrigin(kEnvAnonymousPull), quote(*anonymous) + " is not a boolean; expected true or "
                                                             "false");
    }
    upstream.anonymous_pull = value == "true";
  }
  if (const auto min_free = envValue(env, kEnvStorageMinFree)) {
    config.storage_min_free = parseSizeAt(envOrigin(kEnvStorageMinFree), *min_free);
  }
  if (const auto addr = envValue(env, kEnvTlsAddr)) {
    config.tls.addr = parseListenAt(envOrigin(kEnvTlsAddr), *addr);
  }
  if (const auto file = envValue(env, kEnvTlsCertificate)) {
    config.tls.certificate =
        parsePathAt(envOrigin(kEnvTlsCertificate), *file, "the PEM certificate chain");
  }
  if (const auto file = envValue(env, kEnvTlsKey)) {
    config.tls.key = parsePathAt(envOrigin(kEnvTlsKey), *file, "the PEM private key");
  }
  if (const auto file = envValue(env, kEnvHtpasswd)) {
    config.auth.htpasswd = parsePathAt(envOrigin(kEnvHtpasswd), *file, "an htpasswd file");
  }
  if (const auto file = envValue(env, kEnvAdminHtpasswd)) {
    config.auth.admin_htpasswd =
        parsePathAt(envOrigin(kEnvAdminHtpasswd), *file, "an htpasswd file");
  }
  if (const auto list = envValue(env, kEnvAnonymousNetworks)) {
    config.auth.anonymous_networks = parseNetworksAt(envOrigin(kEnvAnonymousNetworks), {*list});
  }
  if (const auto list = envValue(env, kEnvTrustedProxies)) {
    config.auth.trusted_proxies = parseNetworksAt(envOrigin(kEnvTrustedProxies), {*list});
  }
  if (const auto list = envValue(env, kEnvMetricsNetworks)) {
    config.auth.metrics_networks = parseNetworksAt(envOrigin(kEnvMetricsNetworks), {*list});
  }
  if (const auto dir = envValue(env, kEnvAcmeChallengeDir)) {
    config.acme_challenge_dir = parsePathAt(envOrigin(kEnvAcmeChallengeDir), *dir, "a directory");
  }
  Origin url_from;
  if (auto url = envSecret(env, kEnvHeartbeatUrl, kEnvHeartbeatUrlFile, url_from)) {
    config.heartbeat.url = std::move(*url);
  }
  if (const auto interval = envValue(env, kEnvHeartbeatInterval)) {
    config.heartbeat.interval = parseDurationAt(envOrigin(kEnvHeartbeatInterval), *interval, false);
  }
  applyCacheEnvironment(env, draft);
}

// TLS needs its three parts together; a half-configured listener would fail at the first client.
void checkTls(const ProxyConfig& config) {
  const auto& tls = config.tls;
  const bool any = !tls.addr.empty() || !tls.certificate.empty() || !tls.key.empty();
  if (!any) {
    return;
  }
  for (const auto& [value, key] :
       {std::pair{tls.addr, "tls.addr"}, std::pair{tls.certificate, "tls.certificate"},
        std::pair{tls.key, "tls.key"}}) {
    if (value.empty()) {
      throw common::ConfigError(std::string(key) +
                                ": missing; expected tls.addr, tls.certificate and tls.key "
                                "together (or DCP_TLS_ADDR, DCP_TLS_CERTIFICATE, DCP_TLS_KEY)");
    }
  }
}

// A username without a password (or the reverse) is almost always a secret that failed to
// arrive; refusing it beats pulling anonymously into a rate limit.
void checkCredentials(const Draft& draft) {
  for (size_t i = 0; i < draft.upstreams.size(); ++i) {
    const auto& entry = draft.upstreams[i];
    const bool has_username = entry.config.username.has_value();
    if (has_username == entry.config.password.has_value()) {
      continue;
    }
    const std::string given = has_username ? "username" : "password";
    const std::string missing = has_username ? "password" : "username";
    std::vector<std::string> sources;
    if (!entry.key.empty()) {
      sources = {missing, missing + "_file"};
    }
    if (i == draft.default_index) {
      const std::string var = has_username ? kEnvPassword : kEnvUsername;
      sources.push_back(var);
      sources.push_back(var + "_FILE");
    }
    std::string from;
    for (size_t k = 0; k < sources.size(); ++k) {
      from += k == 0 ? "" : (k + 1 == sources.size() ? " or " : ", ");
      from += sources[k];
    }
    fail(has_username ? entry.username_from : entry.password_from,
         "given without a " + missing + "; expected a " + missing + " too (from " + from +
             "), or no " + given);
  }
}

} // namespace

const UpstreamConfig* ProxyConfig::findUpstream(const std::string& name) const {
  const auto wanted = normalizeRegistryName(name);
  for (const auto& upstream : upstreams) {
    if (normalizeRegistryName(upstream.name) == wanted) {
      return &upstream;
    }
  }
  return nullptr;
}

const UpstreamConfig& ProxyConfig::defaultUpstream() const {
  if (const auto* upstream = findUpstream(default_upstream)) {
    return *upstream;
  }
  if (upstreams.empty()) {
    throw common::ConfigError("upstreams: none configured; expected at least one upstream");
  }
  return upstreams.front();
}

std::string normalizeRegistryName(const std::string& name) {
  auto lower = lowercase(name);
  if (lower == "index.docker.io" || lower == "registry-1.docker.io") {
    return std::string(kDockerHub);
  }
  return lower;
}

ProxyConfig defaultConfig() {
  ProxyConfig config;
  UpstreamConfig hub;
  hub.name = kDockerHub;
  hub.url = kDockerHubUrl;
  config.upstreams.push_back(std::move(hub));
  config.default_upstream = kDockerHub;
  return config;
}

ProxyConfig loadConfig(const std::optional<std::string>& yaml_path,
                       const std::map<std::string, std::string>& env) {
  Draft draft;
  draft.config = defaultConfig();
  draft.config.upstreams.clear();
  if (yaml_path) {
    readFile(*yaml_path, draft);
  }
  if (draft.upstreams.empty()) {
    UpstreamEntry hub;
    hub.config = defaultConfig().upstreams.front();
    draft.upstreams.push_back(std::move(hub));
  }

  applyEnvironment(env, draft);
  checkCredentials(draft);
  checkTls(draft.config);

  auto config = std::move(draft.config);
  for (auto& entry : draft.upstreams) {
    const bool private_content = entry.config.username.has_value() && !config.auth.htpasswd.empty();
    entry.config.anonymous_pull = entry.anonymous_pull.value_or(!private_content);
    config.upstreams.push_back(std::move(entry.config));
  }
  config.default_upstream = config.upstreams[draft.default_index].name;
  checkCache(draft, config);
  return config;
}

std::map<std::string, std::string> processEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return env;
}

} // namespace proxy
