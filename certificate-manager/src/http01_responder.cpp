#include "http01_responder.hpp"

#include "common/atomic_file.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <system_error>

namespace certmgr {
namespace {

constexpr std::string_view kPrefix = "/.well-known/acme-challenge/";

void reply(Poco::Net::HTTPServerResponse& response, Poco::Net::HTTPResponse::HTTPStatus status,
           const std::string& body) {
  response.setStatus(status);
  response.setContentType("text/plain");
  response.setContentLength64(static_cast<Poco::Int64>(body.size()));
  response.send() << body;
}

class ChallengeHandler : public Poco::Net::HTTPRequestHandler {
public:
  explicit ChallengeHandler(const Http01Responder& responder) : responder_(responder) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    // Poco answers only Poco::Exception with a 500; anything else would drop the connection.
    try {
      const std::string& uri = request.getURI();
      const std::string path = uri.substr(0, uri.find('?'));
      std::optional<std::string> answer;
      if (path.rfind(kPrefix, 0) == 0 && request.getMethod() == "GET") {
        answer = responder_.answer(path.substr(kPrefix.size()));
      }
      common::logger("http01")->info("http-01 request: path={} remote={} answered={}", path,
                                     request.clientAddress().toString(), answer.has_value());
      if (answer) {
        reply(response, Poco::Net::HTTPResponse::HTTP_OK, *answer);
      } else {
        reply(response, Poco::Net::HTTPResponse::HTTP_NOT_FOUND, "not found\n");
      }
    } catch (...) {
      if (!response.sent()) {
        try {
          reply(response, Poco::Net::HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, "error\n");
        } catch (...) {
        }
      }
    }
  }

private:
  const Http01Responder& responder_;
};

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
public:
  explicit HandlerFactory(const Http01Responder& responder) : responder_(responder) {}
  Poco::Net::HTTPRequestHandler*
  createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new ChallengeHandler(responder_);
  }

private:
  const Http01Responder& responder_;
};

Poco::Net::ServerSocket bindListener(const std::string& addr) {
  const auto colon = addr.rfind(':');
  std::string host = addr.substr(0, colon);
  const std::string port = addr.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  Poco::Net::ServerSocket socket;
  if (host.empty()) {
    // Every address, IPv4 and IPv6, where the host has IPv6; else IPv4 only.
    try {
      socket.bind6(Poco::Net::SocketAddress("::", port), true, false, false);
    } catch (const Poco::Exception&) {
      socket = Poco::Net::ServerSocket();
      socket.bind(Poco::Net::SocketAddress("0.0.0.0", port), true, false);
    }
  } else {
    socket.bind(Poco::Net::SocketAddress(host, port), true, false);
  }
  socket.listen(64);
  return socket;
}

} // namespace

Http01Responder::Http01Responder(std::string addr, std::filesystem::path webroot)
    : addr_(std::move(addr)), webroot_(std::move(webroot)) {}

Http01Responder::~Http01Responder() {
  stopListening();
}

std::optional<std::string> Http01Responder::answer(const std::string& token) const {
  std::lock_guard lock(mutex_);
  const auto it = answers_.find(token);
  if (it == answers_.end()) {
    return std::nullopt;
  }
  return it->second;
}

void Http01Responder::present(const std::vector<ChallengeTask>& tasks) {
  {
    std::lock_guard lock(mutex_);
    for (const auto& task : tasks) {
      answers_[task.token] = task.key_authorization;
    }
  }
  if (!webroot_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(webroot_, ec);
    for (const auto& task : tasks) {
      // Tokens are base64url (RFC 8555 §8.3), so they are safe file names; check anyway.
      if (task.token.find_first_of("/.") != std::string::npos || task.token.empty()) {
        throw common::UnavailableError("refusing http-01 token that is not base64url: token=" +
                                       task.token);
      }
      common::writeFileAtomically(webroot_ / task.token, task.key_authorization, 0644);
    }
  }
  if (!addr_.empty() && !server_) {
    startListening();
  }
}

void Http01Responder::cleanup(const std::vector<ChallengeTask>& tasks) noexcept {
  {
    std::lock_guard lock(mutex_);
    for (const auto& task : tasks) {
      answers_.erase(task.token);
    }
  }
  if (!webroot_.empty()) {
    for (const auto& task : tasks) {
      std::error_code ec;
      std::filesystem::remove(webroot_ / task.token, ec);
    }
  }
  bool idle;
  {
    std::lock_guard lock(mutex_);
    idle = answers_.empty();
  }
  if (idle) {
    stopListening();
  }
}

void Http01Responder::startListening() {
  try {
    auto socket = bindListener(addr_);
    bound_port_ = socket.address().port();
    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(4);
    params->setMaxQueued(32);
    params->setKeepAlive(false);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(*this), socket, params);
    server_->start();
    common::logger("http01")->info("http-01 responder listening: addr={} port={}", addr_,
                                   bound_port_);
  } catch (const Poco::Exception& e) {
    server_.reset();
    throw common::UnavailableError("cannot listen for http-01 challenges on " + addr_ + ": " +
                                   e.displayText() +
                                   " (is port 80 taken? set CERTMGR_HTTP01_WEBROOT and let the "
                                   "proxy serve the challenge files)");
  }
}

void Http01Responder::stopListening() noexcept {
  if (!server_) {
    return;
  }
  try {
    server_->stopAll(true);
  } catch (...) {
  }
  server_.reset();
  bound_port_ = 0;
  common::logger("http01")->info("http-01 responder stopped: addr={}", addr_);
}

} // namespace certmgr
