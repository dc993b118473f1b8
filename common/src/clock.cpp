#include "common/clock.hpp"

namespace common {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

} // namespace common
