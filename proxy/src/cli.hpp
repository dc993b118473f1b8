#pragma once

#include <map>
#include <optional>
#include <string>

namespace proxy {

/// What the command line asks for. Flags win over the environment, which wins over the file.
struct CommandLine {
  /// `--config FILE`, else `$DCP_CONFIG`; nothing: built-in defaults and the environment only.
  std::optional<std::string> config_path;
  /// `--check-config`: load and validate the configuration, report, and exit.
  bool check_config = false;
  /// `--log-level LEVEL`, already checked to be a level common::parseLogLevel reads.
  std::optional<std::string> log_level;
  /// `--healthcheck`: ask the running proxy's /healthz (the container HEALTHCHECK) and exit.
  bool healthcheck = false;
  bool help = false;
  bool version = false;
};

/// Parses the arguments, taking `DCP_CONFIG` from the process environment. Throws
/// common::UsageError (exit 64) for an unknown flag, a missing value or a bad log level.
CommandLine parseCommandLine(int argc, char** argv);

/// The same with the environment given, for tests.
CommandLine parseCommandLine(int argc, char** argv, const std::map<std::string, std::string>& env);

/// The text `--help` prints.
std::string usageText();

} // namespace proxy
