#include "cli.hpp"

#include "common/errors.hpp"
#include "common/logging.hpp"
#include "config.hpp"

#include <string_view>

namespace proxy {
namespace {

constexpr std::string_view kFlags =
    "--config, --check-config, --healthcheck, --log-level, --help or --version";

std::string quote(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

} // namespace

CommandLine parseCommandLine(int argc, char** argv) {
  return parseCommandLine(argc, argv, processEnvironment());
}

CommandLine parseCommandLine(int argc, char** argv, const std::map<std::string, std::string>& env) {
  CommandLine line;
  std::optional<std::string> config_path;

  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    const auto eq = arg.find('=');
    const auto flag = arg.substr(0, eq);
    const bool has_inline_value = arg.starts_with("--") && eq != std::string_view::npos;

    // The value of a flag that takes one: `--flag=VALUE` or `--flag VALUE`. A following
    // argument that is itself a flag is taken for a forgotten value, not for a file name.
    const auto takeValue = [&](std::string_view placeholder) {
      std::string_view value;
      if (has_inline_value) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--")) {
        value = argv[++i];
      }
      if (value.empty()) {
        throw common::UsageError(std::string(flag) + ": needs a value; expected " +
                                 std::string(flag) + " " + std::string(placeholder));
      }
      return std::string(value);
    };
    const auto noValue = [&] {
      if (has_inline_value) {
        throw common::UsageError(std::string(flag) + ": takes no value; expected " +
                                 std::string(flag) + " alone");
      }
    };

    if (flag == "--config") {
      config_path = takeValue("FILE");
    } else if (flag == "--log-level") {
      const auto level = takeValue("LEVEL");
      if (!common::parseLogLevel(level)) {
        throw common::UsageError("--log-level: " + quote(level) +
                                 " is not a log level; expected trace, debug, info, warn, "
                                 "error or off");
      }
      line.log_level = level;
    } else if (flag == "--check-config") {
      noValue();
      line.check_config = true;
    } else if (flag == "--healthcheck") {
      noValue();
      line.healthcheck = true;
    } else if (flag == "--help" || flag == "-h") {
      noValue();
      line.help = true;
    } else if (flag == "--version") {
      noValue();
      line.version = true;
    } else if (arg.starts_with("-")) {
      throw common::UsageError("unknown option " + quote(flag) + "; expected " +
                               std::string(kFlags));
    } else {
      throw common::UsageError("unexpected argument " + quote(arg) +
                               "; expected options only: " + std::string(kFlags));
    }
  }

  if (config_path) {
    line.config_path = std::move(config_path);
  } else if (const auto it = env.find("DCP_CONFIG"); it != env.end() && !it->second.empty()) {
    line.config_path = it->second;
  }
  return line;
}

std::string usageText() {
  return R"(Usage: docker-cache-proxy [--config FILE] [--log-level LEVEL] [--check-config]
       docker-cache-proxy --help | --version

A pull-through cache for container images: serves the OCI distribution API and fetches
what it does not have from the configured upstream registries.

Options:
  --config FILE        read the configuration from FILE (YAML); without it, $DCP_CONFIG;
                       without both, the built-in defaults (Docker Hub, :5000)
  --check-config       load and validate the configuration, then exit: 0 valid, 78 not
  --healthcheck        ask the proxy running with this configuration for /healthz on
                       loopback, then exit: 0 healthy, 69 not (the container HEALTHCHECK)
  --log-level LEVEL    trace, debug, info, warn, error or off; overrides log.level and
                       DCP_LOG_LEVEL
  -h, --help           print this text and exit
  --version            print the version and exit

Environment variables override the file (REGISTRY_PROXY_REMOTEURL, REGISTRY_HTTP_ADDR,
DCP_TAG_TTL, ...); see docs/configuration.md.

Exit status: 0 success, 64 bad command line, 69 unhealthy (--healthcheck), 78 bad
configuration.
)";
}

} // namespace proxy
