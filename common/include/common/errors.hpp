#pragma once

#include <stdexcept>
#include <string>

namespace common {

/// Exit codes from sysexits(3), the ones our programs use.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,
  kExitUsage = 64,
  kExitUnavailable = 69,
  kExitSoftware = 70,
  kExitCantCreate = 73,
  kExitTempFail = 75,
  kExitConfig = 78,
};

/// Base of the setup-time errors. Per-request failures are values, never these.
class Error : public std::runtime_error {
public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  /// The sysexits code `main` exits with when this escapes.
  virtual int exitCode() const { return kExitSoftware; }
};

/// Bad configuration: the message names the key, the bad value (never a secret) and what is
/// expected.
class ConfigError : public Error {
public:
  using Error::Error;
  int exitCode() const override { return kExitConfig; }
};

/// Bad command line.
class UsageError : public Error {
public:
  using Error::Error;
  int exitCode() const override { return kExitUsage; }
};

/// A resource needed at start (a directory, a port, a file) cannot be had.
class SetupError : public Error {
public:
  using Error::Error;
  int exitCode() const override { return kExitCantCreate; }
};

/// A peer we depend on is unavailable; retrying later may succeed.
class UnavailableError : public Error {
public:
  using Error::Error;
  int exitCode() const override { return kExitTempFail; }
};

/// `what: strerror(errno)` for a failed C call.
std::string systemErrorMessage(const std::string& what, int err);

} // namespace common
