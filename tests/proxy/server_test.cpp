#include "api_harness.hpp"
#include "common/http_client.hpp"
#include "server.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using testsupport::Harness;

namespace {

// The proxy's HTTP server on 127.0.0.1, a kernel-chosen port, in front of a Harness.
struct ServedHarness {
  ServedHarness() {
    h.config.listen = {"127.0.0.1:0"};
    server = std::make_unique<proxy::Server>(h.config, *h.api);
    server->start();
    url = "http://127.0.0.1:" + std::to_string(server->ports().at(0));
  }
  ~ServedHarness() { server->stop(1s); }

  common::HttpResponse request(const std::string& method, const std::string& path,
                               const std::vector<std::string>& accept) {
    common::HttpRequest request;
    request.method = method;
    request.url = url + path;
    for (const auto& type : accept) {
      request.headers.emplace_back("Accept", type);
    }
    auto answer = client.perform(request);
    REQUIRE(answer.ok());
    return answer.value();
  }

  Harness h;
  std::unique_ptr<proxy::Server> server;
  std::string url;
  common::HttpClient client;
};

} // namespace

TEST_CASE("Server: after stop, new connections are refused", "[proxy][server]") {
  ServedHarness s;
  REQUIRE(s.request("GET", "/v2/", {}).status == 200);
  s.server->stop(1s);

  common::HttpRequest request;
  request.url = s.url + "/v2/";
  request.timeout = 3s;
  auto refused = s.client.perform(request);
  REQUIRE_FALSE(refused.ok());
  CHECK_FALSE(refused.error().timeout);
}
