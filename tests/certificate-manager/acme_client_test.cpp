#include "acme_client.hpp"
#include "openssl_util.hpp"
#include "test_http_server.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <mutex>

using testsupport::TestHttpServer;
using namespace std::chrono_literals;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// An ACME server on loopback that answers the directory and nonces; each test adds the
// resources it polls. Every answer carries a fresh Replay-Nonce, as RFC 8555 §6.5 asks.
class AcmeServer {
public:
  AcmeServer() {
    const std::string base = server.url();
    server.on("GET", "/dir", [base](const auto&, auto& response) {
      TestHttpServer::reply(response, 200,
                            R"({"newNonce":")" + base + R"(/nonce","newAccount":")" + base +
                                R"(/acct","newOrder":")" + base + R"(/new-order"})",
                            {{"Content-Type", "application/json"}});
    });
    server.on("HEAD", "/nonce", [this](const auto&, auto& response) {
      TestHttpServer::reply(response, 200, "", {nonce()});
    });
  }

  std::pair<std::string, std::string> nonce() {
    return {"Replay-Nonce", "nonce-" + std::to_string(++nonces_)};
  }

  std::string order(const std::string& status) const {
    return R"({"status":")" + status +
           R"(","identifiers":[{"type":"dns","value":"a.example"}],"authorizations":[")" +
           server.url() + R"(/authz/1"],"finalize":")" + server.url() + R"(/finalize/1"})";
  }

  static std::string authorization(const std::string& status) {
    return R"({"status":")" + status +
           R"(","identifier":{"type":"dns","value":"a.example"},"challenges":[]})";
  }

  // Answers POSTs to `path` with `answers` in turn, the last one again for every later POST.
  void script(const std::string& path, std::vector<std::tuple<int, std::string, Headers>> answers) {
    auto shared = std::make_shared<decltype(answers)>(std::move(answers));
    auto next = std::make_shared<std::atomic<size_t>>(0);
    server.on("POST", path, [this, shared, next](const auto&, auto& response) {
      const size_t n = std::min((*next)++, shared->size() - 1);
      auto [status, body, headers] = (*shared)[n];
      headers.push_back(nonce());
      headers.emplace_back("Content-Type", "application/json");
      TestHttpServer::reply(response, status, body, headers);
    });
  }

private:
  std::atomic<int> nonces_{0};

public:
  // Declared last: it stops, with its handlers, before the counter above goes.
  TestHttpServer server;
};

// The injected sleep: records each delay instead of waiting.
struct RecordedSleeps {
  std::shared_ptr<std::vector<std::chrono::milliseconds>> delays =
      std::make_shared<std::vector<std::chrono::milliseconds>>();

  certmgr::AcmeClientOptions options(const std::string& directory_url) const {
    certmgr::AcmeClientOptions options;
    options.directory_url = directory_url;
    options.poll_interval = 250ms;
    options.max_retry_after = 60s;
    auto recorded = delays;
    options.sleep = [recorded](std::chrono::milliseconds d) { recorded->push_back(d); };
    return options;
  }
};

using Delays = std::vector<std::chrono::milliseconds>;

const std::string kBusy = R"({"type":"urn:ietf:params:acme:error:rateLimited","detail":"busy"})";

} // namespace

TEST_CASE("AcmeClient: a 503 with Retry-After is retried after that delay", "[certmgr][acme]") {
  AcmeServer acme;
  common::HttpClient http;
  certmgr::AccountKey key(certmgr::generateKey(certmgr::KeyType::EcP256));
  RecordedSleeps sleeps;
  certmgr::AcmeClient client(http, sleeps.options(acme.server.url() + "/dir"), key);
  const std::string order_url = acme.server.url() + "/order/1";
  const certmgr::Identifiers names{{"a.example"}, {}};

  SECTION("baseline: no 503, no wait") {
    acme.script("/new-order", {{201, acme.order("pending"), {{"Location", order_url}}}});
    CHECK(client.newOrder(names, std::nullopt).url == order_url);
    CHECK(acme.server.count("POST", "/new-order") == 1);
    CHECK(sleeps.delays->empty());
  }

  SECTION("busy once: one wait of Retry-After, then the same request again") {
    acme.script("/new-order", {{503, kBusy, {{"Retry-After", "7"}}},
                               {201, acme.order("pending"), {{"Location", order_url}}}});
    CHECK(client.newOrder(names, std::nullopt).url == order_url);
    CHECK(acme.server.count("POST", "/new-order") == 2);
    CHECK(*sleeps.delays == Delays{7s});
  }

  SECTION("busy every time: three waits, then the error names the Retry-After") {
    acme.script("/new-order", {{503, kBusy, {{"Retry-After", "2"}}}});
    CHECK_THROWS_WITH(client.newOrder(names, std::nullopt),
                      Catch::Contains("retry after 2") && Catch::Contains("busy"));
    CHECK(acme.server.count("POST", "/new-order") == 4);
    CHECK(*sleeps.delays == Delays{2s, 2s, 2s});
  }

  SECTION("a Retry-After beyond the longest honoured wait ends the attempt at once") {
    acme.script("/new-order", {{503, kBusy, {{"Retry-After", "3600"}}}});
    CHECK_THROWS_WITH(client.newOrder(names, std::nullopt), Catch::Contains("retry after 3600"));
    CHECK(acme.server.count("POST", "/new-order") == 1);
    CHECK(sleeps.delays->empty());
  }
}

