#include "common/errors.hpp"
#include "config.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using Env = std::map<std::string, std::string>;
using Catch::Matchers::Contains;

namespace {

admin::Config load(const Env& env, const std::optional<std::string>& yaml = std::nullopt) {
  return admin::loadConfig(yaml, env);
}

std::string write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path.string();
}

} // namespace

TEST_CASE("admin config: the defaults fit the compose bundle", "[admin][config]") {
  const auto config = load({});

  CHECK(config.proxy_url == "http://127.0.0.1:5000");
  CHECK(config.tls_url == "https://localhost:5443");
  CHECK(config.tlsEnabled());
  CHECK(config.ca_file == "/certs/ca.crt");
  CHECK(config.wait_timeout == std::chrono::seconds(300));
  CHECK_FALSE(config.clientAuthEnabled());
  CHECK(config.admin_htpasswd.empty());
  CHECK(config.admin_user == "admin");
  CHECK(config.warm_images.empty());
  CHECK(config.client_config_dir == "/client-config");
  CHECK(config.client_host == "localhost");
  CHECK(config.client_http_port == 5000);
  CHECK(config.client_https_port == 5443);
  CHECK(config.healthcheck_url.empty());
  CHECK(config.bcrypt_cost == 10);
}

TEST_CASE("admin config: the environment sets every value", "[admin][config]") {
  Env env = {{"SETUP_PROXY_URL", "http://proxy:5000/"},
             {"SETUP_PROXY_TLS_URL", "https://cache.lan:5443"},
             {"SETUP_CA_FILE", "/x/ca.pem"},
             {"SETUP_WAIT_TIMEOUT", "90s"},
             {"DCP_AUTH_HTPASSWD", "/credentials/htpasswd"},
             {"DCP_PULL_USERS", "alice:pw1 bob:p:w2"},
             {"DCP_ADMIN_HTPASSWD", "/credentials/admin.htpasswd"},
             {"DCP_ADMIN_USER", "root"},
             {"DCP_ADMIN_PASSWORD", "adminpw"},
             {"DCP_WARM_IMAGES", "alpine:3.20, ghcr.io/o/app:v1=linux/arm64+linux/amd64"},
             {"DCP_WARM_PLATFORMS", "linux/amd64"},
             {"SETUP_CLIENT_CONFIG_DIR", "/out"},
             {"HOMELAB_APP_EXTERNAL_DOMAIN", "*.home.example,cache.lan"},
             {"SETUP_CLIENT_HTTP_PORT", "80"},
             {"SETUP_CLIENT_HTTPS_PORT", "443"},
             {"HOMELAB_HEALTHCHECK_URL", "https://hc-ping.com/abc"},
             {"SETUP_LOG_LEVEL", "debug"}};
  const auto config = load(env);

  CHECK(config.proxy_url == "http://proxy:5000");
  CHECK(config.tls_url == "https://cache.lan:5443");
  CHECK(config.ca_file == "/x/ca.pem");
  CHECK(config.wait_timeout == std::chrono::seconds(90));
  CHECK(config.pull_htpasswd == "/credentials/htpasswd");
  REQUIRE(config.pull_users.size() == 2);
  CHECK(config.pull_users[1].user == "bob");
  CHECK(config.pull_users[1].password == "p:w2");
  CHECK(config.admin_user == "root");
  CHECK(config.admin_password == "adminpw");
  REQUIRE(config.warm_images.size() == 2);
  CHECK(config.warm_images[0].image.str() == "docker.io/library/alpine:3.20");
  REQUIRE(config.warm_images[0].platforms.size() == 1);
  CHECK(config.warm_images[0].platforms[0].str() == "linux/amd64");
  CHECK(config.warm_images[1].image.registry == "ghcr.io");
  REQUIRE(config.warm_images[1].platforms.size() == 2);
  CHECK(config.warm_images[1].platforms[0].str() == "linux/arm64");
  CHECK(config.client_config_dir == "/out");
  CHECK(config.client_host == "cache.lan");
  CHECK(config.client_http_port == 80);
  CHECK(config.client_https_port == 443);
  CHECK(config.healthcheck_url == "https://hc-ping.com/abc");
  CHECK(config.log_level == spdlog::level::debug);

  SECTION("an empty SETUP_PROXY_TLS_URL turns the HTTPS checks off") {
    env["SETUP_PROXY_TLS_URL"] = "";
    CHECK_FALSE(load(env).tlsEnabled());
  }
  SECTION("other empty variables count as unset") {
    CHECK(load({{"SETUP_PROXY_URL", ""}, {"DCP_WARM_IMAGES", ""}}).proxy_url ==
          "http://127.0.0.1:5000");
  }
  SECTION("an IP address names the host when there is no domain") {
    CHECK(load({{"HOMELAB_APP_EXTERNAL_IP", "192.168.1.10"}}).client_host == "192.168.1.10");
    CHECK(load({{"HOMELAB_APP_EXTERNAL_IP", "fd00::10"}}).client_host == "[fd00::10]");
  }
}

