#pragma once

#include "common/clock.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace certmgr {

/// RFC 3339 in UTC with second precision: "2026-01-02T03:04:05Z".
std::string formatTime(common::Clock::TimePoint time);

/// Parses RFC 3339 ("2026-01-02T03:04:05Z", fractional seconds and "+01:00" offsets too), as
/// ACME servers write times; nothing for anything else.
std::optional<common::Clock::TimePoint> parseTime(std::string_view text);

} // namespace certmgr
