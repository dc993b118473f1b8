#pragma once

#include "common/errors.hpp"
#include "registry_client.hpp"

#include <string>

namespace admin {

/// A step that failed at run time, with the sysexits code the program ends with: 75 when
/// trying again later may help (the proxy or an upstream is not reachable), 78 when the
/// configuration names something that does not exist, 69 when the proxy answered wrongly.
class StepError : public common::Error {
public:
  StepError(const std::string& message, int exit_code)
      : common::Error(message), exit_code_(exit_code) {}
  int exitCode() const override { return exit_code_; }

private:
  int exit_code_;
};

/// The exit code that fits a failed request.
inline int exitCodeFor(const FetchError& error) {
  switch (error.kind) {
  case FetchError::Kind::Unreachable:
    return common::kExitTempFail;
  case FetchError::Kind::Status:
    // 401, 403, 404: wrong credentials, an upstream the proxy does not have, an image that
    // does not exist. 429 and 5xx: the upstream or the proxy is struggling.
    if (error.status == 429 || error.status >= 500) {
      return common::kExitTempFail;
    }
    return common::kExitConfig;
  case FetchError::Kind::Digest:
  case FetchError::Kind::Content:
    return common::kExitUnavailable;
  }
  return common::kExitSoftware;
}

} // namespace admin
