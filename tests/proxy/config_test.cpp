#include "common/errors.hpp"
#include "config.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <unistd.h>

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Env = std::map<std::string, std::string>;

namespace {

// A file in the temporary directory with the given content, removed when it goes out of scope.
class TempFile {
public:
  explicit TempFile(const std::string& content, const std::string& suffix = ".yaml") {
    static std::atomic<int> counter{0};
    path_ =
        std::filesystem::temp_directory_path() / ("dcp-config-test-" + std::to_string(::getpid()) +
                                                  "-" + std::to_string(counter++) + suffix);
    std::ofstream(path_, std::ios::binary) << content;
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }

  std::string path() const { return path_.string(); }

private:
  std::filesystem::path path_;
};

proxy::ProxyConfig load(const std::string& yaml, const Env& env = {}) {
  const TempFile file(yaml);
  return proxy::loadConfig(file.path(), env);
}

// What loadConfig throws for this file (none if nullopt) and environment; fails the test when
// it accepts them.
std::string configError(const std::optional<std::string>& yaml, const Env& env = {}) {
  std::optional<TempFile> file;
  if (yaml) {
    file.emplace(*yaml);
  }
  try {
    proxy::loadConfig(file ? std::optional(file->path()) : std::nullopt, env);
  } catch (const common::ConfigError& e) {
    CHECK(e.exitCode() == common::kExitConfig);
    return e.what();
  }
  FAIL("loadConfig accepted a configuration it should refuse");
  return {};
}

std::string envError(const Env& env) {
  return configError(std::nullopt, env);
}

// Checks that `message` holds every one of `parts`.
void checkNames(const std::string& message, std::initializer_list<std::string> parts) {
  for (const auto& part : parts) {
    CHECK_THAT(message, Contains(part));
  }
}

constexpr const char* kDurationExpected = "expected e.g. 300s, 5m, 1h";
constexpr const char* kUrlExpected = "expected http(s)://host[:port]";

} // namespace

TEST_CASE("defaultConfig: Docker Hub on :5000 when nothing is configured", "[proxy][config]") {
  const auto config = proxy::defaultConfig();

  CHECK(config.listen == std::vector<std::string>{":5000"});
  CHECK(config.server_threads == 64);
  CHECK(config.shutdown_timeout == 30s);
  CHECK(config.storage_root == "/var/lib/docker-cache-proxy");
  CHECK(config.log_level == spdlog::level::info);
  REQUIRE(config.upstreams.size() == 1);
  const auto& hub = config.upstreams.front();
  CHECK(hub.name == "docker.io");
  CHECK(hub.url == "https://registry-1.docker.io");
  CHECK_FALSE(hub.username);
  CHECK_FALSE(hub.password);
  CHECK(hub.tag_ttl == 5min);
  CHECK(hub.connect_timeout == 10s);
  CHECK(hub.request_timeout == 60s);
  CHECK(hub.stall_timeout == 60s);
  CHECK(hub.ca_file.empty());
  CHECK_FALSE(hub.insecure_skip_verify);
  CHECK(config.default_upstream == "docker.io");
  CHECK(&config.defaultUpstream() == &hub);

  SECTION("loadConfig with no file and no environment gives the same") {
    const auto loaded = proxy::loadConfig(std::nullopt, {});
    CHECK(loaded.listen == config.listen);
    CHECK(loaded.storage_root == config.storage_root);
    REQUIRE(loaded.upstreams.size() == 1);
    CHECK(loaded.upstreams.front().name == "docker.io");
    CHECK(loaded.upstreams.front().url == "https://registry-1.docker.io");
    CHECK(loaded.default_upstream == "docker.io");
  }

  SECTION("unrelated environment variables change nothing") {
    const auto loaded = proxy::loadConfig(std::nullopt, {{"HOME", "/root"}, {"PATH", "/bin"}});
    CHECK(loaded.listen == config.listen);
    CHECK(loaded.upstreams.front().url == "https://registry-1.docker.io");
  }
}

