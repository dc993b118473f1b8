#pragma once

// Captures what one component's logger writes, at debug level, for the life of the object, so
// a test can check a degraded mode is logged.

#include "common/logging.hpp"

#include <memory>
#include <spdlog/sinks/ostream_sink.h>
#include <sstream>
#include <string>
#include <vector>

namespace testsupport {

class LogCapture {
public:
  explicit LogCapture(const std::string& component)
      : logger_(common::logger(component)), level_(logger_->level()), saved_(logger_->sinks()) {
    logger_->sinks() = {std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_)};
    logger_->set_level(spdlog::level::debug);
  }
  ~LogCapture() {
    logger_->sinks() = saved_;
    logger_->set_level(level_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() {
    logger_->flush();
    return stream_.str();
  }

private:
  std::shared_ptr<spdlog::logger> logger_;
  spdlog::level::level_enum level_;
  std::vector<spdlog::sink_ptr> saved_;
  std::ostringstream stream_;
};

} // namespace testsupport
