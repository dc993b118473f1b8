#pragma once

#include <string>
#include <vector>

namespace certmgr {

/// One challenge to answer (RFC 8555 §8).
struct ChallengeTask {
  /// The identifier being validated: "registry.example.com", "192.0.2.1" (no "*.").
  std::string identifier;
  std::string token;
  /// token "." account key thumbprint (RFC 8555 §8.1).
  std::string key_authorization;
};

/// Answers challenges of one type. present() makes every answer visible and returns when the
/// CA can check them; cleanup() removes them and never throws.
class ChallengeSolver {
public:
  virtual ~ChallengeSolver() = default;
  /// "http-01" or "dns-01".
  virtual std::string type() const = 0;
  /// Throws common::Error when an answer cannot be published.
  virtual void present(const std::vector<ChallengeTask>& tasks) = 0;
  virtual void cleanup(const std::vector<ChallengeTask>& tasks) noexcept = 0;
};

} // namespace certmgr
