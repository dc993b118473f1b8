#include "common/duration.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <utility>
#include <vector>

namespace common {
namespace {

// Reads a non-negative decimal number ("12", "1.5") at the front of `text`.
std::optional<double> takeNumber(std::string_view& text) {
  size_t i = 0;
  bool dot = false;
  while (i < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[i])) || (text[i] == '.' && !dot))) {
    dot = dot || text[i] == '.';
    ++i;
  }
  if (i == 0 || text.substr(0, i) == ".") {
    return std::nullopt;
  }
  const std::string number(text.substr(0, i));
  text.remove_prefix(i);
  return std::strtod(number.c_str(), nullptr);
}

std::string_view takeUnit(std::string_view& text) {
  size_t i = 0;
  while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) {
    ++i;
  }
  const auto unit = text.substr(0, i);
  text.remove_prefix(i);
  return unit;
}

} // namespace

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  static const std::vector<std::pair<std::string_view, double>> kUnits = {
      {"ms", 1.0}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}, {"d", 86400e3}};

  if (text.empty()) {
    return std::nullopt;
  }
  double total = 0;
  bool first = true;
  while (!text.empty()) {
    const auto number = takeNumber(text);
    if (!number) {
      return std::nullopt;
    }
    const auto unit = takeUnit(text);
    if (unit.empty()) {
      // A bare number is seconds, and only as the whole text.
      if (!first || !text.empty()) {
        return std::nullopt;
      }
      total = *number * 1e3;
      break;
    }
    bool known = false;
    for (const auto& [name, scale] : kUnits) {
      if (unit == name) {
        total += *number * scale;
        known = true;
      }
    }
    if (!known) {
      return std::nullopt;
    }
    first = false;
  }
  if (total > 1e15) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total)));
}

std::string formatDuration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms == 0) {
    return "0s";
  }
  std::string out;
  const std::pair<std::int64_t, const char*> parts[] = {
      {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& [scale, name] : parts) {
    if (ms >= scale) {
      out += std::to_string(ms / scale) + name;
      ms %= scale;
    }
  }
  return out;
}

std::optional<std::uint64_t> parseByteSize(std::string_view text) {
  static const std::vector<std::pair<std::string_view, double>> kUnits = {{"", 1},
                                                                          {"B", 1},
                                                                          {"kB", 1e3},
                                                                          {"KB", 1e3},
                                                                          {"MB", 1e6},
                                                                          {"GB", 1e9},
                                                                          {"TB", 1e12},
                                                                          {"KiB", 1024.0},
                                                                          {"MiB", 1048576.0},
                                                                          {"GiB", 1073741824.0},
                                                                          {"TiB", 1099511627776.0}};

  const auto number = takeNumber(text);
  if (!number) {
    return std::nullopt;
  }
  while (!text.empty() && text.front() == ' ') {
    text.remove_prefix(1);
  }
  for (const auto& [name, scale] : kUnits) {
    if (text == name) {
      const double bytes = *number * scale;
      if (bytes > 1.8e19) {
        return std::nullopt;
      }
      return static_cast<std::uint64_t>(std::llround(bytes));
    }
  }
  return std::nullopt;
}

} // namespace common
