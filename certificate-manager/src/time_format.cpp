#include "time_format.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace certmgr {

std::string formatTime(common::Clock::TimePoint time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(
      std::chrono::time_point_cast<std::chrono::seconds>(time));
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

std::optional<common::Clock::TimePoint> parseTime(std::string_view text) {
  std::tm tm{};
  const std::string input(text);
  int consumed = 0;
  if (std::sscanf(input.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto rest = text.substr(19);

  std::chrono::nanoseconds fraction{0};
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    long long scale = 100'000'000;
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) {
      fraction += std::chrono::nanoseconds((rest.front() - '0') * scale);
      scale /= 10;
      rest.remove_prefix(1);
    }
  }

  std::chrono::seconds offset{0};
  if (rest == "Z" || rest == "z") {
    rest.remove_prefix(1);
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int hours = 0;
    int minutes = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &hours, &minutes) != 2) {
      return std::nullopt;
    }
    offset = std::chrono::hours(hours) + std::chrono::minutes(minutes);
    if (rest[0] == '-') {
      offset = -offset;
    }
    rest.remove_prefix(6);
  }
  if (!rest.empty()) {
    return std::nullopt;
  }
  const auto seconds = std::chrono::system_clock::from_time_t(::timegm(&tm));
  return std::chrono::time_point_cast<common::Clock::TimePoint::duration>(seconds - offset +
                                                                          fraction);
}

} // namespace certmgr
