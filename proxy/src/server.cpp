#include "server.hpp"

#include "common/errors.hpp"
#include "common/logging.hpp"

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/ServerSocket.h>
#include <cerrno>
#include <charconv>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <thread>

namespace proxy {
namespace {

constexpr std::size_t kCopyBuffer = 256 * 1024;
constexpr int kClientWriteTimeoutMs = 60'000;

// Sends [offset, offset+length) of `fd` to a plain socket without copying through user space.
bool sendFileRange(int socket_fd, int fd, std::uint64_t offset, std::uint64_t length) {
  auto position = static_cast<off_t>(offset);
  while (length > 0) {
    const auto chunk = static_cast<size_t>(std::min<std::uint64_t>(length, 1u << 30));
    const ssize_t n = ::sendfile(socket_fd, fd, &position, chunk);
    if (n > 0) {
      length -= static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{socket_fd, POLLOUT, 0};
      if (::poll(&p, 1, kClientWriteTimeoutMs) > 0) {
        continue;
      }
    }
    return false;
  }
  return true;
}

// Writes all of `data` to the socket itself, bypassing the response stream; false when the
// client is gone or too slow (the stream's behaviour: no exception).
bool sendAll(Poco::Net::StreamSocket& socket, const char* data, std::size_t size) {
  try {
    while (size > 0) {
      const auto piece = static_cast<int>(std::min<std::size_t>(size, kCopyBuffer));
      const int n = socket.sendBytes(data, piece);
      if (n <= 0) {
        return false;
      }
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  } catch (const Poco::Exception&) {
    return false;
  }
}

// Copies through a buffer (TLS, or no file descriptor): to the socket in large writes when it is
// given, else into the response stream (chunked framing).
bool copyRange(BlobReadHandle& handle, std::ostream& out, Poco::Net::StreamSocket* socket,
               std::uint64_t offset, std::uint64_t length, std::vector<char>& buffer) {
  while (length > 0) {
    const auto want = static_cast<size_t>(std::min<std::uint64_t>(length, buffer.size()));
    const ssize_t n = handle.read(offset, buffer.data(), want);
    if (n <= 0) {
      return false;
    }
    if (socket) {
      if (!sendAll(*socket, buffer.data(), static_cast<std::size_t>(n))) {
        return false;
      }
    } else {
      out.write(buffer.data(), n);
      if (!out) {
        return false;
      }
    }
    offset += static_cast<std::uint64_t>(n);
    length -= static_cast<std::uint64_t>(n);
  }
  return true;
}

// "::ffff:10.0.0.5" from a dual-stack socket is the IPv4 client 10.0.0.5.
std::string peerAddress(Poco::Net::HTTPServerRequest& request) {
  auto host = request.clientAddress().host().toString();
  if (host.rfind("::ffff:", 0) == 0 && host.find('.') != std::string::npos) {
    host = host.substr(7);
  }
  return host;
}

struct Collaborators {
  RegistryApi& api;
  const ExtraHandler& extra;
  AccessControl* access;
  Metrics* metrics;
  std::atomic<int>& active;
};

class RequestHandler : public Poco::Net::HTTPRequestHandler {
public:
  explicit RequestHandler(const Collaborators& parts)
      : api_(parts.api), extra_(parts.extra), access_(parts.access), metrics_(parts.metrics),
        active_(parts.active) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    ++active_;
    const auto started = std::chrono::steady_clock::now();
    ApiResponse answer;
    std::uint64_t sent = 0;
    bool complete = false;
    try {
      ApiRequest api_request;
      api_request.method = request.getMethod();
      api_request.target = request.getURI();
      if (request.has("Accept")) {
        // Several Accept headers are one list (RFC 9110 section 5.3).
        std::string accept;
        for (auto it = request.find("Accept");
             it != request.end() && Poco::icompare(it->first, "Accept") == 0; ++it) {
          accept += (accept.empty() ? "" : ", ") + it->second;
        }
        api_request.accept = accept;
      }
      if (request.has("Range")) {
        api_request.range = request.get("Range");
      }
      if (request.has("Authorization")) {
        api_request.authorization = request.get("Authorization");
      }
      if (request.has("Origin")) {
        api_request.origin = request.get("Origin");
      }
      if (request.has("Host")) {
        api_request.host = request.get("Host");
      }
      const auto peer = peerAddress(request);
      std::optional<std::string> forwarded_for;
      if (request.has("X-Forwarded-For")) {
        forwarded_for = request.get("X-Forwarded-For");
      }
      api_request.client_address = access_ ? access_->clientAddress(peer, forwarded_for) : peer;

      std::optional<ApiResponse> extra;
      if (extra_ && api_request.target.rfind("/v2", 0) != 0) {
        extra = extra_(api_request);
      }
      answer = extra ? std::move(*extra) : api_.handle(api_request);
      complete = send(request, response, answer, sent);
    } catch (const std::exception& e) {
      // Poco drops the connection for anything but its own exceptions: answer here.
      common::logger("server")->error("request failed: method={} path={} err={}",
                                      request.getMethod(), request.getURI(), e.what());
      if (!response.sent()) {
        answer = RegistryApi::error(500, "UNKNOWN", "internal error");
        complete = send(request, response, answer, sent);
      }
    } catch (...) {
      common::logger("server")->error("request failed: method={} path={} err=unknown",
                                      request.getMethod(), request.getURI());
      if (!response.sent()) {
        answer = RegistryApi::error(500, "UNKNOWN", "internal error");
        complete = send(request, response, answer, sent);
      }
    }
    if (!complete) {
      abortConnection(request);
    }
    if (metrics_) {
      metrics_->recordRequest(answer.route, answer.status, answer.source, sent);
    }
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    common::logger("access")->debug(
        "request served: method={} path={} status={} bytes={} source={} code={} ms={}{}",
        request.getMethod(), request.getURI(), answer.status, sent, answer.source,
        answer.error_code.empty() ? "-" : answer.error_code, elapsed.count(),
        complete ? "" : " aborted=true");
    --active_;
  }

private:
  static void abortConnection(Poco::Net::HTTPServerRequest& request) {
    // The client must see a short body, never a complete one: close the connection.
    if (auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request)) {
      ::shutdown(impl->socket().impl()->sockfd(), SHUT_RDWR);
    }
  }

