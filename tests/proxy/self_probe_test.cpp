#include "self_probe.hpp"

#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <catch2/catch.hpp>
#include <test_http_server.hpp>

using testsupport::TestHttpServer;

TEST_CASE("healthUrl: the first plain listener, probed on loopback", "[proxy][probe]") {
  proxy::ProxyConfig config = proxy::defaultConfig();

  SECTION("baseline: :5000 is probed on 127.0.0.1") {
    CHECK(proxy::healthUrl(config) == "http://127.0.0.1:5000/healthz");
  }

  SECTION("a wildcard IPv6 listener is probed on ::1") {
    config.listen = {"[::]:5001"};
    CHECK(proxy::healthUrl(config) == "http://[::1]:5001/healthz");
  }

  SECTION("a listener on one address is probed there") {
    config.listen = {"192.168.1.5:5002", ":5003"};
    CHECK(proxy::healthUrl(config) == "http://192.168.1.5:5002/healthz");
  }

  SECTION("HTTPS only: the TLS listener") {
    config.listen.clear();
    config.tls.addr = ":5443";
    CHECK(proxy::healthUrl(config) == "https://127.0.0.1:5443/healthz");
  }
}

TEST_CASE("probeHealth: healthy only when /healthz answers 200", "[proxy][probe]") {
  TestHttpServer server;
  proxy::ProxyConfig config = proxy::defaultConfig();
  config.listen = {"127.0.0.1:" + std::to_string(server.port())};

  SECTION("200") {
    server.on("GET", "/healthz",
              [](const TestHttpServer::Request&, Poco::Net::HTTPServerResponse& response) {
                TestHttpServer::reply(response, 200, "ok\n");
              });
    const auto outcome = proxy::probeHealth(config);
    CHECK(outcome.healthy);
    CHECK(outcome.message.find("/healthz") != std::string::npos);
  }

  SECTION("503 is unhealthy, and the message says what answered") {
    server.on("GET", "/healthz",
              [](const TestHttpServer::Request&, Poco::Net::HTTPServerResponse& response) {
                TestHttpServer::reply(response, 503, "no\n");
              });
    const auto outcome = proxy::probeHealth(config);
    CHECK_FALSE(outcome.healthy);
    CHECK(outcome.message.find("503") != std::string::npos);
  }

  SECTION("nothing listening is unhealthy") {
    Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
    const auto free_port = probe.address().port();
    probe.close();
    config.listen = {"127.0.0.1:" + std::to_string(free_port)};
    CHECK_FALSE(proxy::probeHealth(config).healthy);
  }
}