TEST_CASE("AcmeClient: polling an order waits as long as Retry-After says", "[certmgr][acme]") {
  AcmeServer acme;
  common::HttpClient http;
  certmgr::AccountKey key(certmgr::generateKey(certmgr::KeyType::EcP256));
  RecordedSleeps sleeps;
  certmgr::AcmeClient client(http, sleeps.options(acme.server.url() + "/dir"), key);
  const auto deadline = std::chrono::steady_clock::now() + 1h;

  SECTION("baseline: without Retry-After the poll interval") {
    acme.script("/order/1", {{200, acme.order("processing"), {}}, {200, acme.order("valid"), {}}});
    CHECK(client.waitForOrder(acme.server.url() + "/order/1", {"processing"}, deadline).status ==
          "valid");
    CHECK(*sleeps.delays == Delays{250ms});
  }

  SECTION("Retry-After on each processing answer") {
    acme.script("/order/1", {{200, acme.order("processing"), {{"Retry-After", "3"}}},
                             {200, acme.order("processing"), {{"Retry-After", "5"}}},
                             {200, acme.order("valid"), {}}});
    CHECK(client.waitForOrder(acme.server.url() + "/order/1", {"processing"}, deadline).status ==
          "valid");
    CHECK(acme.server.count("POST", "/order/1") == 3);
    CHECK(*sleeps.delays == Delays{3s, 5s});
  }

  SECTION("a Retry-After beyond the longest honoured wait is cut to it") {
    acme.script("/order/1", {{200, acme.order("processing"), {{"Retry-After", "86400"}}},
                             {200, acme.order("valid"), {}}});
    CHECK(client.waitForOrder(acme.server.url() + "/order/1", {"processing"}, deadline).status ==
          "valid");
    CHECK(*sleeps.delays == Delays{60s});
  }

  SECTION("a Retry-After past the deadline ends the wait without sleeping") {
    acme.script("/order/1", {{200, acme.order("processing"), {{"Retry-After", "30"}}}});
    CHECK_THROWS_WITH(client.waitForOrder(acme.server.url() + "/order/1", {"processing"},
                                          std::chrono::steady_clock::now() + 10s),
                      Catch::Contains("still processing at the deadline"));
    CHECK(sleeps.delays->empty());
  }
}

TEST_CASE("AcmeClient: polling an authorization waits as long as Retry-After says",
          "[certmgr][acme]") {
  AcmeServer acme;
  common::HttpClient http;
  certmgr::AccountKey key(certmgr::generateKey(certmgr::KeyType::EcP256));
  RecordedSleeps sleeps;
  certmgr::AcmeClient client(http, sleeps.options(acme.server.url() + "/dir"), key);
  const auto deadline = std::chrono::steady_clock::now() + 1h;

  SECTION("baseline: without Retry-After the poll interval") {
    acme.script("/authz/1", {{200, AcmeServer::authorization("pending"), {}},
                             {200, AcmeServer::authorization("valid"), {}}});
    CHECK(client.waitForAuthorization(acme.server.url() + "/authz/1", deadline).status == "valid");
    CHECK(*sleeps.delays == Delays{250ms});
  }

  SECTION("Retry-After on each pending answer") {
    acme.script("/authz/1", {{200, AcmeServer::authorization("pending"), {{"Retry-After", "2"}}},
                             {200, AcmeServer::authorization("pending"), {{"Retry-After", "4"}}},
                             {200, AcmeServer::authorization("valid"), {}}});
    CHECK(client.waitForAuthorization(acme.server.url() + "/authz/1", deadline).status == "valid");
    CHECK(acme.server.count("POST", "/authz/1") == 3);
    CHECK(*sleeps.delays == Delays{2s, 4s});
  }

  SECTION("a 503 with Retry-After while polling: the busy wait, then the poll goes on") {
    acme.script("/authz/1", {{503, kBusy, {{"Retry-After", "9"}}},
                             {200, AcmeServer::authorization("pending"), {{"Retry-After", "1"}}},
                             {200, AcmeServer::authorization("invalid"), {}}});
    CHECK(client.waitForAuthorization(acme.server.url() + "/authz/1", deadline).status ==
          "invalid");
    CHECK(*sleeps.delays == Delays{9s, 1s});
  }
}
