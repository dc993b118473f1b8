#pragma once

#include "common/result.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace common {

/// Response headers, names compared case-insensitively, in the order received.
class HttpHeaders {
public:
  void add(std::string name, std::string value);
  /// The first value of `name`, if present.
  std::optional<std::string> get(std::string_view name) const;
  /// Every value of `name` (WWW-Authenticate may repeat).
  std::vector<std::string> getAll(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& all() const { return entries_; }
  void clear() { entries_.clear(); }

private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  /// The body, when the request had no `on_body` sink.
  std::string body;
};

struct HttpRequest;

/// Why a request got no HTTP answer (connect failure, timeout, TLS error, aborted by a sink).
struct HttpError {
  std::string message;
  bool timeout = false;
  bool aborted = false;
};

struct HttpRequest {
  std::string method = "GET";
  /// Absolute URL. Logged only through common::redactUrl.
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  /// The whole request; zero means no limit (large downloads use stall_timeout instead).
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
  /// Abort when no byte arrived for this long; zero means never.
  std::chrono::milliseconds stall_timeout{0};
  /// Largest body piece curl reads at once; zero means curl's default (16 KiB). Big streamed
  /// bodies want more: every piece is a callback, and for a blob a write and reader wake-ups.
  std::size_t receive_buffer = 0;
  bool follow_redirects = false;
  /// PEM bundle to verify the server with; empty: the system's trust store.
  std::string ca_file;
  bool verify_tls = true;
  /// Called once status and headers are in, before any body byte; false aborts.
  std::function<bool(const HttpResponse&)> on_headers;
  /// Receives the body piece by piece instead of HttpResponse::body; false aborts.
  std::function<bool(std::string_view)> on_body;
  /// When set, the transfer is aborted (HttpError::aborted) within about a second of another
  /// thread storing true here, also while waiting for a server that never answers.
  const std::atomic<bool>* cancel = nullptr;
};

/// An HTTP client on libcurl. Thread-safe; DNS answers and TLS sessions are shared across
/// threads, and connections are reused by later calls through a pool of easy handles.
class HttpClient {
public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Performs the request; an HTTP error status is a response, not an HttpError.
  Result<HttpResponse, HttpError> perform(const HttpRequest& request);

private:
  struct Impl;
  Impl* impl_;
};

} // namespace common
