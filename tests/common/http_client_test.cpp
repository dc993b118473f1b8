#include "common/http_client.hpp"
#include "test_http_server.hpp"

#include <Poco/Net/ServerSocket.h>
#include <atomic>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;
using testsupport::TestHttpServer;

namespace {

// A port nothing listens on: bound once, then released.
std::uint16_t closedPort() {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  const auto port = socket.address().port();
  socket.close();
  return port;
}

// Sends `pieces` chunks of `piece_size` bytes, flushing after each so they arrive apart.
void sendInPieces(Poco::Net::HTTPServerResponse& response, int pieces, size_t piece_size) {
  response.setContentLength64(static_cast<Poco::Int64>(pieces * piece_size));
  auto& out = response.send();
  const std::string piece(piece_size, 'x');
  for (int i = 0; i < pieces; ++i) {
    out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
    out.flush();
  }
}

} // namespace

TEST_CASE("HttpHeaders: names compare case-insensitively and repeats are kept", "[common][http]") {
  common::HttpHeaders headers;
  headers.add("WWW-Authenticate", "Basic realm=\"a\"");
  headers.add("Content-Type", "text/plain");
  headers.add("www-authenticate", "Bearer realm=\"b\"");

  CHECK(headers.get("content-type") == "text/plain");
  CHECK(headers.get("Www-Authenticate") == "Basic realm=\"a\"");
  CHECK(headers.getAll("WWW-AUTHENTICATE") ==
        std::vector<std::string>{"Basic realm=\"a\"", "Bearer realm=\"b\""});
  CHECK_FALSE(headers.get("content-length"));
  CHECK(headers.getAll("content-length").empty());
}

TEST_CASE("HttpClient: a GET returns status, headers and body", "[common][http]") {
  TestHttpServer server;
  server.on("GET", "/hello", [](const auto&, auto& response) {
    TestHttpServer::reply(response, 200, "hello world", {{"X-Answer", "42"}});
  });
  common::HttpClient client;

  common::HttpRequest request;
  request.url = server.url() + "/hello?a=1";
  request.headers = {{"Accept", "text/plain"}, {"X-Custom", "yes"}};
  const auto result = client.perform(request);

  REQUIRE(result.ok());
  CHECK(result->status == 200);
  CHECK(result->body == "hello world");
  CHECK(result->headers.get("x-answer") == "42");
  CHECK(result->headers.get("CONTENT-LENGTH") == "11");
  const auto seen = server.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].query == "a=1");
  CHECK(seen[0].header("x-custom") == "yes");
  CHECK(seen[0].header("accept") == "text/plain");

  SECTION("an error status is a response, not an error") {
    request.url = server.url() + "/missing";
    const auto missing = client.perform(request);
    REQUIRE(missing.ok());
    CHECK(missing->status == 404);
    CHECK(missing->body.find("NOT_FOUND") != std::string::npos);
  }
}

TEST_CASE("HttpClient: HEAD returns headers and no body", "[common][http]") {
  TestHttpServer server;
  server.on("HEAD", "/thing", [](const auto&, auto& response) {
    TestHttpServer::reply(response, 200, "12345", {{"Docker-Content-Digest", "sha256:abc"}});
  });
  common::HttpClient client;

  common::HttpRequest request;
  request.method = "HEAD";
  request.url = server.url() + "/thing";
  const auto result = client.perform(request);

  REQUIRE(result.ok());
  CHECK(result->status == 200);
  CHECK(result->body.empty());
  CHECK(result->headers.get("content-length") == "5");
  CHECK(result->headers.get("docker-content-digest") == "sha256:abc");
  CHECK(server.count("HEAD", "/thing") == 1);
}

TEST_CASE("HttpClient: a POST sends its body", "[common][http]") {
  TestHttpServer server;
  server.on("POST", "/submit", [](const TestHttpServer::Request& request, auto& response) {
    TestHttpServer::reply(response, 201, "got " + request.body);
  });
  common::HttpClient client;

  common::HttpRequest request;
  request.method = "POST";
  request.url = server.url() + "/submit";
  request.body = R"({"x":1})";
  request.headers = {{"Content-Type", "application/json"}};
  const auto result = client.perform(request);

  REQUIRE(result.ok());
  CHECK(result->status == 201);
  CHECK(result->body == R"(got {"x":1})");
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].header("content-type") == "application/json");
}

