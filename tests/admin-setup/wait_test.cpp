#include "common/errors.hpp"
#include "test_http_server.hpp"
#include "wait.hpp"

#include <catch2/catch.hpp>

using Catch::Matchers::Contains;

namespace {

// Time moves only when the code under test sleeps.
struct FakePacer {
  std::chrono::steady_clock::time_point now{};
  std::vector<std::chrono::milliseconds> sleeps;

  admin::Pacer pacer() {
    return admin::Pacer{[this] { return now; },
                        [this](std::chrono::milliseconds d) {
                          sleeps.push_back(d);
                          now += d;
                        }};
  }
};

} // namespace

TEST_CASE("pollUntil: tries until done, or gives the last reason at the limit", "[admin][wait]") {
  FakePacer fake;
  int tries = 0;

  SECTION("done on the third try") {
    const auto result = admin::pollUntil(fake.pacer(), std::chrono::seconds(60), "x", [&] {
      return ++tries < 3 ? std::optional<std::string>("not yet " + std::to_string(tries))
                         : std::nullopt;
    });
    CHECK_FALSE(result);
    CHECK(tries == 3);
    CHECK(fake.sleeps.size() == 2);
  }
  SECTION("never done: the last reason, after the limit and not much later") {
    const auto result = admin::pollUntil(fake.pacer(), std::chrono::seconds(20), "x", [&] {
      ++tries;
      return std::optional<std::string>("still " + std::to_string(tries));
    });
    REQUIRE(result);
    CHECK(*result == "still " + std::to_string(tries));
    CHECK(fake.now - std::chrono::steady_clock::time_point{} == std::chrono::seconds(20));
    for (const auto& d : fake.sleeps) {
      CHECK(d <= std::chrono::seconds(5));
    }
  }
}

TEST_CASE("waitForProxy: waits for /readyz, then fails with a clear message", "[admin][wait]") {
  testsupport::TestHttpServer proxy;
  std::atomic<int> readyz_calls{0};
  proxy.on("GET", "/readyz", [&](const auto&, auto& response) {
    if (++readyz_calls < 3) {
      testsupport::TestHttpServer::reply(response, 503, "storage is read-only\n");
      return;
    }
    testsupport::TestHttpServer::reply(response, 200, "ok\n");
  });
  common::HttpClient http;
  admin::Config config;
  config.proxy_url = proxy.url();
  config.tls_url.clear();
  config.wait_timeout = std::chrono::seconds(30);
  FakePacer fake;

  SECTION("ready on the third answer") {
    admin::waitForProxy(http, config, fake.pacer());
    CHECK(readyz_calls == 3);
  }
  SECTION("never ready within the limit: 75 and the last answer in the message") {
    config.wait_timeout = std::chrono::seconds(1);
    try {
      admin::waitForProxy(http, config, fake.pacer());
      FAIL("no error");
    } catch (const common::Error& e) {
      CHECK(e.exitCode() == common::kExitTempFail);
      CHECK_THAT(e.what(), Contains("proxy not ready after 1s") && Contains("/readyz") &&
                               Contains("503") && Contains("storage is read-only"));
    }
  }
  SECTION("TLS on but nothing listens: fails naming the HTTPS URL") {
    config.tls_url = "https://127.0.0.1:1";
    try {
      admin::waitForProxy(http, config, fake.pacer());
      FAIL("no error");
    } catch (const common::Error& e) {
      CHECK(e.exitCode() == common::kExitTempFail);
      CHECK_THAT(e.what(), Contains("https://127.0.0.1:1/v2/"));
    }
  }
}
