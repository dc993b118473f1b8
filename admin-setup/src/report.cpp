#include "report.hpp"

#include "common/logging.hpp"

#include <algorithm>

namespace admin {
namespace {

common::HealthcheckOptions pingOptions(std::string ca_bundle) {
  common::HealthcheckOptions options;
  options.ca_file = std::move(ca_bundle);
  return options;
}

} // namespace

const char* const kComponents[] = {"admin-setup", "wait",    "credentials", "warm-up",
                                   "verify",      "clients", "healthcheck", nullptr};

RunReport::RunReport(std::string url, std::string ca_bundle)
    : tail_(std::make_shared<common::LogTail>()),
      pinger_(std::move(url), pingOptions(std::move(ca_bundle))) {
  for (const char* const* name = kComponents; *name != nullptr; ++name) {
    auto& sinks = common::logger(*name)->sinks();
    if (std::find(sinks.begin(), sinks.end(), tail_) == sinks.end()) {
      sinks.push_back(tail_);
    }
  }
}

void RunReport::started() {
  tail_->clear();
  pinger_.start();
}

void RunReport::succeeded(const std::string& summary) {
  pinger_.success(summary);
}

void RunReport::failed() {
  pinger_.fail(tail_->text());
}

void RunReport::flush() {
  if (pinger_.enabled() && !pinger_.flush(std::chrono::seconds(30))) {
    common::logger("healthcheck")->warn("healthcheck pings still queued at exit");
  }
}

} // namespace admin
