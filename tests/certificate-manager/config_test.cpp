#include "common/atomic_file.hpp"
#include "common/errors.hpp"
#include "config.hpp"
#include "test_util.hpp"

#include <catch2/catch.hpp>

using certmgr::loadConfig;
using certmgr_test::TempDir;
using Env = std::map<std::string, std::string>;

namespace {

std::string configError(const Env& env, const std::optional<std::string>& yaml = std::nullopt) {
  try {
    loadConfig(yaml, env);
  } catch (const common::ConfigError& e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("loadConfig: LAN CA defaults", "[certmgr][config]") {
  const auto config = loadConfig(std::nullopt, {});
  CHECK(config.mode == certmgr::Mode::LanCa);
  CHECK(config.output_dir == "/certs");
  CHECK(config.check_interval == std::chrono::hours(12));
  CHECK(config.key_type == certmgr::KeyType::EcP256);
  CHECK(config.identifiers.dns_names == std::vector<std::string>{"localhost"});
  CHECK(config.identifiers.ip_addresses == std::vector<std::string>{"127.0.0.1"});
  CHECK(config.healthcheck_url.empty());

  SECTION("names and IPs from the HOMELAB_ lists, with localhost added") {
    const auto c = loadConfig(std::nullopt, {{"HOMELAB_APP_EXTERNAL_DOMAIN", "Reg.Example, b.lan"},
                                             {"HOMELAB_APP_EXTERNAL_IP", "192.168.1.10,fd00::10"}});
    CHECK(c.identifiers.dns_names == std::vector<std::string>{"b.lan", "localhost", "reg.example"});
    CHECK(c.identifiers.ip_addresses ==
          std::vector<std::string>{"127.0.0.1", "192.168.1.10", "fd00::10"});
  }

  SECTION("empty variables count as unset, as in an env file that lists every setting") {
    const auto c = loadConfig(
        std::nullopt,
        {{"CERTMGR_CHECK_INTERVAL", ""}, {"CERTMGR_MODE", ""}, {"HOMELAB_HEALTHCHECK_URL", ""}});
    CHECK(c.check_interval == std::chrono::hours(12));
    CHECK(c.mode == certmgr::Mode::LanCa);
  }

  SECTION("localhost can be left out") {
    const auto c = loadConfig(std::nullopt, {{"HOMELAB_APP_EXTERNAL_DOMAIN", "a.lan"},
                                             {"CERTMGR_INCLUDE_LOCALHOST", "false"}});
    CHECK(c.identifiers.dns_names == std::vector<std::string>{"a.lan"});
    CHECK(c.identifiers.ip_addresses.empty());
  }
}

TEST_CASE("loadConfig: bad values name the variable, the value and what is expected",
          "[certmgr][config]") {
  CHECK(configError({{"CERTMGR_MODE", "magic"}}) ==
        "CERTMGR_MODE: bad value \"magic\", expected lan-ca or acme");
  CHECK(configError({{"HOMELAB_APP_EXTERNAL_IP", "10.0.0.300"}})
            .find("HOMELAB_APP_EXTERNAL_IP: bad value \"10.0.0.300\"") == 0);
  CHECK(configError({{"HOMELAB_APP_EXTERNAL_DOMAIN", "bad_name.example"}})
            .find("HOMELAB_APP_EXTERNAL_DOMAIN") == 0);
  CHECK(configError({{"CERTMGR_CHECK_INTERVAL", "often"}}).find("CERTMGR_CHECK_INTERVAL") == 0);
  CHECK(configError({{"CERTMGR_KEY_TYPE", "dsa"}}).find("ec256, ec384") != std::string::npos);

  SECTION("a secret's value is never shown") {
    const auto message = configError({{"HOMELAB_HEALTHCHECK_URL", "ftp://secret-uuid"}});
    CHECK(message.find("HOMELAB_HEALTHCHECK_URL") == 0);
    CHECK(message.find("secret-uuid") == std::string::npos);
    const auto eab = configError({{"CERTMGR_MODE", "acme"},
                                  {"HOMELAB_APP_EXTERNAL_DOMAIN", "a.example"},
                                  {"CERTMGR_ACME_EAB_KID", "kid-1"},
                                  {"CERTMGR_ACME_EAB_HMAC_KEY", "not base64 !!"}});
    CHECK(eab.find("CERTMGR_ACME_EAB_HMAC_KEY") == 0);
    CHECK(eab.find("not base64") == std::string::npos);
  }
}

TEST_CASE("loadConfig: ACME mode", "[certmgr][config]") {
  Env env{{"CERTMGR_MODE", "acme"}, {"HOMELAB_APP_EXTERNAL_DOMAIN", "reg.example"}};
  const auto config = loadConfig(std::nullopt, env);
  CHECK(config.acme.directory_url == certmgr::kLetsEncryptProduction);
  CHECK(config.acme.challenge == certmgr::ChallengeType::Http01);
  CHECK(config.acme.http01_addr == ":80");
  CHECK(config.identifiers.dns_names == std::vector<std::string>{"reg.example"});
  CHECK(config.identifiers.ip_addresses.empty());
  CHECK(config.acme.account_key_path == "/certs/acme-account.key");

  SECTION("directory names") {
    env["CERTMGR_ACME_DIRECTORY"] = "letsencrypt-staging";
    CHECK(loadConfig(std::nullopt, env).acme.directory_url == certmgr::kLetsEncryptStaging);
    env["CERTMGR_ACME_DIRECTORY"] = "https://127.0.0.1:14000/dir";
    CHECK(loadConfig(std::nullopt, env).acme.directory_url == "https://127.0.0.1:14000/dir");
    env["CERTMGR_ACME_DIRECTORY"] = "zerossl";
    CHECK(configError(env).find("CERTMGR_ACME_DIRECTORY: bad value \"zerossl\"") == 0);
  }

  SECTION("a webroot alone means no listener") {
    env["CERTMGR_HTTP01_WEBROOT"] = "/srv/acme";
    CHECK(loadConfig(std::nullopt, env).acme.http01_addr.empty());
    env["CERTMGR_HTTP01_ADDR"] = "";
    CHECK(loadConfig(std::nullopt, env).acme.http01_addr.empty());
    env.erase("CERTMGR_HTTP01_WEBROOT");
    CHECK(configError(env).find("CERTMGR_HTTP01_ADDR and CERTMGR_HTTP01_WEBROOT") == 0);
  }

  SECTION("no names is an error") {
    env.erase("HOMELAB_APP_EXTERNAL_DOMAIN");
    CHECK(configError(env).find("HOMELAB_APP_EXTERNAL_DOMAIN") != std::string::npos);
  }

  SECTION("dns-01 needs a command, valid resolvers, and cannot validate IPs") {
    env["CERTMGR_CHALLENGE"] = "dns-01";
    CHECK(configError(env).find("CERTMGR_DNS01_COMMAND") == 0);
    env["CERTMGR_DNS01_COMMAND"] = "/usr/local/bin/dns-hook";
    env["CERTMGR_DNS01_RESOLVERS"] = "127.0.0.1:8053, [::1]:53,1.1.1.1";
    const auto c = loadConfig(std::nullopt, env);
    CHECK(c.acme.dns01_resolvers ==
          std::vector<std::string>{"127.0.0.1:8053", "[::1]:53", "1.1.1.1"});
    env["CERTMGR_DNS01_RESOLVERS"] = "dns.google";
    CHECK(configError(env).find("CERTMGR_DNS01_RESOLVERS") == 0);
    env.erase("CERTMGR_DNS01_RESOLVERS");
    env["HOMELAB_APP_EXTERNAL_IP"] = "192.0.2.1";
    CHECK(configError(env).find("HOMELAB_APP_EXTERNAL_IP") == 0);
  }

  SECTION("EAB needs both parts") {
    env["CERTMGR_ACME_EAB_KID"] = "kid-1";
    CHECK(configError(env).find("expected both or neither") != std::string::npos);
  }
}

TEST_CASE("loadConfig: YAML file, environment on top, _FILE variants", "[certmgr][config]") {
  TempDir dir;
  const auto yaml = (dir / "certmgr.yaml").string();
  common::writeFileAtomically(yaml, "mode: acme\n"
                                    "domains: [a.example, b.example]\n"
                                    "check_interval: 1h\n"
                                    "acme_directory: letsencrypt-staging\n");
  auto config = loadConfig(yaml, {});
  CHECK(config.mode == certmgr::Mode::Acme);
  CHECK(config.identifiers.dns_names == std::vector<std::string>{"a.example", "b.example"});
  CHECK(config.check_interval == std::chrono::hours(1));

  config = loadConfig(yaml, {{"CERTMGR_CHECK_INTERVAL", "30m"}});
  CHECK(config.check_interval == std::chrono::minutes(30));

  SECTION("a bad YAML value names the file and key") {
    common::writeFileAtomically(yaml, "check_interval: sometimes\n");
    CHECK(configError({}, yaml).find(yaml + " key check_interval") != std::string::npos);
  }

  SECTION("an unknown key is refused") {
    common::writeFileAtomically(yaml, "chek_interval: 1h\n");
    CHECK(configError({}, yaml).find("unknown key \"chek_interval\"") != std::string::npos);
  }

  SECTION("secrets from files") {
    common::writeFileAtomically(dir / "url", "https://hc-ping.com/abc\n");
    config = loadConfig(yaml, {{"HOMELAB_HEALTHCHECK_URL_FILE", (dir / "url").string()}});
    CHECK(config.healthcheck_url == "https://hc-ping.com/abc");
    CHECK(configError({{"HOMELAB_HEALTHCHECK_URL_FILE", (dir / "url").string()},
                       {"HOMELAB_HEALTHCHECK_URL", "https://x"}})
              .find("both set") != std::string::npos);
  }
}
