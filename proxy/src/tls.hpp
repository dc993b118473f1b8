#pragma once

#include "config.hpp"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <chrono>
#include <mutex>
#include <string>
#include <sys/stat.h>

namespace proxy {

/// The server's TLS context, rebuilt when the certificate or key file changes on disk, so a
/// renewed certificate is used by the next connection while open ones carry on with theirs.
class TlsContextProvider {
public:
  explicit TlsContextProvider(TlsConfig config);

  /// The current context; null while no valid certificate and key pair has been read.
  Poco::Net::Context::Ptr current();

  /// Re-reads the files now if they changed; true when a context is available.
  bool refresh();

private:
  bool load();

  TlsConfig config_;
  std::mutex mutex_;
  Poco::Net::Context::Ptr context_;
  std::chrono::steady_clock::time_point checked_{};
  std::string fingerprint_;
};

/// Accepts plain TCP connections and hands each to Poco's HTTP connection after a TLS
/// handshake with the provider's current context.
class TlsConnectionFactory : public Poco::Net::TCPServerConnectionFactory {
public:
  TlsConnectionFactory(TlsContextProvider& provider, Poco::Net::HTTPServerParams::Ptr params,
                       Poco::Net::HTTPRequestHandlerFactory::Ptr handlers);

  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override;

private:
  TlsContextProvider& provider_;
  Poco::Net::HTTPServerParams::Ptr params_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers_;
};

/// A description of the certificate at `path` for logs: serial, not-after, or the error.
std::string describeCertificate(const std::string& path);

} // namespace proxy
