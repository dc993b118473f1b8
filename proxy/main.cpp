// docker-cache-proxy: a pull-through cache for container images.
#include "app.hpp"
#include "cli.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"
#include "config.hpp"
#include "self_probe.hpp"

#include <csignal>
#include <iostream>

namespace {

// Blocks the signals main waits for (SIGTERM and SIGINT stop, SIGHUP reloads the configuration),
// before any thread starts, so every thread inherits it.
sigset_t blockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int run(int argc, char** argv) {
  const auto command_line = proxy::parseCommandLine(argc, argv);
  if (command_line.help) {
    std::cout << proxy::usageText();
    return common::kExitOk;
  }
  if (command_line.version) {
    std::cout << "docker-cache-proxy " << DCP_VERSION_STRING << "\n";
    return common::kExitOk;
  }
  auto env = proxy::processEnvironment();
  if (command_line.log_level) {
    env["DCP_LOG_LEVEL"] = *command_line.log_level;
  }
  const auto config_path = command_line.config_path;
  auto config = proxy::loadConfig(config_path, env);
  common::setupLogging(config.log_level);
  if (command_line.healthcheck) {
    const auto outcome = proxy::probeHealth(config);
    std::cout << outcome.message << "\n";
    return outcome.healthy ? common::kExitOk : common::kExitUnavailable;
  }
  if (command_line.check_config) {
    std::cout << "configuration is valid: upstreams=" << config.upstreams.size()
              << " default=" << config.defaultUpstream().name << "\n";
    return common::kExitOk;
  }

  const auto signals = blockShutdownSignals();
  proxy::ProxyApp app(std::move(config),
                      [config_path, env] { return proxy::loadConfig(config_path, env); });
  app.start();

  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    common::logger("proxy")->info("reloading configuration: signal=SIGHUP");
    app.reload();
  }
  common::logger("proxy")->info("stopping: signal={}", signal);
  app.stop();
  common::logger("proxy")->info("stopped");
  return common::kExitOk;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const common::Error& e) {
    std::cerr << "docker-cache-proxy: " << e.what() << "\n";
    return e.exitCode();
  } catch (const std::exception& e) {
    std::cerr << "docker-cache-proxy: unexpected error: " << e.what() << "\n";
    return common::kExitSoftware;
  }
}
