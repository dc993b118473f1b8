#pragma once

#include "access.hpp"
#include "config.hpp"
#include "metrics.hpp"
#include "registry_api.hpp"
#include "tls.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace proxy {

/// A parsed listen address: empty host means every IPv4 and IPv6 address.
struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
};

/// Parses "host:port", "[v6]:port", ":port"; nothing when malformed.
std::optional<ListenAddress> parseListenAddress(const std::string& text);

/// Answers for paths outside /v2/ (health, later status and metrics); null means not handled.
using ExtraHandler = std::function<std::optional<ApiResponse>(const ApiRequest&)>;

/// The HTTP side: Poco's HTTPServer on each listen address (and the TLS address), a thread per
/// connection from one pool, blob bodies sent with sendfile(2) on plain sockets.
class Server {
public:
  /// `access` (client addresses) and `metrics` may be null.
  Server(const ProxyConfig& config, RegistryApi& api, ExtraHandler extra = nullptr,
         AccessControl* access = nullptr, Metrics* metrics = nullptr);
  ~Server();

  /// Binds and starts accepting. Throws common::SetupError naming the address on failure.
  void start();

  /// Stops accepting, then waits up to `grace` for requests in progress to finish.
  void stop(std::chrono::milliseconds grace);

  /// The bound ports, in the order of the configured addresses, then the TLS one.
  std::vector<std::uint16_t> ports() const;

  /// Re-reads the TLS certificate now if it changed (it is also checked every few seconds).
  void reloadCertificate();

  /// Requests being handled now.
  int activeRequests() const { return active_; }

private:
  void closeListeners();

  const ProxyConfig& config_;
  RegistryApi& api_;
  ExtraHandler extra_;
  AccessControl* access_;
  Metrics* metrics_;
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<TlsContextProvider> tls_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers_;
  std::vector<std::unique_ptr<Poco::Net::TCPServer>> servers_;
  // The listening sockets, closed at stop: a stopped Poco server leaves its socket open, and the
  // kernel would go on accepting connections nobody answers.
  std::vector<Poco::Net::ServerSocket> listeners_;
  std::atomic<int> active_{0};
};

} // namespace proxy