TEST_CASE("admin config: secrets from files", "[admin][config]") {
  testsupport::TempDir dir;
  const auto users =
      write(dir.path() / "users", "# pull users\nalice:pass with space\n\ncarol:x\n");
  const auto password = write(dir.path() / "pw", "from-file\n");
  const auto url = write(dir.path() / "url", "https://hc-ping.com/from-file\n");
  const Env env = {{"DCP_AUTH_HTPASSWD", "/c/htpasswd"},
                   {"DCP_PULL_USERS_FILE", users},
                   {"DCP_ADMIN_HTPASSWD", "/c/admin.htpasswd"},
                   {"DCP_ADMIN_PASSWORD_FILE", password},
                   {"HOMELAB_HEALTHCHECK_URL_FILE", url}};

  const auto config = load(env);

  REQUIRE(config.pull_users.size() == 2);
  CHECK(config.pull_users[0].password == "pass with space");
  CHECK(config.pull_users[1].user == "carol");
  CHECK(config.admin_password == "from-file");
  CHECK(config.healthcheck_url == "https://hc-ping.com/from-file");
  CHECK(admin::healthcheckUrl(env) == "https://hc-ping.com/from-file");

  SECTION("a variable and its _FILE together are refused") {
    auto both = env;
    both["DCP_ADMIN_PASSWORD"] = "x";
    CHECK_THROWS_WITH(load(both), Contains("DCP_ADMIN_PASSWORD and DCP_ADMIN_PASSWORD_FILE"));
  }
  SECTION("a missing file is named") {
    auto missing = env;
    missing["DCP_PULL_USERS_FILE"] = (dir.path() / "nope").string();
    CHECK_THROWS_WITH(load(missing), Contains("DCP_PULL_USERS_FILE") && Contains("nope"));
  }
}

TEST_CASE("admin config: the YAML file, under the environment", "[admin][config]") {
  testsupport::TempDir dir;
  const auto yaml = write(dir.path() / "setup.yaml", R"(proxy_url: http://10.0.0.2:5000
proxy_tls_url: ""
wait_timeout: 2m
warm_platforms: [linux/amd64, linux/arm64]
warm_images:
  - alpine:3.20
  - image: ghcr.io/o/app:v1
    platforms: [linux/arm/v7]
)");

  const auto config = load({}, yaml);

  CHECK(config.proxy_url == "http://10.0.0.2:5000");
  CHECK_FALSE(config.tlsEnabled());
  CHECK(config.wait_timeout == std::chrono::minutes(2));
  REQUIRE(config.warm_images.size() == 2);
  CHECK(config.warm_images[0].platforms.size() == 2);
  REQUIRE(config.warm_images[1].platforms.size() == 1);
  CHECK(config.warm_images[1].platforms[0].variant == "v7");

  SECTION("the environment wins") {
    CHECK(load({{"SETUP_PROXY_URL", "http://other:5000"}}, yaml).proxy_url == "http://other:5000");
    CHECK(load({{"DCP_WARM_IMAGES", "busybox"}}, yaml).warm_images.size() == 1);
  }
  SECTION("an unknown key is refused with its name") {
    const auto bad = write(dir.path() / "bad.yaml", "proxy_ulr: http://x:5000\n");
    CHECK_THROWS_WITH(load({}, bad), Contains("unknown key \"proxy_ulr\""));
  }
  SECTION("credentials are not YAML settings") {
    const auto bad = write(dir.path() / "bad.yaml", "admin_password: x\n");
    CHECK_THROWS_AS(load({}, bad), common::ConfigError);
  }
}

