#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace common {

/// Parses a duration as Go writes them: "300ms", "90s", "5m", "1h30m", "7d"; a bare number
/// means seconds. Returns nothing for anything else (negative, empty, unknown unit).
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

/// "5m", "1h30m", "250ms": the shortest form parseDuration reads back.
std::string formatDuration(std::chrono::milliseconds d);

/// Parses a byte size: "1048576", "512MiB", "50GiB", "1.5GB", "20kB". Binary units are 1024-based,
/// decimal units 1000-based. Returns nothing for anything else.
std::optional<std::uint64_t> parseByteSize(std::string_view text);

} // namespace common
