#pragma once

#include "challenge_solver.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace certmgr {

struct Dns01Options {
  /// Run through /bin/sh as `<command> present <fqdn> <value>` and `... cleanup <fqdn> <value>`,
  /// the contract of lego's exec provider. Exit status 0 means done.
  std::string command;
  /// Resolvers the propagation check asks ("host:port"); empty: the system's.
  std::vector<std::string> resolvers;
  bool skip_propagation = false;
  std::chrono::milliseconds propagation_timeout = std::chrono::minutes(2);
  std::chrono::milliseconds hook_timeout = std::chrono::minutes(2);
  std::chrono::milliseconds poll_interval = std::chrono::seconds(2);
};

/// What a hook run did.
struct HookResult {
  int exit_code = -1;
  bool timed_out = false;
  /// stdout and stderr, interleaved, at most 64 kB.
  std::string output;
};

/// Runs `command` with the arguments through /bin/sh in its own process group, killing the
/// group at the timeout.
HookResult runHook(const std::string& command, const std::vector<std::string>& args,
                   std::chrono::milliseconds timeout);

/// The TXT record name and value of a DNS-01 challenge (RFC 8555 §8.4):
/// "_acme-challenge.<domain>." and base64url(SHA-256(key authorization)).
std::pair<std::string, std::string> dns01Record(const ChallengeTask& task);

/// Answers DNS-01 challenges by calling a user's command to publish and remove TXT records,
/// then waits until the configured resolvers answer with every value (unless skipped).
class Dns01Hook : public ChallengeSolver {
public:
  explicit Dns01Hook(Dns01Options options);

  std::string type() const override { return "dns-01"; }
  void present(const std::vector<ChallengeTask>& tasks) override;
  void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override;

private:
  void waitForPropagation(const std::vector<std::pair<std::string, std::string>>& records);

  Dns01Options options_;
};

} // namespace certmgr