TEST_CASE("HttpClient: on_headers sees the final answer once, before any body byte",
          "[common][http]") {
  TestHttpServer server;
  server.on("GET", "/start", [](const auto&, auto& response) {
    TestHttpServer::reply(response, 302, "moved", {{"Location", "/final"}, {"X-Hop", "redirect"}});
  });
  server.on("GET", "/final", [](const auto&, auto& response) {
    TestHttpServer::reply(response, 200, "the end", {{"X-Hop", "final"}});
  });
  common::HttpClient client;

  std::vector<std::string> events;
  common::HttpRequest request;
  request.url = server.url() + "/start";
  request.on_headers = [&](const common::HttpResponse& response) {
    events.push_back("headers " + std::to_string(response.status) + " " +
                     std::to_string(response.headers.getAll("x-hop").size()) + " " +
                     response.headers.get("x-hop").value_or("-"));
    return true;
  };
  request.on_body = [&](std::string_view piece) {
    events.push_back("body " + std::string(piece));
    return true;
  };

  SECTION("with redirects followed by curl, headers are those of the last hop only") {
    request.follow_redirects = true;
    const auto result = client.perform(request);
    REQUIRE(result.ok());
    CHECK(result->status == 200);
    CHECK(result->headers.getAll("x-hop") == std::vector<std::string>{"final"});
    CHECK(events == std::vector<std::string>{"headers 200 1 final", "body the end"});
    CHECK(server.count("GET", "/final") == 1);
  }

  SECTION("without following, the redirect is the answer") {
    const auto result = client.perform(request);
    REQUIRE(result.ok());
    CHECK(result->status == 302);
    CHECK(result->headers.get("location") == "/final");
    CHECK(events == std::vector<std::string>{"headers 302 1 redirect", "body moved"});
    CHECK(server.count("GET", "/final") == 0);
  }

  SECTION("on_headers returning false aborts before the body") {
    request.on_headers = [&](const common::HttpResponse&) { return false; };
    const auto result = client.perform(request);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().aborted);
    CHECK_FALSE(result.error().timeout);
    CHECK(events.empty());
  }
}

TEST_CASE("HttpClient: on_body receives the body in pieces, and false aborts", "[common][http]") {
  TestHttpServer server;
  server.on("GET", "/big", [](const auto&, auto& response) { sendInPieces(response, 8, 65536); });
  common::HttpClient client;

  std::vector<size_t> pieces;
  common::HttpRequest request;
  request.url = server.url() + "/big";
  request.on_body = [&](std::string_view piece) {
    pieces.push_back(piece.size());
    return true;
  };

  SECTION("all pieces arrive and the response body stays empty") {
    const auto result = client.perform(request);
    REQUIRE(result.ok());
    CHECK(result->body.empty());
    CHECK(pieces.size() > 1);
    size_t total = 0;
    for (auto size : pieces) {
      total += size;
    }
    CHECK(total == 8 * 65536);
  }

  SECTION("returning false stops the transfer as aborted") {
    request.on_body = [&](std::string_view piece) {
      pieces.push_back(piece.size());
      return false;
    };
    const auto result = client.perform(request);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().aborted);
    CHECK_FALSE(result.error().timeout);
    CHECK(pieces.size() == 1);
  }

  SECTION("an exception from the sink reaches the caller and the client stays usable") {
    request.on_body = [](std::string_view) -> bool { throw std::runtime_error("sink broke"); };
    CHECK_THROWS_WITH(client.perform(request), "sink broke");
    request.on_body = nullptr;
    const auto again = client.perform(request);
    REQUIRE(again.ok());
    CHECK(again->body.size() == 8 * 65536);
  }
}