TEST_CASE("loadConfig: reads every key of the file", "[proxy][config]") {
  const TempFile username_file("robot\n", ".secret");
  const TempFile password_file("file-password\n", ".secret");
  const TempFile ca_file("-----BEGIN CERTIFICATE-----\n", ".pem");
  const auto yaml = R"(
log: {level: debug}
http:
  addr: ["0.0.0.0:5000", "[::]:5001"]
  threads: 16
  shutdown_timeout: 45s
storage:
  root: /srv/cache
upstreams:
  - name: docker.io
    url: https://registry-1.docker.io
    username: me
    password: hub-password
    tag_ttl: 10m
    connect_timeout: 3s
    request_timeout: 2m
    stall_timeout: 90s
  - name: registry.example.com:5443
    url: https://10.0.0.5:5443/
    username_file: )" +
                    username_file.path() +
                    R"(
    password_file: )" +
                    password_file.path() +
                    R"(
    ca_file: )" + ca_file.path() +
                    R"(
    insecure_skip_verify: true
    default: true
)";

  const auto config = load(yaml);

  CHECK(config.log_level == spdlog::level::debug);
  CHECK(config.listen == std::vector<std::string>{"0.0.0.0:5000", "[::]:5001"});
  CHECK(config.server_threads == 16);
  CHECK(config.shutdown_timeout == 45s);
  CHECK(config.storage_root == "/srv/cache");
  REQUIRE(config.upstreams.size() == 2);

  const auto& hub = config.upstreams[0];
  CHECK(hub.name == "docker.io");
  CHECK(hub.url == "https://registry-1.docker.io");
  CHECK(hub.username == "me");
  CHECK(hub.password == "hub-password");
  CHECK(hub.tag_ttl == 10min);
  CHECK(hub.connect_timeout == 3s);
  CHECK(hub.request_timeout == 2min);
  CHECK(hub.stall_timeout == 90s);
  CHECK(hub.ca_file.empty());
  CHECK_FALSE(hub.insecure_skip_verify);

  const auto& private_registry = config.upstreams[1];
  CHECK(private_registry.name == "registry.example.com:5443");
  CHECK(private_registry.url == "https://10.0.0.5:5443");
  CHECK(private_registry.username == "robot");
  CHECK(private_registry.password == "file-password");
  CHECK(private_registry.ca_file == ca_file.path());
  CHECK(private_registry.insecure_skip_verify);
  CHECK(private_registry.tag_ttl == 5min);
  CHECK(private_registry.connect_timeout == 10s);

  CHECK(config.default_upstream == "registry.example.com:5443");
  CHECK(&config.defaultUpstream() == &private_registry);
}

TEST_CASE("loadConfig: what the file leaves out keeps its default", "[proxy][config]") {
  auto config = load("storage: {root: /srv/cache}\n");
  CHECK(config.storage_root == "/srv/cache");

  SECTION("without upstreams the one upstream is Docker Hub") {
    REQUIRE(config.upstreams.size() == 1);
    CHECK(config.upstreams[0].name == "docker.io");
    CHECK(config.upstreams[0].url == "https://registry-1.docker.io");
    CHECK(config.listen == std::vector<std::string>{":5000"});
    CHECK(config.server_threads == 64);
  }

  SECTION("an empty file is the defaults") {
    config = load("");
    CHECK(config.storage_root == "/var/lib/docker-cache-proxy");
    CHECK(config.defaultUpstream().name == "docker.io");
  }

  SECTION("a key with no value is not given") {
    config = load("http:\n  threads:\nlog:\n");
    CHECK(config.server_threads == 64);
    CHECK(config.log_level == spdlog::level::info);
  }

  SECTION("one address is a list of one") {
    config = load("http: {addr: \"127.0.0.1:8080\"}\n");
    CHECK(config.listen == std::vector<std::string>{"127.0.0.1:8080"});
  }

  SECTION("an upstream without url is served at https://<name>, Docker Hub at registry-1") {
    config = load("upstreams:\n  - name: ghcr.io\n  - name: index.docker.io\n");
    REQUIRE(config.upstreams.size() == 2);
    CHECK(config.upstreams[0].url == "https://ghcr.io");
    CHECK(config.upstreams[1].name == "docker.io");
    CHECK(config.upstreams[1].url == "https://registry-1.docker.io");
  }

  SECTION("without a default the first upstream is it") {
    config = load("upstreams:\n  - name: quay.io\n  - name: docker.io\n");
    CHECK(config.default_upstream == "quay.io");
    CHECK(config.defaultUpstream().name == "quay.io");
  }

  SECTION("default: false is not a default") {
    config = load("upstreams:\n  - {name: quay.io, default: false}\n  - name: ghcr.io\n");
    CHECK(config.defaultUpstream().name == "quay.io");
  }

  SECTION("a URL's default port and trailing slash are dropped, scheme and host lowercased") {
    config = load("upstreams:\n  - {name: ghcr.io, url: \"HTTPS://GHCR.io:443/\"}\n");
    CHECK(config.upstreams[0].url == "https://ghcr.io");
  }

  SECTION("a plain http upstream on a port") {
    config = load("upstreams:\n  - {name: \"mirror.lan:5000\", url: \"http://mirror.lan:5000\"}\n");
    CHECK(config.upstreams[0].url == "http://mirror.lan:5000");
  }

  SECTION("tag_ttl may be zero: every tag is revalidated") {
    config = load("upstreams:\n  - {name: docker.io, tag_ttl: 0s}\n");
    CHECK(config.upstreams[0].tag_ttl == 0ms);
  }
}

