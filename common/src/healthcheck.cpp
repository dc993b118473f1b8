#include "common/healthcheck.hpp"

#include "common/logging.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <spdlog/pattern_formatter.h>

namespace common {
namespace {

// The check's URL is a credential (anyone who has it can ping): logs show the host only.
std::string hostOf(const std::string& url) {
  const auto scheme = url.find("://");
  const auto start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto end = url.find_first_of("/?#", start);
  auto host = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  const auto at = host.rfind('@');
  return at == std::string::npos ? host : host.substr(at + 1);
}

// "<base><suffix>?<query>&rid=<id>", keeping a query the user put in the URL (?create=1).
std::string pingUrl(const std::string& base, const std::string& suffix, const std::string& rid) {
  const auto query = base.find('?');
  std::string path = base.substr(0, query);
  while (!path.empty() && path.back() == '/') {
    path.pop_back();
  }
  std::string url = path + suffix;
  if (query != std::string::npos) {
    url += base.substr(query) + "&rid=" + rid;
  } else {
    url += "?rid=" + rid;
  }
  return url;
}

bool retryable(int status) {
  return status == 408 || status == 429 || status >= 500;
}

} // namespace

LogTail::LogTail(std::size_t capacity) : capacity_(capacity) {
  set_formatter(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ %l %n: %v",
                                                            spdlog::pattern_time_type::utc));
}

std::string LogTail::text() const {
  std::lock_guard lock(buffer_mutex_);
  return buffer_;
}

void LogTail::clear() {
  std::lock_guard lock(buffer_mutex_);
  buffer_.clear();
}

void LogTail::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t formatted;
  formatter_->format(msg, formatted);
  std::lock_guard lock(buffer_mutex_);
  buffer_.append(formatted.data(), formatted.size());
  if (buffer_.size() > capacity_) {
    // Drop whole lines from the front: the end of the run explains the failure.
    auto cut = buffer_.size() - capacity_;
    const auto newline = buffer_.find('\n', cut);
    cut = newline == std::string::npos ? cut : newline + 1;
    buffer_.erase(0, cut);
  }
}

std::string randomUuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::uint64_t high = rng();
  const std::uint64_t low = rng();
  unsigned char b[16];
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<unsigned char>(high >> (56 - 8 * i));
    b[8 + i] = static_cast<unsigned char>(low >> (56 - 8 * i));
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40); // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80); // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

HealthcheckPinger::HealthcheckPinger(std::string url, HealthcheckOptions options)
    : url_(std::move(url)), options_(std::move(options)) {
  if (!enabled()) {
    return;
  }
  if (!options_.sleep) {
    options_.sleep = [this](std::chrono::milliseconds delay) {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, delay, [this] { return stopping_; });
    };
  }
  try {
    client_ = std::make_unique<HttpClient>();
    worker_ = std::thread([this] { work(); });
  } catch (const std::exception& e) {
    logger("healthcheck")->warn("healthcheck pings disabled: err={}", e.what());
    url_.clear();
  }
}

HealthcheckPinger::~HealthcheckPinger() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cancel_ = true;
  changed_.notify_all();
  if (worker_.joinable()) {
    worker_.join();
  }
  if (!queue_.empty()) {
    logger("healthcheck")
        ->warn("healthcheck pings dropped at exit: count={} host={}", queue_.size(), hostOf(url_));
  }
}

void HealthcheckPinger::start() {
  if (!enabled()) {
    return;
  }
  {
    std::lock_guard lock(mutex_);
    run_id_ = randomUuid();
  }
  enqueue("/start", {});
}

void HealthcheckPinger::success(std::string_view log) {
  enqueue("", log);
}

void HealthcheckPinger::fail(std::string_view log) {
  enqueue("/fail", log);
}

bool HealthcheckPinger::flush(std::chrono::milliseconds limit) {
  if (!enabled()) {
    return true;
  }
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, limit, [this] { return queue_.empty() && !busy_; });
}

std::size_t HealthcheckPinger::bodyLimit() const {
  std::lock_guard lock(mutex_);
  return body_limit_;
}

std::string HealthcheckPinger::runId() const {
  std::lock_guard lock(mutex_);
  return run_id_;
}

void HealthcheckPinger::enqueue(std::string suffix, std::string_view body) {
  if (!enabled()) {
    return;
  }
  try {
    {
      std::lock_guard lock(mutex_);
      if (run_id_.empty()) {
        run_id_ = randomUuid();
      }
      queue_.push_back(Ping{std::move(suffix), run_id_, std::string(body)});
    }
    changed_.notify_all();
  } catch (const std::exception& e) {
    logger("healthcheck")->warn("healthcheck ping dropped: err={}", e.what());
  }
}

void HealthcheckPinger::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      return;
    }
    Ping ping = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    try {
      send(ping);
    } catch (const std::exception& e) {
      logger("healthcheck")->warn("healthcheck ping failed: kind={} err={}", ping.suffix, e.what());
    }
    lock.lock();
    busy_ = false;
    changed_.notify_all();
  }
}

bool HealthcheckPinger::send(const Ping& ping) {
  auto log = logger("healthcheck");
  const std::string kind = ping.suffix.empty() ? "success" : ping.suffix.substr(1);

  HttpRequest request;
  request.method = "POST";
  request.url = pingUrl(url_, ping.suffix, ping.run_id);
  request.timeout = options_.timeout;
  request.connect_timeout = options_.timeout;
  request.ca_file = options_.ca_file;
  request.cancel = &cancel_;
  request.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  const std::size_t limit = bodyLimit();
  request.body = ping.body.size() > limit ? ping.body.substr(ping.body.size() - limit) : ping.body;

  auto delay = options_.first_retry_delay;
  for (int attempt = 0;; ++attempt) {
    const auto result = client_->perform(request);
    std::string problem;
    if (result.ok()) {
      if (const auto announced = result->headers.get("Ping-Body-Limit")) {
        try {
          std::lock_guard lock(mutex_);
          body_limit_ = static_cast<std::size_t>(std::stoull(*announced));
        } catch (const std::exception&) {
          log->debug("ignoring malformed ping-body-limit: value={}", *announced);
        }
      }
      if (result->status >= 200 && result->status < 300) {
        log->debug("healthcheck ping sent: kind={} host={} status={}", kind, hostOf(url_),
                   result->status);
        return true;
      }
      if (!retryable(result->status)) {
        log->warn("healthcheck ping refused: kind={} host={} status={}", kind, hostOf(url_),
                  result->status);
        return false;
      }
      problem = "status " + std::to_string(result->status);
    } else if (result.error().aborted) {
      log->warn("healthcheck ping abandoned at exit: kind={} host={}", kind, hostOf(url_));
      return false;
    } else if (result.error().timeout) {
      problem = result.error().message;
    } else {
      // Refused, unresolvable, bad TLS: retrying soon will not change that (healthchecks.io
      // recommends retries on timeouts and on 408, 429 and 5xx answers only).
      log->warn("healthcheck ping failed: kind={} host={} err={}", kind, hostOf(url_),
                result.error().message);
      return false;
    }

    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        return false;
      }
    }
    if (attempt >= options_.max_retries) {
      log->warn("healthcheck ping given up: kind={} host={} attempts={} err={}", kind, hostOf(url_),
                attempt + 1, problem);
      return false;
    }
    log->debug("healthcheck ping failed, retrying: kind={} host={} delay_ms={} err={}", kind,
               hostOf(url_), delay.count(), problem);
    options_.sleep(delay);
    delay *= 2;
  }
}

} // namespace common