  bool send(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response,
            ApiResponse& answer, std::uint64_t& sent) {
    response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status));
    response.set("Docker-Distribution-API-Version", "registry/2.0");
    for (const auto& [name, value] : answer.headers) {
      response.set(name, value);
    }
    const bool head = request.getMethod() == "HEAD";
    const bool streamed = (answer.blob.has_value() || answer.stream) && !head;

    if (!streamed) {
      response.setContentLength64(
          static_cast<Poco::Int64>(answer.content_length.value_or(answer.body.size())));
      if (head) {
        response.send();
        return true;
      }
      response.sendBuffer(answer.body.data(), answer.body.size());
      sent = answer.body.size();
      return true;
    }

    if (answer.content_length) {
      response.setContentLength64(static_cast<Poco::Int64>(*answer.content_length));
    } else {
      response.setChunkedTransferEncoding(true);
    }
    std::ostream& out = response.send();
    if (answer.stream) {
      const bool ok = answer.stream([&](std::string_view data) {
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        sent += data.size();
        return static_cast<bool>(out);
      });
      out.flush();
      return ok && static_cast<bool>(out);
    }
    return sendBlob(request, out, *answer.blob, sent);
  }

  bool sendBlob(Poco::Net::HTTPServerRequest& request, std::ostream& out, BlobBody& body,
                std::uint64_t& sent) {
    BlobReadHandle& handle = body.download ? *body.download : *body.file;
    const auto fd = handle.fileDescriptor();
    int socket_fd = -1;
    Poco::Net::StreamSocket* socket = nullptr;
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request);
    // Chunked framing (unknown size) goes through the stream. A known size goes to the socket
    // itself: with sendfile(2) on plain sockets, and in large writes on TLS (and for a relay's
    // bytes in memory), where the stream's 4 KiB buffer would make every 4 KiB its own TLS record
    // and system call.
    if (impl && body.length) {
      socket = &impl->socket();
      if (fd && !impl->socket().secure()) {
        socket_fd = impl->socket().impl()->sockfd();
      }
    }
    out.flush();

    std::vector<char> buffer;
    std::uint64_t position = body.offset;
    // Without a length (a download of unknown size), until the download says it is complete.
    const std::uint64_t end = body.length ? body.offset + *body.length : UINT64_MAX;
    while (position < end) {
      std::uint64_t available = end;
      // A relayed download (the disk filled) keeps part of the body in memory only.
      bool in_file = true;
      if (body.download) {
        auto readable = body.download->waitReadable(position);
        if (!readable.ok()) {
          return false;
        }
        if (readable->end <= position) {
          break; // verified and fully sent
        }
        available = std::min(available, readable->end);
        in_file = readable->in_file;
      }
      const auto length = available - position;
      const bool zero_copy = socket_fd >= 0 && in_file;
      if (!zero_copy && buffer.empty()) {
        buffer.resize(kCopyBuffer);
      }
      const bool ok = zero_copy ? sendFileRange(socket_fd, *fd, position, length)
                                : copyRange(handle, out, socket, position, length, buffer);
      if (!ok) {
        return false;
      }
      position += length;
      sent += length;
    }
    out.flush();
    return static_cast<bool>(out);
  }

  RegistryApi& api_;
  const ExtraHandler& extra_;
  AccessControl* access_;
  Metrics* metrics_;
  std::atomic<int>& active_;
};

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
public:
  explicit HandlerFactory(const Collaborators& parts) : parts_(parts) {}

  Poco::Net::HTTPRequestHandler*
  createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new RequestHandler(parts_);
  }

  /// Ends idle keep-alive connections of every server (plain and TLS) that uses this factory.
  void closeIdleConnections() {
    const bool abort = true;
    serverStopped.notify(this, abort);
  }