TEST_CASE("loadConfig: environment overrides the file", "[proxy][config]") {
  const auto yaml = R"(
log: {level: warn}
http: {addr: [":5000", "[::]:5000"]}
storage: {root: /srv/cache}
upstreams:
  - name: docker.io
  - name: ghcr.io
    username: file-user
    password: file-password
    tag_ttl: 1m
    default: true
)";
  Env env;

  SECTION("baseline: the file alone") {
    const auto config = load(yaml, env);
    CHECK(config.log_level == spdlog::level::warn);
    CHECK(config.listen == std::vector<std::string>{":5000", "[::]:5000"});
    CHECK(config.storage_root == "/srv/cache");
    CHECK(config.defaultUpstream().name == "ghcr.io");
    CHECK(config.defaultUpstream().url == "https://ghcr.io");
    CHECK(config.defaultUpstream().username == "file-user");
    CHECK(config.defaultUpstream().tag_ttl == 1min);
  }

  SECTION("DCP_LOG_LEVEL") {
    env["DCP_LOG_LEVEL"] = "trace";
    CHECK(load(yaml, env).log_level == spdlog::level::trace);
  }

  SECTION("REGISTRY_HTTP_ADDR replaces the list") {
    env["REGISTRY_HTTP_ADDR"] = "127.0.0.1:5001";
    CHECK(load(yaml, env).listen == std::vector<std::string>{"127.0.0.1:5001"});
  }

  SECTION("REGISTRY_HTTP_ADDR may list several addresses separated by commas") {
    env["REGISTRY_HTTP_ADDR"] = "0.0.0.0:5001,[::]:5001";
    CHECK(load(yaml, env).listen == std::vector<std::string>{"0.0.0.0:5001", "[::]:5001"});
  }

  SECTION("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY") {
    env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = "/var/lib/registry";
    CHECK(load(yaml, env).storage_root == "/var/lib/registry");
  }

  SECTION("REGISTRY_PROXY_REMOTEURL replaces the default upstream's URL, not its name") {
    env["REGISTRY_PROXY_REMOTEURL"] = "https://ghcr-mirror.example.com";
    const auto config = load(yaml, env);
    CHECK(config.defaultUpstream().name == "ghcr.io");
    CHECK(config.defaultUpstream().url == "https://ghcr-mirror.example.com");
    CHECK(config.findUpstream("docker.io")->url == "https://registry-1.docker.io");
  }

  SECTION("REGISTRY_PROXY_USERNAME and REGISTRY_PROXY_PASSWORD") {
    env["REGISTRY_PROXY_USERNAME"] = "env-user";
    env["REGISTRY_PROXY_PASSWORD"] = "env-password";
    const auto config = load(yaml, env);
    CHECK(config.defaultUpstream().username == "env-user");
    CHECK(config.defaultUpstream().password == "env-password");
    CHECK_FALSE(config.findUpstream("docker.io")->username);
  }

  SECTION("REGISTRY_PROXY_PASSWORD alone pairs with the file's username") {
    env["REGISTRY_PROXY_PASSWORD"] = "env-password";
    const auto config = load(yaml, env);
    CHECK(config.defaultUpstream().username == "file-user");
    CHECK(config.defaultUpstream().password == "env-password");
  }

  SECTION("DCP_TAG_TTL sets the default upstream's tag ttl only") {
    env["DCP_TAG_TTL"] = "30s";
    const auto config = load(yaml, env);
    CHECK(config.defaultUpstream().tag_ttl == 30s);
    CHECK(config.findUpstream("docker.io")->tag_ttl == 5min);
  }

  SECTION("an empty variable counts as unset") {
    env["REGISTRY_HTTP_ADDR"] = "";
    env["DCP_LOG_LEVEL"] = "";
    const auto config = load(yaml, env);
    CHECK(config.listen.size() == 2);
    CHECK(config.log_level == spdlog::level::warn);
  }
}

