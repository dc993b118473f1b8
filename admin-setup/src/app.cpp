#include "app.hpp"

#include "client_snippets.hpp"
#include "common/atomic_file.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"
#include "config.hpp"
#include "credentials.hpp"
#include "report.hpp"
#include "step_error.hpp"
#include "verify.hpp"
#include "wait.hpp"
#include "warm_up.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#ifndef DCP_VERSION
#define DCP_VERSION "dev"
#endif

namespace admin {
namespace {

constexpr const char* kUsage =
    "usage: admin-setup [--config FILE] [--healthcheck [URL]]\n"
    "\n"
    "Provisions a running docker-cache-proxy bundle, then exits: waits for the proxy, writes\n"
    "its htpasswd files, warms the cache with DCP_WARM_IMAGES, checks a pull end to end\n"
    "(over HTTPS too when TLS is on), writes client configuration to SETUP_CLIENT_CONFIG_DIR,\n"
    "and reports to HOMELAB_HEALTHCHECK_URL. A second run changes nothing.\n"
    "\n"
    "  --config FILE        YAML settings (also SETUP_CONFIG); the environment wins\n"
    "  --healthcheck [URL]  exit 0 when GET URL (default <SETUP_PROXY_URL>/readyz) answers 200\n"
    "  --version            print the version\n"
    "\n"
    "Exit codes: 0 done, 64 usage, 69 the proxy answered wrongly, 73 cannot write a file,\n"
    "75 the proxy or an upstream is unreachable (try again), 78 configuration.\n"
    "Settings: docs/install.md and env.example\n";

// How long the proxy may take to notice rewritten htpasswd files.
constexpr std::chrono::seconds kCredentialsReloadTimeout{60};

struct Flags {
  std::optional<std::string> config_path;
  bool healthcheck = false;
  std::string healthcheck_url;
  bool help = false;
  bool version = false;
};

Flags parseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--healthcheck") {
      flags.healthcheck = true;
      if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
        flags.healthcheck_url = argv[++i];
      }
    } else if (arg == "--help" || arg == "-h") {
      flags.help = true;
    } else if (arg == "--version") {
      flags.version = true;
    } else if (arg == "--config" && i + 1 < argc) {
      flags.config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      flags.config_path = arg.substr(9);
    } else {
      throw common::UsageError("unknown argument \"" + arg + "\"\n" + kUsage);
    }
  }
  return flags;
}

