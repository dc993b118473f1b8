#pragma once

// A loopback HTTP server for tests: bind 127.0.0.1 port 0, answer with lambdas, and record every
// request so a test can count what reached it.

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace testsupport {

class TestHttpServer {
public:
  /// One request as the server received it.
  struct Request {
    std::string method;
    /// The path as sent, still percent-encoded, without the query.
    std::string path;
    /// The raw query without '?', empty when none.
    std::string query;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    /// "127.0.0.1:54321": the client's end of the connection, to tell connections apart.
    std::string client_address;

    /// The first value of a header, name compared case-insensitively.
    std::optional<std::string> header(std::string_view name) const {
      for (const auto& [key, value] : headers) {
        if (equalsIgnoreCase(key, name)) {
          return value;
        }
      }
      return std::nullopt;
    }
  };

  /// Answers one request. Exceptions are caught and answered with 500.
  using Handler = std::function<void(const Request&, Poco::Net::HTTPServerResponse&)>;

  TestHttpServer()
      : pool_(2, 32), socket_(Poco::Net::SocketAddress("127.0.0.1", 0)),
        server_(new Factory(*this), pool_, socket_, makeParams()) {
    server_.start();
  }

  ~TestHttpServer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    // Poco's acceptor notices a stop only when its 250 ms poll ends; a connection ends it at
    // once, which keeps a suite of many short tests fast.
    std::atomic<bool> stopped{false};
    std::thread waker([this, &stopped] {
      while (!stopped) {
        try {
          Poco::Net::StreamSocket knock;
          knock.connect(socket_.address(), Poco::Timespan(0, 100'000));
        } catch (...) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    server_.stopAll(true);
    stopped = true;
    waker.join();
    pool_.joinAll();
  }

  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  std::uint16_t port() const { return socket_.address().port(); }

  /// "http://127.0.0.1:<port>".
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  /// Answers `method` ("*" for any) on exactly `path`. A later registration wins over an
  /// earlier one for the same request.
  void on(std::string method, std::string path, Handler handler) {
    std::lock_guard lock(mutex_);
    routes_.push_back({std::move(method), std::move(path), false, std::move(handler)});
  }

  /// Answers `method` ("*" for any) on every path starting with `prefix`.
  void onPrefix(std::string method, std::string prefix, Handler handler) {
    std::lock_guard lock(mutex_);
    routes_.push_back({std::move(method), std::move(prefix), true, std::move(handler)});
  }

  /// Every request so far, in arrival order (unanswered ones included).
  std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  /// How many requests had this method ("*" for any) and exactly this path.
  size_t count(std::string_view method, std::string_view path) const {
    std::lock_guard lock(mutex_);
    return static_cast<size_t>(
        std::count_if(requests_.begin(), requests_.end(), [&](const Request& r) {
          return (method == "*" || r.method == method) && r.path == path;
        }));
  }

  void clearRequests() {
    std::lock_guard lock(mutex_);
    requests_.clear();
  }

  /// Sleeps in a handler (to make a slow or stalled upstream); returns early, with false, when
  /// the server is being destroyed, so no test waits for a sleeping handler.
  bool sleepFor(std::chrono::milliseconds duration) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, duration, [this] { return stopping_; });
  }

  /// Sends a whole answer: status, headers, then the body with its Content-Length.
  static void reply(Poco::Net::HTTPServerResponse& response, int status, std::string_view body = {},
                    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    for (const auto& [name, value] : headers) {
      response.add(name, value);
    }
    response.setContentLength64(static_cast<Poco::Int64>(body.size()));
    auto& out = response.send();
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    out.flush();
  }

private:
  struct Route {
    std::string method;
    std::string path;
    bool prefix = false;
    Handler handler;
  };

  static bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  }

  static Poco::Net::HTTPServerParams::Ptr makeParams() {
    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
    params->setKeepAlive(true);
    params->setMaxThreads(32);
    params->setMaxQueued(64);
    params->setTimeout(Poco::Timespan(10, 0));
    return params;
  }

  class Dispatch : public Poco::Net::HTTPRequestHandler {
  public:
    explicit Dispatch(TestHttpServer& server) : server_(server) {}

    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override {
      // Poco turns only Poco::Exception into a 500; anything else would drop the connection.
      try {
        server_.serve(request, response);
      } catch (...) {
        if (!response.sent()) {
          try {
            reply(response, 500, "test handler failed\n");
          } catch (...) {
          }
        }
      }
    }

  private:
    TestHttpServer& server_;
  };

  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
  public:
    explicit Factory(TestHttpServer& server) : server_(server) {}
    Poco::Net::HTTPRequestHandler*
    createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
      return new Dispatch(server_);
    }

  private:
    TestHttpServer& server_;
  };

  void serve(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) {
    Request recorded;
    recorded.method = request.getMethod();
    const std::string& uri = request.getURI();
    const auto question = uri.find('?');
    recorded.path = uri.substr(0, question);
    recorded.query = question == std::string::npos ? "" : uri.substr(question + 1);
    for (const auto& [name, value] : request) {
      recorded.headers.emplace_back(name, value);
    }
    Poco::StreamCopier::copyToString(request.stream(), recorded.body);
    recorded.client_address = request.clientAddress().toString();

    Handler handler;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(recorded);
      for (auto it = routes_.rbegin(); it != routes_.rend(); ++it) {
        const bool method_matches = it->method == "*" || it->method == recorded.method;
        const bool path_matches =
            it->prefix ? recorded.path.rfind(it->path, 0) == 0 : recorded.path == it->path;
        if (method_matches && path_matches) {
          handler = it->handler;
          break;
        }
      }
    }
    if (!handler) {
      reply(response, 404, R"({"errors":[{"code":"NOT_FOUND","message":"no test route"}]})",
            {{"Content-Type", "application/json"}});
      return;
    }
    handler(recorded, response);
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<Route> routes_;
  std::vector<Request> requests_;
  // Declared in this order so the server stops before the socket and the pool go.
  Poco::ThreadPool pool_;
  Poco::Net::ServerSocket socket_;
  Poco::Net::HTTPServer server_;
};

} // namespace testsupport
