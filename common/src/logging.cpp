#include "common/logging.hpp"

#include <mutex>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace common {
namespace {

std::mutex& registryMutex() {
  static std::mutex m;
  return m;
}

spdlog::sink_ptr& sharedSink() {
  static spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return sink;
}

spdlog::level::level_enum& currentLevel() {
  static spdlog::level::level_enum level = spdlog::level::info;
  return level;
}

} // namespace

std::optional<spdlog::level::level_enum> parseLogLevel(std::string_view text) {
  static const std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace},  {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},    {"warn", spdlog::level::warn},
      {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
      {"off", spdlog::level::off}};
  for (const auto& [name, level] : kLevels) {
    if (text == name) {
      return level;
    }
  }
  return std::nullopt;
}

void setupLogging(spdlog::level::level_enum level) {
  std::lock_guard lock(registryMutex());
  currentLevel() = level;
  sharedSink()->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "%Y-%m-%dT%H:%M:%S.%eZ %l %n: %v", spdlog::pattern_time_type::utc));
  spdlog::apply_all([level](const std::shared_ptr<spdlog::logger>& l) { l->set_level(level); });
}

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  std::lock_guard lock(registryMutex());
  if (auto existing = spdlog::get(component)) {
    return existing;
  }
  auto created = std::make_shared<spdlog::logger>(component, sharedSink());
  created->set_level(currentLevel());
  created->flush_on(spdlog::level::warn);
  spdlog::register_logger(created);
  return created;
}

std::string redactUrl(std::string_view url) {
  std::string out(url);
  const auto scheme = out.find("://");
  const auto start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto slash = out.find('/', start);
  const auto at = out.rfind('@', slash == std::string::npos ? out.size() : slash);
  if (at != std::string::npos && at >= start) {
    out.replace(start, at - start, "redacted");
  }
  const auto query = out.find('?');
  if (query != std::string::npos) {
    out.erase(query);
  }
  return out;
}

} // namespace common