std::string megabytes(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

// The registries the client configuration names: what the proxy says it serves, else Docker
// Hub and the registries of the warmed images (those worked, so the proxy has them).
std::vector<std::string> clientRegistries(const std::optional<ProxyStatus>& status,
                                          const Config& config) {
  if (status && !status->upstreams.empty()) {
    return status->upstreams;
  }
  std::vector<std::string> registries = {"docker.io"};
  for (const auto& image : config.warm_images) {
    registries.push_back(image.image.registry);
  }
  return registries;
}

int healthcheck(const Flags& flags, const std::map<std::string, std::string>& env) {
  std::string url = flags.healthcheck_url;
  if (url.empty()) {
    std::string base = "http://127.0.0.1:5000";
    if (const auto it = env.find("SETUP_PROXY_URL"); it != env.end() && !it->second.empty()) {
      base = it->second;
    }
    while (!base.empty() && base.back() == '/') {
      base.pop_back();
    }
    url = base + "/readyz";
  }
  common::HttpClient http;
  std::string reason;
  const bool ready = proxyReady(http, url, reason);
  std::printf("%s: %s %s\n", ready ? "healthy" : "unhealthy", common::redactUrl(url).c_str(),
              reason.c_str());
  return ready ? common::kExitOk : common::kExitFailure;
}

struct Outcome {
  std::string summary;
  /// The first deferred failure: later steps still ran, the run still fails.
  std::optional<StepError> failure;
};

Outcome provision(const Config& config) {
  auto log = common::logger("admin-setup");
  const auto started = std::chrono::steady_clock::now();
  common::HttpClient http;
  const auto pacer = Pacer::real();
  Outcome outcome;
  auto defer = [&](const StepError& error) {
    log->error("{}", error.what());
    if (!outcome.failure) {
      outcome.failure = error;
    }
  };

  // 1. The proxy must be up before anything is written for it.
  waitForProxy(http, config, pacer);

  // 2. Credentials, then proof that the proxy took them.
  const auto credentials = writeCredentials(config);
  checkCredentials(http, config, credentials, pacer, kCredentialsReloadTimeout);

  // 3. Warm-up: every image is tried, failures are reported together at the end.
  const RegistryClient client(http, Endpoint{config.proxy_url, "", credentials.pull_user});
  WarmUp warm_up(client);
  std::optional<WarmedImage> sample;
  for (const auto& image : config.warm_images) {
    auto warmed = warm_up.warm(image);
    if (!warmed) {
      defer(StepError("warm-up of " + image.image.str() + " failed: " + warmed.error().message,
                      exitCodeFor(warmed.error())));
      continue;
    }
    if (!sample) {
      sample = std::move(warmed.value());
    }
  }
  if (config.warm_images.empty()) {
    log->info("no images to warm: DCP_WARM_IMAGES is empty");
  }

  // 4. End to end, over each way clients come in.
  try {
    verifyEndToEnd(http, config, credentials, sample);
  } catch (const StepError& e) {
    defer(e);
  }

  // 5. Client configuration for this deployment.
  ClientSnippetInput input;
  input.host = config.client_host;
  input.http_port = config.client_http_port;
  input.https_port = config.client_https_port;
  input.tls = config.tlsEnabled();
  std::error_code ec;
  if (input.tls && std::filesystem::exists(config.ca_file, ec)) {
    input.ca_pem = common::readFile(config.ca_file);
  }
  input.registries = clientRegistries(fetchStatus(http, config, credentials), config);
  const auto written = writeClientSnippets(config.client_config_dir, renderClientSnippets(input));
  log->info("client configuration in {}: written={} unchanged={} (README.txt says where each "
            "file goes)",
            config.client_config_dir.string(), written.written, written.unchanged);

  const auto& totals = warm_up.totals();
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
  char elapsed[32];
  std::snprintf(elapsed, sizeof(elapsed), "%.1fs", seconds.count());
  std::string summary =
      std::string("admin-setup ") + (outcome.failure ? "failed" : "done") + " in " + elapsed + "\n";
  summary += "  credentials: pull users " +
             std::string(config.clientAuthEnabled() ? std::string(describe(credentials.pull_file)) +
                                                          " (" + config.pull_htpasswd.string() + ")"
                                                    : "off (DCP_AUTH_HTPASSWD unset)") +
             ", admin " +
             (credentials.admin ? std::string(describe(credentials.admin_file)) + " (" +
                                      config.admin_htpasswd.string() + ")"
                                : std::string("not managed")) +
             "\n";
  if (credentials.admin && !config.admin_password) {
    summary += "  admin password: in " + config.adminPasswordFile().string() + "\n";
  }
  summary += "  cache: " + std::to_string(totals.images - totals.failed) + " of " +
             std::to_string(totals.images) + " images warmed (" + std::to_string(totals.manifests) +
             " manifests, " + std::to_string(totals.blobs) + " blobs, " + megabytes(totals.bytes) +
             ")\n";
  summary += "  verified: " + (sample ? sample->image.str() : std::string("/v2/ only")) + " over " +
             config.proxy_url + (config.tlsEnabled() ? " and " + config.tls_url : "") + "\n";
  summary += "  client configuration: " + config.client_config_dir.string() + " (" +
             std::to_string(written.written) + " written, " + std::to_string(written.unchanged) +
             " unchanged)\n";
  outcome.summary = summary;
  return outcome;
}

int run(const Flags& flags) {
  const auto env = processEnvironment();
  if (flags.healthcheck) {
    return healthcheck(flags, env);
  }
  common::setupLogging(spdlog::level::info);
  auto log = common::logger("admin-setup");
  std::string ping_ca;
  if (const auto it = env.find("SETUP_HEALTHCHECK_CA_BUNDLE"); it != env.end()) {
    ping_ca = it->second;
  }
  RunReport report(healthcheckUrl(env), ping_ca);
  report.started();
  log->info("admin-setup starting: version={} healthcheck={}", DCP_VERSION,
            report.enabled() ? "on" : "off");

  try {
    auto config_path = flags.config_path;
    if (!config_path) {
      if (const auto it = env.find("SETUP_CONFIG"); it != env.end() && !it->second.empty()) {
        config_path = it->second;
      }
    }
    const Config config = loadConfig(config_path, env);
    common::setupLogging(config.log_level);
    log->info("configuration: proxy={} tls={} client_auth={} images={} client_dir={}",
              config.proxy_url, config.tlsEnabled() ? config.tls_url : "off",
              config.clientAuthEnabled() ? "on" : "off", config.warm_images.size(),
              config.client_config_dir.string());

    const auto outcome = provision(config);
    std::fputs(outcome.summary.c_str(), stdout);
    std::fflush(stdout);
    if (outcome.failure) {
      report.failed();
      report.flush();
      return outcome.failure->exitCode();
    }
    report.succeeded(outcome.summary);
    report.flush();
    return common::kExitOk;
  } catch (const common::Error& e) {
    log->error("admin-setup failed: {}", e.what());
    report.failed();
    report.flush();
    return e.exitCode();
  } catch (const std::exception& e) {
    log->error("admin-setup failed: unexpected error: {}", e.what());
    report.failed();
    report.flush();
    return common::kExitSoftware;
  }
}

} // namespace

int runApp(int argc, char** argv) {
  try {
    const Flags flags = parseFlags(argc, argv);
    if (flags.help) {
      std::fputs(kUsage, stdout);
      return common::kExitOk;
    }
    if (flags.version) {
      std::printf("admin-setup %s\n", DCP_VERSION);
      return common::kExitOk;
    }
    return run(flags);
  } catch (const common::Error& e) {
    std::fprintf(stderr, "admin-setup: %s\n", e.what());
    return e.exitCode();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "admin-setup: unexpected error: %s\n", e.what());
    return common::kExitSoftware;
  }
}

} // namespace admin
