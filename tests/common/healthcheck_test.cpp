#include "common/healthcheck.hpp"
#include "common/logging.hpp"
#include "test_http_server.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <thread>

using testsupport::TestHttpServer;
using namespace std::chrono_literals;

namespace {

// Records the delays instead of sleeping, so retry tests take no time.
struct RecordedSleeps {
  std::shared_ptr<std::vector<std::chrono::milliseconds>> delays =
      std::make_shared<std::vector<std::chrono::milliseconds>>();

  common::HealthcheckOptions options() const {
    common::HealthcheckOptions o;
    o.timeout = 2s;
    auto recorded = delays;
    o.sleep = [recorded](std::chrono::milliseconds d) { recorded->push_back(d); };
    return o;
  }
};

std::string queryValue(const std::string& query, const std::string& key) {
  const auto at = query.find(key + "=");
  if (at == std::string::npos) {
    return "";
  }
  const auto end = query.find('&', at);
  return query.substr(at + key.size() + 1,
                      end == std::string::npos ? std::string::npos : end - at - key.size() - 1);
}

} // namespace

TEST_CASE("HealthcheckPinger: start, success and fail in order with a paired run id",
          "[common][healthcheck]") {
  TestHttpServer server;
  server.onPrefix("*", "/ping/",
                  [](const auto&, auto& response) { TestHttpServer::reply(response, 200, "OK"); });
  RecordedSleeps sleeps;
  common::HealthcheckPinger pinger(server.url() + "/ping/abc-uuid", sleeps.options());

  pinger.start();
  pinger.success("all good\n");
  REQUIRE(pinger.flush(10s));
  const std::string first_rid = pinger.runId();
  pinger.start();
  pinger.fail("line 1\nrenewal failed: err=boom\n");
  REQUIRE(pinger.flush(10s));

  const auto requests = server.requests();
  REQUIRE(requests.size() == 4);
  CHECK(requests[0].path == "/ping/abc-uuid/start");
  CHECK(requests[1].path == "/ping/abc-uuid");
  CHECK(requests[2].path == "/ping/abc-uuid/start");
  CHECK(requests[3].path == "/ping/abc-uuid/fail");
  CHECK(requests[3].method == "POST");
  CHECK(requests[3].body == "line 1\nrenewal failed: err=boom\n");

  CHECK(queryValue(requests[0].query, "rid") == first_rid);
  CHECK(queryValue(requests[1].query, "rid") == first_rid);
  CHECK(queryValue(requests[2].query, "rid") == queryValue(requests[3].query, "rid"));
  CHECK(queryValue(requests[2].query, "rid") != first_rid);
  CHECK(first_rid.size() == 36);
  CHECK(sleeps.delays->empty());
}

TEST_CASE("HealthcheckPinger: retries with growing delays on 5xx, 429 and 408",
          "[common][healthcheck]") {
  TestHttpServer server;
  auto answers = std::make_shared<std::atomic<int>>(0);
  server.onPrefix("*", "/ping/", [answers](const auto&, auto& response) {
    const int n = (*answers)++;
    const int status = n == 0 ? 503 : n == 1 ? 429 : n == 2 ? 408 : 200;
    TestHttpServer::reply(response, status, status == 200 ? "OK" : "busy");
  });
  RecordedSleeps sleeps;
  common::HealthcheckPinger pinger(server.url() + "/ping/x", sleeps.options());
  pinger.start();
  REQUIRE(pinger.flush(10s));
  CHECK(server.requests().size() == 4);
  CHECK(*sleeps.delays == std::vector<std::chrono::milliseconds>{1s, 2s, 4s});

  SECTION("a 404 is not retried") {
    server.onPrefix("*", "/ping/", [](const auto&, auto& response) {
      TestHttpServer::reply(response, 404, "not found");
    });
    server.clearRequests();
    pinger.success();
    REQUIRE(pinger.flush(10s));
    CHECK(server.requests().size() == 1);
  }
}

TEST_CASE("HealthcheckPinger: gives up after 5 retries and never throws", "[common][healthcheck]") {
  TestHttpServer server;
  server.onPrefix("*", "/ping/", [](const auto&, auto& response) {
    TestHttpServer::reply(response, 500, "down");
  });
  RecordedSleeps sleeps;
  common::HealthcheckPinger pinger(server.url() + "/ping/x", sleeps.options());
  pinger.fail("log");
  REQUIRE(pinger.flush(10s));
  CHECK(server.requests().size() == 6);
  CHECK(*sleeps.delays == std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s, 16s});
}

