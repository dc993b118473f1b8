#pragma once

#include <memory>
#include <optional>
#include <spdlog/spdlog.h>
#include <string>
#include <string_view>

namespace common {

/// Parses "trace", "debug", "info", "warn", "error", "off".
std::optional<spdlog::level::level_enum> parseLogLevel(std::string_view text);

/// Sets up stderr logging in our format: time, level, component, message.
void setupLogging(spdlog::level::level_enum level);

/// The named logger of one component ("upstream", "server"), created on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

/// A URL safe to log: userinfo replaced by "redacted", query dropped.
std::string redactUrl(std::string_view url);

} // namespace common