TEST_CASE("admin config: bad values are refused with what was expected", "[admin][config]") {
  auto refused = [](const Env& env, const std::string& part) {
    CHECK_THROWS_AS(load(env), common::ConfigError);
    CHECK_THROWS_WITH(load(env), Contains(part));
  };

  refused({{"SETUP_PROXY_URL", "proxy:5000"}}, "http(s)://host[:port]");
  refused({{"SETUP_PROXY_URL", "http://proxy:5000/v2"}}, "without a path");
  refused({{"SETUP_PROXY_TLS_URL", "http://proxy:5443"}}, "https://host[:port]");
  refused({{"SETUP_WAIT_TIMEOUT", "soon"}}, "a duration");
  refused({{"SETUP_BCRYPT_COST", "3"}}, "from 4 to 31");
  refused({{"SETUP_CLIENT_HTTP_PORT", "70000"}}, "a port number");
  refused({{"DCP_WARM_IMAGES", "Alpine:3.20"}}, "bad repository name");
  refused({{"DCP_WARM_IMAGES", "alpine=linux"}}, "os/architecture");
  refused({{"DCP_WARM_PLATFORMS", "amd64"}}, "DCP_WARM_PLATFORMS");
  refused({{"DCP_AUTH_HTPASSWD", "/c/htpasswd"}}, "DCP_PULL_USERS is empty");
  refused({{"DCP_PULL_USERS", "alice:pw"}}, "DCP_AUTH_HTPASSWD");
  refused({{"DCP_AUTH_HTPASSWD", "relative"}, {"DCP_PULL_USERS", "a:b"}}, "absolute");
  refused({{"DCP_AUTH_HTPASSWD", "/c/h"}, {"DCP_PULL_USERS", "alice"}}, "user:password");
  refused({{"DCP_AUTH_HTPASSWD", "/c/h"}, {"DCP_PULL_USERS", "a:1 a:2"}}, "listed twice");
  refused({{"DCP_AUTH_HTPASSWD", "/c/h"}, {"DCP_PULL_USERS", "a:" + std::string(73, 'x')}},
          "72 bytes");
  refused(
      {{"DCP_AUTH_HTPASSWD", "/c/h"}, {"DCP_ADMIN_HTPASSWD", "/c/h"}, {"DCP_PULL_USERS", "a:b"}},
      "the same file");
  refused({{"DCP_ADMIN_PASSWORD", "x"}}, "DCP_ADMIN_HTPASSWD");
  refused({{"DCP_ADMIN_USER", "a:b"}}, "bad user name");
  refused({{"HOMELAB_APP_EXTERNAL_DOMAIN", "bad_name!"}}, "DNS names");
  refused({{"HOMELAB_APP_EXTERNAL_IP", "300.1.1.1"}}, "IP addresses");
  refused({{"HOMELAB_HEALTHCHECK_URL", "hc-ping.com/x"}}, "ping URL");
  refused({{"SETUP_LOG_LEVEL", "loud"}}, "trace, debug");

  SECTION("a secret's value is never in the message") {
    try {
      load({{"HOMELAB_HEALTHCHECK_URL", "ftp://secret-token"}});
      FAIL("no error");
    } catch (const common::ConfigError& e) {
      CHECK_THAT(e.what(), !Contains("secret-token"));
    }
  }
}