TEST_CASE("loadConfig: REGISTRY_PROXY_REMOTEURL without upstreams in a file names the upstream",
          "[proxy][config]") {
  Env env{{"REGISTRY_PROXY_REMOTEURL", "https://registry-1.docker.io"}};

  SECTION("baseline: Docker Hub stays docker.io") {
    const auto config = proxy::loadConfig(std::nullopt, env);
    REQUIRE(config.upstreams.size() == 1);
    CHECK(config.upstreams[0].name == "docker.io");
    CHECK(config.default_upstream == "docker.io");
  }

  SECTION("any Docker Hub alias is docker.io") {
    env["REGISTRY_PROXY_REMOTEURL"] = "https://index.docker.io/";
    const auto config = proxy::loadConfig(std::nullopt, env);
    CHECK(config.upstreams[0].name == "docker.io");
    CHECK(config.upstreams[0].url == "https://index.docker.io");
  }

  SECTION("another registry is named after its host") {
    env["REGISTRY_PROXY_REMOTEURL"] = "https://quay.io";
    const auto config = proxy::loadConfig(std::nullopt, env);
    REQUIRE(config.upstreams.size() == 1);
    CHECK(config.upstreams[0].name == "quay.io");
    CHECK(config.upstreams[0].url == "https://quay.io");
    CHECK(config.default_upstream == "quay.io");
    CHECK(config.findUpstream("docker.io") == nullptr);
  }

  SECTION("a port is part of the name") {
    env["REGISTRY_PROXY_REMOTEURL"] = "http://Registry.LAN:5000";
    const auto config = proxy::loadConfig(std::nullopt, env);
    CHECK(config.upstreams[0].name == "registry.lan:5000");
    CHECK(config.upstreams[0].url == "http://registry.lan:5000");
  }

  SECTION("a file without upstreams behaves as no file") {
    env["REGISTRY_PROXY_REMOTEURL"] = "https://quay.io";
    const auto config = load("log: {level: info}\n", env);
    CHECK(config.upstreams[0].name == "quay.io");
  }
}

TEST_CASE("loadConfig: secrets from files", "[proxy][config]") {
  const TempFile user("robot\n", ".secret");
  const TempFile password("s3cret-from-file\r\n", ".secret");
  Env env;

  SECTION("baseline: username_file and password_file, without the final newline") {
    const auto config = load("upstreams:\n  - name: docker.io\n    username_file: " + user.path() +
                             "\n    password_file: " + password.path() + "\n");
    CHECK(config.upstreams[0].username == "robot");
    CHECK(config.upstreams[0].password == "s3cret-from-file");
  }

  SECTION("REGISTRY_PROXY_USERNAME_FILE and REGISTRY_PROXY_PASSWORD_FILE") {
    env["REGISTRY_PROXY_USERNAME_FILE"] = user.path();
    env["REGISTRY_PROXY_PASSWORD_FILE"] = password.path();
    const auto config = proxy::loadConfig(std::nullopt, env);
    CHECK(config.defaultUpstream().username == "robot");
    CHECK(config.defaultUpstream().password == "s3cret-from-file");
  }

  SECTION("the environment's file overrides the YAML's value") {
    env["REGISTRY_PROXY_PASSWORD_FILE"] = password.path();
    const auto config = load("upstreams:\n  - {name: docker.io, username: u, password: p}\n", env);
    CHECK(config.defaultUpstream().password == "s3cret-from-file");
  }

  SECTION("an unreadable file names the key and the path") {
    const auto missing = user.path() + ".missing";
    const auto message =
        envError({{"REGISTRY_PROXY_PASSWORD_FILE", missing}, {"REGISTRY_PROXY_USERNAME", "u"}});
    checkNames(message, {"REGISTRY_PROXY_PASSWORD_FILE: ", missing, "No such file"});
  }

  SECTION("an unreadable file in YAML names the key and the path") {
    const auto missing = user.path() + ".missing";
    const auto message = configError(
        "upstreams:\n  - {name: docker.io, username: u, password_file: " + missing + "}\n");
    checkNames(message, {"upstreams[0].password_file: ", missing, "cannot be read"});
  }

  SECTION("an empty file is refused") {
    const TempFile empty("\n", ".secret");
    const auto message = envError(
        {{"REGISTRY_PROXY_USERNAME_FILE", empty.path()}, {"REGISTRY_PROXY_PASSWORD", "p"}});
    checkNames(message, {"REGISTRY_PROXY_USERNAME_FILE: ", empty.path(), "is empty"});
  }

  SECTION("a value and a file for the same secret are refused") {
    const auto message = configError("upstreams:\n  - {name: docker.io, username: u, password: "
                                     "pw-in-yaml, password_file: " +
                                     password.path() + "}\n");
    checkNames(message, {"upstreams[0].password_file: ", "together with password"});
    CHECK_THAT(message, !Contains("pw-in-yaml"));
  }

  SECTION("a variable and its _FILE variant together are refused") {
    const auto message = envError({{"REGISTRY_PROXY_PASSWORD", "pw-in-env"},
                                   {"REGISTRY_PROXY_PASSWORD_FILE", password.path()}});
    checkNames(message, {"REGISTRY_PROXY_PASSWORD_FILE: ", "REGISTRY_PROXY_PASSWORD;"});
    CHECK_THAT(message, !Contains("pw-in-env"));
  }
}

