#include "app.hpp"

#include "acme_issuer.hpp"
#include "certificate_manager.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"
#include "config.hpp"
#include "dns01_hook.hpp"
#include "http01_responder.hpp"
#include "lan_ca.hpp"
#include "schedule.hpp"
#include "status_file.hpp"

#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <thread>

namespace certmgr {
namespace {

// How long the program waits at exit for pings still queued or in flight: one attempt's
// timeout. A server that answers gets its pings; one that swallows them (a firewall dropping
// packets) costs the run at most this, not the minute and a half of all retries.
constexpr auto kExitPingWait = std::chrono::seconds(10);

constexpr const char* kUsage =
    "usage: certificate-manager [--config FILE] [--once | --healthcheck]\n"
    "\n"
    "Keeps tls.crt and tls.key in CERTMGR_OUTPUT_DIR valid: from a LAN CA it creates\n"
    "(CERTMGR_MODE=lan-ca, the default) or from an ACME CA (CERTMGR_MODE=acme).\n"
    "\n"
    "  --config FILE   YAML settings (also CERTMGR_CONFIG); the environment wins\n"
    "  --once          one check, then exit: 0 certificate in place, 75 the check failed\n"
    "  --healthcheck   read status.json, exit 0 when healthy, 1 when not\n"
    "\n"
    "Settings: docs/certificates.md\n";

struct Flags {
  std::optional<std::string> config_path;
  bool once = false;
  bool healthcheck = false;
  bool help = false;
};

Flags parseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--once") {
      flags.once = true;
    } else if (arg == "--healthcheck") {
      flags.healthcheck = true;
    } else if (arg == "--help" || arg == "-h") {
      flags.help = true;
    } else if (arg == "--config" && i + 1 < argc) {
      flags.config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      flags.config_path = arg.substr(9);
    } else {
      throw common::UsageError("unknown argument \"" + arg + "\"\n" + kUsage);
    }
  }
  if (flags.once && flags.healthcheck) {
    throw common::UsageError("--once and --healthcheck exclude each other\n" + std::string(kUsage));
  }
  return flags;
}

// For the container's HEALTHCHECK: no tools, no network, just the status file.
int healthcheck(const Config& config) {
  std::string error;
  const auto status = readStatus(config.statusPath(), error);
  if (!status) {
    std::printf("unhealthy: %s\n", error.c_str());
    return 1;
  }
  const auto verdict = evaluateHealth(*status, common::SystemClock::instance().now());
  std::printf("%s: %s\n", verdict.healthy ? "healthy" : "unhealthy", verdict.reason.c_str());
  return verdict.healthy ? 0 : 1;
}

std::unique_ptr<Issuer> makeIssuer(const Config& config, const common::Clock& clock) {
  if (config.mode == Mode::LanCa) {
    std::error_code ec;
    std::filesystem::create_directories(config.output_dir, ec);
    if (ec) {
      throw common::SetupError("cannot create output directory " + config.output_dir.string() +
                               ": " + ec.message());
    }
    return std::make_unique<LanCa>(config.output_dir, clock, config.lan_leaf_validity);
  }
  std::unique_ptr<ChallengeSolver> solver;
  if (config.acme.challenge == ChallengeType::Http01) {
    solver = std::make_unique<Http01Responder>(config.acme.http01_addr, config.acme.http01_webroot);
  } else {
    Dns01Options options;
    options.command = config.acme.dns01_command;
    options.resolvers = config.acme.dns01_resolvers;
    options.skip_propagation = config.acme.dns01_skip_propagation;
    options.propagation_timeout = config.acme.dns01_propagation_timeout;
    options.hook_timeout = config.acme.dns01_hook_timeout;
    solver = std::make_unique<Dns01Hook>(std::move(options));
  }
  return std::make_unique<AcmeIssuer>(config.acme, std::move(solver), clock);
}

int run(const Flags& flags) {
  auto config_path = flags.config_path;
  const auto env = processEnvironment();
  if (!config_path) {
    if (const auto it = env.find("CERTMGR_CONFIG"); it != env.end() && !it->second.empty()) {
      config_path = it->second;
    }
  }
  const Config config = loadConfig(config_path, env);
  common::setupLogging(config.log_level);
  if (flags.healthcheck) {
    return healthcheck(config);
  }

  // SIGTERM and SIGINT are taken by a thread of our own; every other thread blocks them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto log = common::logger("certmgr");
  const auto& clock = common::SystemClock::instance();
  auto tail = std::make_shared<common::LogTail>();
  attachLogTail(tail);
  common::HealthcheckOptions ping_options;
  ping_options.ca_file = config.healthcheck_ca_bundle;
  common::HealthcheckPinger pinger(config.healthcheck_url, ping_options);
  auto issuer = makeIssuer(config, clock);
  CertificateWriter writer(config.output_dir);
  CertificateManager manager(config, *issuer, writer, clock, pinger, tail);
  log->info("certificate-manager starting: mode={} output_dir={} names={} check_interval={}s "
            "healthcheck={}",
            issuer->name(), config.output_dir.string(), config.identifiers.describe(),
            config.check_interval.count(), pinger.enabled() ? "on" : "off");

  // Pings never hold up or fail the run: wait a bounded time, then abandon what is left.
  const auto flushPings = [&] {
    if (!pinger.flush(kExitPingWait)) {
      log->warn("healthcheck pings not delivered in time, exiting without them: waited_s={}",
                kExitPingWait.count());
    }
  };

  if (flags.once) {
    const auto result = manager.check();
    flushPings();
    return result.ok ? common::kExitOk : common::kExitTempFail;
  }

  Scheduler scheduler(clock, [&] { return manager.check().next_check; });
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    log->info("stopping: signal={}", signal);
    scheduler.stop();
  });
  scheduler.run();
  signal_thread.join();
  flushPings();
  log->info("certificate-manager stopped");
  return common::kExitOk;
}

} // namespace

int runApp(int argc, char** argv) {
  try {
    const Flags flags = parseFlags(argc, argv);
    if (flags.help) {
      std::fputs(kUsage, stdout);
      return common::kExitOk;
    }
    try {
      return run(flags);
    } catch (const common::Error& e) {
      if (flags.healthcheck) {
        std::printf("unhealthy: %s\n", e.what());
        return 1;
      }
      throw;
    }
  } catch (const common::Error& e) {
    std::fprintf(stderr, "certificate-manager: %s\n", e.what());
    return e.exitCode();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "certificate-manager: unexpected error: %s\n", e.what());
    return common::kExitSoftware;
  }
}

} // namespace certmgr