private:
  Collaborators parts_;
};

Poco::Net::ServerSocket bindAddress(const std::string& text) {
  const auto address = parseListenAddress(text);
  if (!address) {
    throw common::ConfigError("http.addr: \"" + text +
                              "\" is not a listen address; expected host:port, [v6]:port or :port");
  }
  Poco::Net::ServerSocket socket;
  try {
    if (address->host.empty()) {
      try {
        // One dual-stack socket answers IPv4 and IPv6.
        socket.bind6(Poco::Net::SocketAddress(
                         Poco::Net::IPAddress::wildcard(Poco::Net::IPAddress::IPv6), address->port),
                     true, false, false);
      } catch (const Poco::Exception&) {
        socket = Poco::Net::ServerSocket();
        socket.bind(Poco::Net::SocketAddress(Poco::Net::IPAddress(), address->port), true);
      }
    } else {
      socket.bind(Poco::Net::SocketAddress(address->host, address->port), true);
    }
    socket.listen(256);
  } catch (const Poco::Exception& e) {
    throw common::SetupError("cannot listen on " + text + ": " + e.displayText());
  }
  return socket;
}

} // namespace

std::optional<ListenAddress> parseListenAddress(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    return std::nullopt;
  }
  std::string host = text.substr(0, colon);
  const auto port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return std::nullopt;
  }
  if (!host.empty() && host.front() == '[') {
    if (host.back() != ']') {
      return std::nullopt;
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return std::nullopt;
  }
  return ListenAddress{host, static_cast<std::uint16_t>(port)};
}

Server::Server(const ProxyConfig& config, RegistryApi& api, ExtraHandler extra,
               AccessControl* access, Metrics* metrics)
    : config_(config), api_(api), extra_(std::move(extra)), access_(access), metrics_(metrics) {}

Server::~Server() {
  for (auto& server : servers_) {
    server->stop();
  }
  closeListeners();
  if (handlers_) {
    static_cast<HandlerFactory*>(handlers_.get())->closeIdleConnections();
  }
}

void Server::reloadCertificate() {
  if (tls_) {
    tls_->refresh();
  }
}

void Server::start() {
  const int threads = std::max(4, config_.server_threads);
  pool_ = std::make_unique<Poco::ThreadPool>(2, threads + 4, 60);
  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(threads);
  params->setMaxQueued(512);
  params->setKeepAlive(true);
  params->setMaxKeepAliveRequests(0);
  params->setKeepAliveTimeout(Poco::Timespan(30, 0));
  params->setTimeout(Poco::Timespan(60, 0));
  params->setServerName("docker-cache-proxy");
  const Collaborators parts{api_, extra_, access_, metrics_, active_};
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers = new HandlerFactory(parts);
  handlers_ = handlers;

  for (const auto& address : config_.listen) {
    auto socket = bindAddress(address);
    listeners_.push_back(socket);
    auto server = std::make_unique<Poco::Net::HTTPServer>(handlers, *pool_, socket, params);
    server->start();
    common::logger("server")->info("listening: addr={} port={}", address,
                                   server->socket().address().port());
    servers_.push_back(std::move(server));
  }
  if (!config_.tls.addr.empty()) {
    Poco::Net::initializeSSL();
    tls_ = std::make_unique<TlsContextProvider>(config_.tls);
    auto socket = bindAddress(config_.tls.addr);
    listeners_.push_back(socket);
    auto server = std::make_unique<Poco::Net::TCPServer>(
        new TlsConnectionFactory(*tls_, params, handlers), *pool_, socket, params);
    server->start();
    common::logger("server")->info("listening: addr={} port={} tls=true", config_.tls.addr,
                                   server->socket().address().port());
    servers_.push_back(std::move(server));
  }
}

void Server::stop(std::chrono::milliseconds grace) {
  for (auto& server : servers_) {
    server->stop();
  }
  // New connections are refused from now on, not left waiting in the backlog.
  closeListeners();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (active_ > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (active_ > 0) {
    common::logger("server")->warn("shutdown grace over, dropping requests: active={}",
                                   active_.load());
  }
  // Idle keep-alive connections (plain and TLS) end now instead of at their timeout.
  if (handlers_) {
    static_cast<HandlerFactory*>(handlers_.get())->closeIdleConnections();
  }
}

void Server::closeListeners() {
  for (auto& listener : listeners_) {
    try {
      listener.close();
    } catch (const Poco::Exception& e) {
      common::logger("server")->warn("closing a listener failed: err={}", e.displayText());
    }
  }
  listeners_.clear();
}

std::vector<std::uint16_t> Server::ports() const {
  std::vector<std::uint16_t> out;
  for (const auto& server : servers_) {
    out.push_back(server->socket().address().port());
  }
  return out;
}

} // namespace proxy