TEST_CASE("loadConfig: a bad value names the key, the value and what is expected",
          "[proxy][config]") {
  SECTION("a duration") {
    const auto message =
        configError("upstreams:\n  - name: docker.io\n  - {name: ghcr.io, tag_ttl: 5 minutes}\n");
    checkNames(message,
               {"upstreams[1].tag_ttl: \"5 minutes\" is not a duration; ", kDurationExpected});
  }

  SECTION("a zero timeout") {
    const auto message = configError("upstreams:\n  - {name: docker.io, connect_timeout: 0s}\n");
    checkNames(message, {"upstreams[0].connect_timeout: \"0s\"", "above zero"});
  }

  SECTION("the shutdown timeout") {
    const auto message = configError("http: {shutdown_timeout: soon}\n");
    checkNames(message, {"http.shutdown_timeout: \"soon\" is not a duration", kDurationExpected});
  }

  SECTION("the thread count") {
    const auto message = configError("http: {threads: 0}\n");
    checkNames(message, {"http.threads: \"0\"", "expected a whole number from 1 to 10000"});
    CHECK_THAT(configError("http: {threads: many}\n"), Contains("\"many\""));
  }

  SECTION("the log level") {
    const auto message = configError("log: {level: verbose}\n");
    checkNames(message, {"log.level: \"verbose\" is not a log level",
                         "expected trace, debug, info, warn, error or off"});
  }

  SECTION("a listen address") {
    const auto message = configError("http: {addr: [\":5000\", \"5001\"]}\n");
    checkNames(message, {"http.addr[1]: \"5001\" is not a listen address",
                         "expected host:port, [v6]:port or :port"});
  }

  SECTION("a relative storage root") {
    const auto message = configError("storage: {root: cache}\n");
    checkNames(message, {"storage.root: \"cache\" is not an absolute path", "expected e.g. /"});
  }

  SECTION("an upstream name") {
    const auto message = configError("upstreams:\n  - name: ghcr.io/owner\n");
    checkNames(message,
               {"upstreams[0].name: \"ghcr.io/owner\" is not a registry name", "host:port"});
  }

  SECTION("a URL of another scheme") {
    const auto message = configError("upstreams:\n  - {name: ghcr.io, url: \"ftp://x\"}\n");
    checkNames(message, {"upstreams[0].url: \"ftp://x\" is not a URL; ", kUrlExpected});
  }

  SECTION("a URL with a path") {
    const auto message =
        configError("upstreams:\n  - {name: ghcr.io, url: \"https://ghcr.io/v2\"}\n");
    checkNames(message, {"upstreams[0].url: \"https://ghcr.io/v2\" has a path", kUrlExpected});
  }

  SECTION("a URL with a query") {
    const auto message =
        configError("upstreams:\n  - {name: ghcr.io, url: \"https://ghcr.io?x=1\"}\n");
    checkNames(message, {"upstreams[0].url: \"https://ghcr.io?x=1\" has a query", kUrlExpected});
  }

  SECTION("a URL without a host") {
    const auto message = configError("upstreams:\n  - {name: ghcr.io, url: \"https://\"}\n");
    checkNames(message, {"upstreams[0].url: \"https://\" is not a URL"});
  }

  SECTION("a URL with a bad port") {
    const auto message =
        configError("upstreams:\n  - {name: ghcr.io, url: \"https://ghcr.io:0\"}\n");
    checkNames(message, {"upstreams[0].url: \"https://ghcr.io:0\" is not a URL"});
  }

  SECTION("a boolean") {
    const auto message =
        configError("upstreams:\n  - {name: ghcr.io, insecure_skip_verify: maybe}\n");
    checkNames(message, {"upstreams[0].insecure_skip_verify: \"maybe\" is not a boolean",
                         "expected true or false"});
  }

  SECTION("a list where one value belongs") {
    const auto message = configError("storage: {root: [/a, /b]}\n");
    checkNames(message, {"storage.root: got a list", "expected an absolute path"});
  }

  SECTION("an unreadable ca_file") {
    const auto message =
        configError("upstreams:\n  - {name: ghcr.io, ca_file: /nonexistent/ca.pem}\n");
    checkNames(message, {"upstreams[0].ca_file: \"/nonexistent/ca.pem\" cannot be read",
                         "expected a PEM file"});
  }

  SECTION("an empty upstream list") {
    checkNames(configError("upstreams: []\n"), {"upstreams: is an empty list", "at least one"});
  }

  SECTION("a message from the file gives its line") {
    const TempFile file("log:\n  level: info\nhttp:\n  threads: -3\n");
    try {
      proxy::loadConfig(file.path(), {});
      FAIL("accepted");
    } catch (const common::ConfigError& e) {
      checkNames(e.what(), {"http.threads: ", file.path() + ", line 4"});
    }
  }

  SECTION("REGISTRY_PROXY_REMOTEURL") {
    const auto message = envError({{"REGISTRY_PROXY_REMOTEURL", "ftp://x"}});
    CHECK(message ==
          "REGISTRY_PROXY_REMOTEURL: \"ftp://x\" is not a URL; expected http(s)://host[:port]");
  }

  SECTION("DCP_TAG_TTL") {
    const auto message = envError({{"DCP_TAG_TTL", "5 minutes"}});
    CHECK(message ==
          std::string("DCP_TAG_TTL: \"5 minutes\" is not a duration; ") + kDurationExpected);
  }

  SECTION("DCP_LOG_LEVEL") {
    checkNames(envError({{"DCP_LOG_LEVEL", "loud"}}),
               {"DCP_LOG_LEVEL: \"loud\" is not a log level", "expected trace"});
  }

  SECTION("REGISTRY_HTTP_ADDR") {
    checkNames(envError({{"REGISTRY_HTTP_ADDR", ":5000,:99999"}}),
               {"REGISTRY_HTTP_ADDR: \":99999\" is not a listen address", ":port"});
  }

  SECTION("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY") {
    checkNames(envError({{"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "data"}}),
               {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: \"data\" is not an absolute path"});
  }
}

TEST_CASE("loadConfig: listen addresses", "[proxy][config]") {
  const auto listen = [](const std::string& address) {
    return proxy::loadConfig(std::nullopt, {{"REGISTRY_HTTP_ADDR", address}}).listen;
  };

  CHECK(listen(":5000") == std::vector<std::string>{":5000"});
  CHECK(listen("0.0.0.0:5000") == std::vector<std::string>{"0.0.0.0:5000"});
  CHECK(listen("[::]:5000") == std::vector<std::string>{"[::]:5000"});
  CHECK(listen("[::1]:443") == std::vector<std::string>{"[::1]:443"});
  CHECK(listen("localhost:65535") == std::vector<std::string>{"localhost:65535"});

  SECTION("anything else is refused") {
    for (const auto* bad : {"5000", ":0", ":65536", "::1:5000", "[::1]5000", "[::1]:", "host:",
                            "0.0.0.999:5000", "-bad-:5000", "[nothex]:5000", ":5000,"}) {
      INFO(bad);
      CHECK_THAT(envError({{"REGISTRY_HTTP_ADDR", bad}}), Contains("is not a listen address"));
    }
  }
}

TEST_CASE("loadConfig: unknown and repeated keys are refused", "[proxy][config]") {
  SECTION("at the top, with the allowed keys listed") {
    const auto message = configError("upstream:\n  - name: docker.io\n");
    checkNames(
        message,
        {"upstream: unknown key; expected one of log, http, storage, cache, warm, upstreams"});
  }

  SECTION("in http") {
    checkNames(configError("http: {adr: \":5000\"}\n"),
               {"http.adr: unknown key", "addr, threads, shutdown_timeout"});
  }

  SECTION("in an upstream") {
    const auto message = configError("upstreams:\n  - {name: docker.io, tagttl: 5m}\n");
    checkNames(message, {"upstreams[0].tagttl: unknown key", "tag_ttl", "password_file",
                         "insecure_skip_verify", "default"});
  }

  SECTION("in log and storage") {
    checkNames(configError("log: {lvl: info}\n"), {"log.lvl: unknown key", "level"});
    checkNames(configError("storage: {path: /x}\n"), {"storage.path: unknown key", "root"});
  }

  SECTION("a key given twice") {
    checkNames(configError("http:\n  threads: 4\n  threads: 8\n"), {"http.threads: given twice"});
  }

  SECTION("a section of the wrong kind") {
    checkNames(configError("http: 5000\n"), {"http: got a single value; expected a mapping"});
    checkNames(configError("upstreams: {name: docker.io}\n"), {"upstreams: got a mapping"});
  }
}

TEST_CASE("loadConfig: upstream names", "[proxy][config]") {
  SECTION("baseline: Docker Hub's aliases are docker.io") {
    for (const auto* alias : {"docker.io", "index.docker.io", "registry-1.docker.io"}) {
      const auto config = load(std::string("upstreams:\n  - name: ") + alias + "\n");
      CHECK(config.upstreams[0].name == "docker.io");
      CHECK(config.default_upstream == "docker.io");
    }
  }

  SECTION("names are lowercased") {
    CHECK(load("upstreams:\n  - name: GHCR.io\n").upstreams[0].name == "ghcr.io");
  }

  SECTION("host:port") {
    CHECK(load("upstreams:\n  - name: \"registry.lan:5000\"\n").upstreams[0].name ==
          "registry.lan:5000");
  }

  SECTION("a bad port is refused") {
    checkNames(configError("upstreams:\n  - name: \"registry.lan:0\"\n"),
               {"upstreams[0].name: \"registry.lan:0\" is not a registry name"});
    checkNames(configError("upstreams:\n  - name: \"registry.lan:65536\"\n"),
               {"\"registry.lan:65536\" is not a registry name"});
  }

  SECTION("a missing name is refused") {
    checkNames(configError("upstreams:\n  - url: https://ghcr.io\n"),
               {"upstreams[0].name: missing", "e.g. ghcr.io"});
  }

  SECTION("the same registry twice is refused, also through an alias") {
    const auto message = configError(
        "upstreams:\n  - name: docker.io\n  - name: ghcr.io\n  - name: index.docker.io\n");
    checkNames(message,
               {"upstreams[2].name: \"index.docker.io\" is the same registry as upstreams[0] "
                "(docker.io); expected each registry once"});
  }

  SECTION("two defaults are refused") {
    const auto message = configError("upstreams:\n  - {name: docker.io, default: true}\n"
                                     "  - {name: ghcr.io, default: true}\n");
    checkNames(message,
               {"upstreams[1].default: ", "upstreams[0] (docker.io) is the default already",
                "expected at most one default"});
  }
}

TEST_CASE("loadConfig: a username needs a password and the reverse", "[proxy][config]") {
  SECTION("baseline: both or neither is fine") {
    CHECK(
        load("upstreams:\n  - {name: ghcr.io, username: u, password: p}\n").upstreams[0].password ==
        "p");
    CHECK_FALSE(load("upstreams:\n  - name: ghcr.io\n").upstreams[0].username);
  }

  SECTION("a username alone, in the file") {
    const auto message =
        configError("upstreams:\n  - name: docker.io\n  - {name: ghcr.io, username: u}\n");
    checkNames(message,
               {"upstreams[1].username: given without a password", "password or password_file"});
    CHECK_THAT(message, !Contains("REGISTRY_PROXY_PASSWORD"));
  }

  SECTION("a password alone, from the environment") {
    const auto message = envError({{"REGISTRY_PROXY_PASSWORD", "lonely-secret"}});
    checkNames(message, {"REGISTRY_PROXY_PASSWORD: given without a username",
                         "REGISTRY_PROXY_USERNAME or REGISTRY_PROXY_USERNAME_FILE"});
    CHECK_THAT(message, !Contains("lonely-secret"));
  }
}

TEST_CASE("loadConfig: secrets never appear in messages", "[proxy][config]") {
  const std::string secret = "Tr0ub4dor-and-3";

  SECTION("credentials in an upstream URL") {
    const auto message = configError("upstreams:\n  - {name: ghcr.io, url: \"https://me:" + secret +
                                     "@ghcr.io\"}\n");
    checkNames(message, {"upstreams[0].url: ", "<redacted>", "has credentials in it"});
    CHECK_THAT(message, !Contains(secret));
  }

  SECTION("credentials in REGISTRY_PROXY_REMOTEURL") {
    const auto message =
        envError({{"REGISTRY_PROXY_REMOTEURL", "https://me:" + secret + "@ghcr.io/"}});
    checkNames(message, {"REGISTRY_PROXY_REMOTEURL: \"https://<redacted>@ghcr.io/\"",
                         "REGISTRY_PROXY_USERNAME"});
    CHECK_THAT(message, !Contains(secret));
  }

  SECTION("credentials in a URL that is wrong otherwise too") {
    const auto message = envError({{"REGISTRY_PROXY_REMOTEURL", "ftp://me:" + secret + "@x"}});
    CHECK_THAT(message, Contains("<redacted>"));
    CHECK_THAT(message, !Contains(secret));
  }

  SECTION("a password of the wrong kind") {
    const auto message =
        configError("upstreams:\n  - {name: ghcr.io, username: u, password: [" + secret + "]}\n");
    checkNames(message, {"upstreams[0].password: got a list"});
    CHECK_THAT(message, !Contains(secret));
  }

  SECTION("a YAML syntax error inside a password") {
    const auto message = configError("upstreams:\n  - name: ghcr.io\n    username: u\n"
                                     "    password: \"" +
                                     secret + "\\q\"\n");
    checkNames(message, {"not valid YAML", "line 4"});
    CHECK_THAT(message, !Contains(secret));
    CHECK_THAT(message, !Contains(": q"));
  }

  SECTION("a secret file's content, when a later check fails") {
    const TempFile password(secret + "\n", ".secret");
    const auto message =
        configError("upstreams:\n  - {name: ghcr.io, password_file: " + password.path() + "}\n");
    checkNames(message, {"upstreams[0].password_file: given without a username"});
    CHECK_THAT(message, !Contains(secret));
  }
}

TEST_CASE("loadConfig: a file that cannot be read or parsed names the file", "[proxy][config]") {
  SECTION("a missing file") {
    const auto missing = std::filesystem::temp_directory_path() / "dcp-config-test-missing.yaml";
    try {
      proxy::loadConfig(missing.string(), {});
      FAIL("accepted a missing file");
    } catch (const common::ConfigError& e) {
      checkNames(e.what(), {missing.string(), "cannot be read: No such file or directory"});
    }
  }

  SECTION("a YAML syntax error gives line and column") {
    const TempFile file("log:\n  level: info\nhttp:\n  addr: [\":5000\"\n");
    try {
      proxy::loadConfig(file.path(), {});
      FAIL("accepted broken YAML");
    } catch (const common::ConfigError& e) {
      checkNames(e.what(), {file.path() + ", line ", ", column ", "not valid YAML"});
    }
  }

  SECTION("the line and column are those of the error") {
    const TempFile file("log:\n  level: info\n  bad: value: here\n");
    try {
      proxy::loadConfig(file.path(), {});
      FAIL("accepted broken YAML");
    } catch (const common::ConfigError& e) {
      checkNames(e.what(), {file.path() + ", line 3, column ", "illegal map value"});
    }
  }

  SECTION("a file that is not a mapping") {
    checkNames(configError("- docker.io\n"), {"config: got a list; expected a mapping"});
  }
}

TEST_CASE("normalizeRegistryName: Docker Hub's aliases are docker.io", "[proxy][config]") {
  CHECK(proxy::normalizeRegistryName("docker.io") == "docker.io");
  CHECK(proxy::normalizeRegistryName("index.docker.io") == "docker.io");
  CHECK(proxy::normalizeRegistryName("registry-1.docker.io") == "docker.io");
  CHECK(proxy::normalizeRegistryName("Registry-1.Docker.IO") == "docker.io");
  CHECK(proxy::normalizeRegistryName("GHCR.io") == "ghcr.io");
  CHECK(proxy::normalizeRegistryName("registry.lan:5000") == "registry.lan:5000");
  CHECK(proxy::normalizeRegistryName("hub.docker.io") == "hub.docker.io");
}

TEST_CASE("ProxyConfig: findUpstream and defaultUpstream", "[proxy][config]") {
  auto config = load("upstreams:\n  - name: ghcr.io\n  - {name: docker.io, default: true}\n");
  CHECK(config.findUpstream("ghcr.io") == &config.upstreams[0]);
  CHECK(config.defaultUpstream().name == "docker.io");

  SECTION("by any Docker Hub alias, in any case") {
    CHECK(config.findUpstream("index.docker.io") == &config.upstreams[1]);
    CHECK(config.findUpstream("REGISTRY-1.docker.io") == &config.upstreams[1]);
    CHECK(config.findUpstream("GHCR.IO") == &config.upstreams[0]);
  }

  SECTION("an unknown name is not found") {
    CHECK(config.findUpstream("quay.io") == nullptr);
    CHECK(config.findUpstream("") == nullptr);
  }

  SECTION("an unknown default falls back to the first upstream") {
    config.default_upstream = "quay.io";
    CHECK(&config.defaultUpstream() == &config.upstreams[0]);
  }

  SECTION("no upstream at all is a configuration error") {
    config.upstreams.clear();
    CHECK_THROWS_AS(config.defaultUpstream(), common::ConfigError);
  }
}

TEST_CASE("processEnvironment: the process's variables", "[proxy][config]") {
  REQUIRE(::setenv("DCP_CONFIG_TEST_VARIABLE", "a=b", 1) == 0);
  const auto env = proxy::processEnvironment();
  ::unsetenv("DCP_CONFIG_TEST_VARIABLE");

  REQUIRE(env.count("DCP_CONFIG_TEST_VARIABLE") == 1);
  CHECK(env.at("DCP_CONFIG_TEST_VARIABLE") == "a=b");
}