TEST_CASE("HealthcheckPinger: an unreachable URL does not block or fail the caller",
          "[common][healthcheck]") {
  int port;
  {
    TestHttpServer closed; // bound, then closed again: nothing listens on this port
    port = closed.port();
  }
  RecordedSleeps sleeps;
  common::HealthcheckPinger pinger("http://127.0.0.1:" + std::to_string(port) + "/x",
                                   sleeps.options());
  const auto before = std::chrono::steady_clock::now();
  pinger.start();
  pinger.fail("log");
  CHECK(std::chrono::steady_clock::now() - before < 1s);
  REQUIRE(pinger.flush(30s));
  // A refused connection is not retried: only timeouts and 408, 429, 5xx are.
  CHECK(sleeps.delays->empty());
}

TEST_CASE("HealthcheckPinger: a server that does not answer in time is retried",
          "[common][healthcheck]") {
  TestHttpServer server;
  auto calls = std::make_shared<std::atomic<int>>(0);
  server.onPrefix("*", "/ping/", [&server, calls](const auto&, auto& response) {
    if ((*calls)++ == 0) {
      server.sleepFor(2s);
    }
    TestHttpServer::reply(response, 200, "OK");
  });
  RecordedSleeps sleeps;
  auto options = sleeps.options();
  options.timeout = 300ms;
  common::HealthcheckPinger pinger(server.url() + "/ping/x", options);
  pinger.start();
  REQUIRE(pinger.flush(20s));
  CHECK(*sleeps.delays == std::vector<std::chrono::milliseconds>{1s});
  CHECK(server.requests().size() == 2);
}

TEST_CASE("HealthcheckPinger: destroying it abandons a ping the server never answers",
          "[common][healthcheck]") {
  TestHttpServer server;
  server.onPrefix("*", "/ping/", [&server](const auto&, auto& response) {
    server.sleepFor(60s); // a blackhole: the connection is accepted, no answer comes
    TestHttpServer::reply(response, 200, "OK");
  });
  RecordedSleeps sleeps;
  auto options = sleeps.options();
  options.timeout = 30s;
  auto pinger =
      std::make_unique<common::HealthcheckPinger>(server.url() + "/ping/x", std::move(options));
  pinger->start();
  pinger->success();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (server.requests().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(server.requests().size() == 1);
  CHECK_FALSE(pinger->flush(200ms));

  // Without the cancel, the destructor would wait for the attempt's 30 s timeout.
  const auto before = std::chrono::steady_clock::now();
  pinger.reset();
  CHECK(std::chrono::steady_clock::now() - before < 3s);
  CHECK(server.requests().size() == 1);
  CHECK(sleeps.delays->empty());
}

TEST_CASE("HealthcheckPinger: the body respects Ping-Body-Limit, keeping the tail",
          "[common][healthcheck]") {
  TestHttpServer server;
  server.onPrefix("*", "/ping/", [](const auto&, auto& response) {
    TestHttpServer::reply(response, 200, "OK", {{"Ping-Body-Limit", "10"}});
  });
  common::HealthcheckPinger pinger(server.url() + "/ping/x", RecordedSleeps().options());
  CHECK(pinger.bodyLimit() == 100 * 1024);
  pinger.start();
  REQUIRE(pinger.flush(10s));
  CHECK(pinger.bodyLimit() == 10);
  pinger.fail("0123456789abcdefghij");
  REQUIRE(pinger.flush(10s));
  CHECK(server.requests().back().body == "abcdefghij");
}

TEST_CASE("HealthcheckPinger: no URL, no pings", "[common][healthcheck]") {
  common::HealthcheckPinger pinger("");
  CHECK_FALSE(pinger.enabled());
  pinger.start();
  pinger.fail("x");
  CHECK(pinger.flush(0ms));
}

TEST_CASE("HealthcheckPinger: a query in the URL is kept", "[common][healthcheck]") {
  TestHttpServer server;
  server.onPrefix("*", "/ping/",
                  [](const auto&, auto& response) { TestHttpServer::reply(response, 201, "OK"); });
  common::HealthcheckPinger pinger(server.url() + "/ping/key/slug?create=1",
                                   RecordedSleeps().options());
  pinger.start();
  REQUIRE(pinger.flush(10s));
  const auto request = server.requests().at(0);
  CHECK(request.path == "/ping/key/slug/start");
  CHECK(request.query.rfind("create=1&rid=", 0) == 0);
}

TEST_CASE("LogTail: keeps the last lines within its capacity", "[common][healthcheck]") {
  auto tail = std::make_shared<common::LogTail>(120);
  auto log = std::make_shared<spdlog::logger>("tail-test", tail);
  for (int i = 0; i < 20; ++i) {
    log->info("line number {}", i);
  }
  const auto text = tail->text();
  CHECK(text.size() <= 120);
  CHECK(text.find("line number 19\n") != std::string::npos);
  CHECK(text.find("line number 0\n") == std::string::npos);
  CHECK(text.find("info tail-test: line number") != std::string::npos);
  tail->clear();
  CHECK(tail->text().empty());
}
