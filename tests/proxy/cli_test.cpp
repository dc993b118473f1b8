#include "cli.hpp"
#include "common/errors.hpp"

#include <catch2/catch.hpp>

using Catch::Matchers::Contains;
using Env = std::map<std::string, std::string>;

namespace {

proxy::CommandLine parse(std::vector<std::string> args, const Env& env = {}) {
  args.insert(args.begin(), "docker-cache-proxy");
  std::vector<char*> argv;
  for (auto& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  return proxy::parseCommandLine(static_cast<int>(args.size()), argv.data(), env);
}

// The message of the UsageError these arguments cause; fails the test when they are accepted.
std::string usageError(const std::vector<std::string>& args) {
  try {
    parse(args);
  } catch (const common::UsageError& e) {
    CHECK(e.exitCode() == 64);
    return e.what();
  }
  FAIL("parseCommandLine accepted a bad command line");
  return {};
}

} // namespace

TEST_CASE("parseCommandLine: each flag", "[proxy][cli]") {
  SECTION("baseline: no arguments ask for nothing") {
    const auto line = parse({});
    CHECK_FALSE(line.config_path);
    CHECK_FALSE(line.check_config);
    CHECK_FALSE(line.log_level);
    CHECK_FALSE(line.healthcheck);
    CHECK_FALSE(line.help);
    CHECK_FALSE(line.version);
  }

  SECTION("--healthcheck") {
    CHECK(parse({"--healthcheck"}).healthcheck);
  }

  SECTION("--config FILE") {
    CHECK(parse({"--config", "/etc/dcp/config.yaml"}).config_path == "/etc/dcp/config.yaml");
  }

  SECTION("--config=FILE") {
    CHECK(parse({"--config=/etc/dcp/config.yaml"}).config_path == "/etc/dcp/config.yaml");
  }

  SECTION("--check-config") {
    const auto line = parse({"--check-config", "--config", "c.yaml"});
    CHECK(line.check_config);
    CHECK(line.config_path == "c.yaml");
  }

  SECTION("--log-level LEVEL and --log-level=LEVEL") {
    CHECK(parse({"--log-level", "debug"}).log_level == "debug");
    CHECK(parse({"--log-level=warn"}).log_level == "warn");
  }

  SECTION("--help and -h") {
    CHECK(parse({"--help"}).help);
    CHECK(parse({"-h"}).help);
  }

  SECTION("--version") {
    CHECK(parse({"--version"}).version);
  }

  SECTION("a flag given twice: the last one wins") {
    CHECK(parse({"--config", "a.yaml", "--config=b.yaml"}).config_path == "b.yaml");
  }
}

TEST_CASE("parseCommandLine: DCP_CONFIG when --config is absent", "[proxy][cli]") {
  const Env env{{"DCP_CONFIG", "/etc/dcp/from-env.yaml"}};

  SECTION("baseline: DCP_CONFIG names the file") {
    CHECK(parse({}, env).config_path == "/etc/dcp/from-env.yaml");
  }

  SECTION("--config wins over DCP_CONFIG") {
    CHECK(parse({"--config", "/etc/dcp/flag.yaml"}, env).config_path == "/etc/dcp/flag.yaml");
  }

  SECTION("an empty DCP_CONFIG is unset") {
    CHECK_FALSE(parse({}, {{"DCP_CONFIG", ""}}).config_path);
  }
}

TEST_CASE("parseCommandLine: mistakes are usage errors that say what was expected",
          "[proxy][cli]") {
  SECTION("an unknown flag, with the known ones listed") {
    const auto message = usageError({"--confg", "x.yaml"});
    CHECK_THAT(message, Contains("unknown option \"--confg\""));
    CHECK_THAT(
        message,
        Contains("--config, --check-config, --healthcheck, --log-level, --help or --version"));
  }

  SECTION("an unknown flag with a value") {
    CHECK_THAT(usageError({"--port=5000"}), Contains("unknown option \"--port\""));
  }

  SECTION("a value missing at the end") {
    CHECK(usageError({"--config"}) == "--config: needs a value; expected --config FILE");
  }

  SECTION("a value missing before the next flag") {
    CHECK_THAT(usageError({"--config", "--check-config"}), Contains("--config: needs a value"));
  }

  SECTION("an empty inline value") {
    CHECK_THAT(usageError({"--log-level="}), Contains("--log-level: needs a value"));
  }

  SECTION("a log level that does not exist") {
    const auto message = usageError({"--log-level", "verbose"});
    CHECK_THAT(message, Contains("--log-level: \"verbose\" is not a log level"));
    CHECK_THAT(message, Contains("expected trace, debug, info, warn, error or off"));
  }

  SECTION("a value given to a flag that takes none") {
    CHECK_THAT(usageError({"--check-config=yes"}), Contains("--check-config: takes no value"));
  }

  SECTION("a bare argument") {
    CHECK_THAT(usageError({"config.yaml"}), Contains("unexpected argument \"config.yaml\""));
  }
}

TEST_CASE("usageText: names every flag and DCP_CONFIG", "[proxy][cli]") {
  const auto text = proxy::usageText();
  for (const auto* part : {"--config FILE", "--check-config", "--log-level LEVEL", "--help",
                           "--version", "DCP_CONFIG", "docs/configuration.md"}) {
    CHECK_THAT(text, Contains(part));
  }
}