TEST_CASE("HttpClient: a slow answer fails as a timeout", "[common][http]") {
  TestHttpServer server;
  std::atomic<int> delay_ms{0};
  server.on("GET", "/slow", [&](const auto&, auto& response) {
    server.sleepFor(std::chrono::milliseconds(delay_ms.load()));
    TestHttpServer::reply(response, 200, "late");
  });
  common::HttpClient client;
  common::HttpRequest request;
  request.url = server.url() + "/slow";
  request.timeout = 300ms;

  SECTION("in time") {
    const auto result = client.perform(request);
    REQUIRE(result.ok());
    CHECK(result->body == "late");
  }

  SECTION("too late") {
    delay_ms = 3000;
    const auto started = std::chrono::steady_clock::now();
    const auto result = client.perform(request);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().timeout);
    CHECK_FALSE(result.error().aborted);
    CHECK(std::chrono::steady_clock::now() - started < 2500ms);
  }
}

TEST_CASE("HttpClient: a body that stops arriving fails as a stall timeout", "[common][http]") {
  TestHttpServer server;
  std::atomic<bool> stall{false};
  server.on("GET", "/stall", [&](const auto&, Poco::Net::HTTPServerResponse& response) {
    response.setContentLength64(20);
    auto& out = response.send();
    out << "0123456789";
    out.flush();
    if (stall) {
      server.sleepFor(5s);
    }
    out << "abcdefghij";
    out.flush();
  });
  common::HttpClient client;
  common::HttpRequest request;
  request.url = server.url() + "/stall";
  request.timeout = 0ms;
  request.stall_timeout = 1s;
  std::string received;
  request.on_body = [&](std::string_view piece) {
    received += piece;
    return true;
  };

  SECTION("a steady body completes") {
    const auto result = client.perform(request);
    REQUIRE(result.ok());
    CHECK(received == "0123456789abcdefghij");
  }

  SECTION("a stalled body times out long before the server resumes") {
    stall = true;
    const auto started = std::chrono::steady_clock::now();
    const auto result = client.perform(request);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().timeout);
    CHECK(received == "0123456789");
    CHECK(std::chrono::steady_clock::now() - started < 4500ms);
  }
}

TEST_CASE("HttpClient: a refused connection is an error, not a timeout", "[common][http]") {
  common::HttpClient client;
  common::HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(closedPort()) + "/";
  const auto result = client.perform(request);

  REQUIRE_FALSE(result.ok());
  CHECK_FALSE(result.error().timeout);
  CHECK_FALSE(result.error().aborted);
  CHECK_FALSE(result.error().message.empty());
}

TEST_CASE("HttpClient: only http and https URLs are fetched", "[common][http]") {
  common::HttpClient client;
  common::HttpRequest request;
  request.url = "file:///etc/passwd";
  const auto result = client.perform(request);

  REQUIRE_FALSE(result.ok());
  CHECK_FALSE(result.error().aborted);
}

TEST_CASE("HttpClient: sequential requests reuse one connection", "[common][http]") {
  TestHttpServer server;
  server.on("GET", "/a",
            [](const auto&, auto& response) { TestHttpServer::reply(response, 200, "a"); });
  common::HttpClient client;
  common::HttpRequest request;
  request.url = server.url() + "/a";

  for (int i = 0; i < 3; ++i) {
    REQUIRE(client.perform(request).ok());
  }

  const auto seen = server.requests();
  REQUIRE(seen.size() == 3);
  CHECK(seen[1].client_address == seen[0].client_address);
  CHECK(seen[2].client_address == seen[0].client_address);
}

TEST_CASE("HttpClient: concurrent requests from several threads all succeed", "[common][http]") {
  TestHttpServer server;
  server.onPrefix("GET", "/n/", [](const TestHttpServer::Request& request, auto& response) {
    TestHttpServer::reply(response, 200, request.path.substr(3));
  });
  common::HttpClient client;

  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        common::HttpRequest request;
        request.url = server.url() + "/n/" + id;
        const auto result = client.perform(request);
        if (result.ok() && result->status == 200 && result->body == id) {
          ++good;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }

  CHECK(good == 60);
  CHECK(server.requests().size() == 60);
}
