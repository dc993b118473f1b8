#pragma once

#include "challenge_solver.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace Poco::Net {
class HTTPServer;
}

namespace certmgr {

/// Answers HTTP-01 challenges (RFC 8555 §8.3) in one or both of two ways:
/// - listening on `addr` ("host:port", "[v6]:port", ":port") for the duration of an order and
///   answering GET /.well-known/acme-challenge/<token> itself;
/// - writing each key authorization as the file `<webroot>/<token>`, for a web server (the
///   proxy) that serves `webroot` under /.well-known/acme-challenge/ and owns port 80.
class Http01Responder : public ChallengeSolver {
public:
  Http01Responder(std::string addr, std::filesystem::path webroot);
  ~Http01Responder() override;

  std::string type() const override { return "http-01"; }
  void present(const std::vector<ChallengeTask>& tasks) override;
  void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override;

  /// The key authorization for `token`, if it is being presented.
  std::optional<std::string> answer(const std::string& token) const;
  /// The port the listener is bound to (0 when not listening); for tests that bind port 0.
  int boundPort() const { return bound_port_; }

private:
  void startListening();
  void stopListening() noexcept;

  std::string addr_;
  std::filesystem::path webroot_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> answers_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  int bound_port_ = 0;
};

} // namespace certmgr
