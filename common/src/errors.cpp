#include "common/errors.hpp"

#include <cstring>

namespace common {

std::string systemErrorMessage(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

} // namespace common
