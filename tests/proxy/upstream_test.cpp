#include "common/clock.hpp"
#include "common/http_client.hpp"
#include "common/logging.hpp"
#include "log_capture.hpp"
#include "test_http_server.hpp"
#include "upstream.hpp"
#include "upstream_auth.hpp"

#include <Poco/DateTime.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Timestamp.h>
#include <Poco/URI.h>
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <sstream>

using namespace std::chrono_literals;
using proxy::Upstream;
using proxy::UpstreamError;
using testsupport::TestHttpServer;
using Kind = UpstreamError::Kind;
using Request = TestHttpServer::Request;
using Response = Poco::Net::HTTPServerResponse;

namespace {

constexpr const char* kManifestType = "application/vnd.oci.image.manifest.v1+json";
// Exact bytes with odd spacing: anything that re-serializes them changes the digest.
constexpr const char* kManifest = "{\"schemaVersion\": 2,  \"mediaType\":"
                                  "\"application/vnd.oci.image.manifest.v1+json\" }\n";

proxy::RepositoryName repo(std::string_view name) {
  return *proxy::RepositoryName::parse(name);
}

proxy::Reference tagRef(std::string_view tag) {
  return *proxy::Tag::parse(tag);
}

proxy::Digest digestOf(std::string_view bytes) {
  return proxy::Digest::sha256Of(bytes);
}

std::multimap<std::string, std::string> parseQuery(const std::string& query) {
  std::multimap<std::string, std::string> out;
  std::stringstream stream(query);
  std::string pair;
  while (std::getline(stream, pair, '&')) {
    const auto eq = pair.find('=');
    std::string name, value;
    Poco::URI::decode(pair.substr(0, eq), name);
    if (eq != std::string::npos) {
      Poco::URI::decode(pair.substr(eq + 1), value);
    }
    out.emplace(name, value);
  }
  return out;
}

std::string queryValue(const std::string& query, const std::string& name) {
  const auto params = parseQuery(query);
  const auto it = params.find(name);
  return it == params.end() ? "" : it->second;
}

std::uint16_t closedPort() {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  const auto port = socket.address().port();
  socket.close();
  return port;
}

proxy::UpstreamConfig configFor(const std::string& url) {
  proxy::UpstreamConfig config;
  config.name = "test";
  config.url = url;
  config.connect_timeout = 2s;
  config.request_timeout = 5s;
  config.stall_timeout = 1s;
  return config;
}

void replyManifest(Response& response, std::string_view body = kManifest,
                   std::vector<std::pair<std::string, std::string>> extra = {}) {
  extra.emplace_back("Content-Type", kManifestType);
  extra.emplace_back("Docker-Content-Digest", digestOf(body).str());
  TestHttpServer::reply(response, 200, body, extra);
}

// A registry that wants Bearer tokens from a token service, as Docker Hub does: it issues one
// token per token request, each good for one scope, and counts what it was asked.
class TokenService {
public:
  TokenService(TestHttpServer& server, std::string realm)
      : server_(server), realm_(std::move(realm)) {
    server_.on("GET", "/token", [this](const Request& request, Response& response) {
      std::lock_guard lock(mutex_);
      const auto token = "token-" + std::to_string(++issued_);
      valid_[token] = queryValue(request.query, "scope");
      TestHttpServer::reply(response, 200,
                            R"({"token":")" + token + R"(","expires_in":)" +
                                std::to_string(expires_in_) + "}",
                            {{"Content-Type", "application/json"}});
    });
  }

  void setLifetime(long seconds) { expires_in_ = seconds; }

  // Forgets every token it issued, as after a key rotation.
  void revokeAll() {
    std::lock_guard lock(mutex_);
    valid_.clear();
  }

  // Whether `request` carries a token for `scope`; if not, answers 401 with the challenge.
  bool admit(const Request& request, Response& response, const std::string& scope) {
    {
      std::lock_guard lock(mutex_);
      const auto header = request.header("authorization").value_or("");
      const auto token = header.rfind("Bearer ", 0) == 0 ? header.substr(7) : "";
      const auto it = valid_.find(token);
      if (it != valid_.end() && it->second == scope) {
        return true;
      }
    }
    TestHttpServer::reply(
        response, 401,
        R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
        {{"Content-Type", "application/json"},
         {"WWW-Authenticate",
          "Bearer realm=\"" + realm_ + "\",service=\"registry.test\",scope=\"" + scope + "\""}});
    return false;
  }

  // Serves a manifest of `repository` behind the token check.
  void serveManifest(const std::string& repository, const std::string& reference,
                     std::string body = kManifest) {
    server_.on("*", "/v2/" + repository + "/manifests/" + reference,
               [this, repository, body](const Request& request, Response& response) {
                 if (admit(request, response, "repository:" + repository + ":pull")) {
                   replyManifest(response, body);
                 }
               });
  }

  size_t tokenRequests() const { return server_.count("GET", "/token"); }

private:
  TestHttpServer& server_;
  std::string realm_;
  std::mutex mutex_;
  std::map<std::string, std::string> valid_;
  int issued_ = 0;
  std::atomic<long> expires_in_{300};
};

} // namespace

TEST_CASE("Upstream: a 401 is answered with an anonymous token and the request retried",
          "[proxy][upstream]") {
  TestHttpServer server;
  TokenService tokens(server, server.url() + "/token");
  tokens.serveManifest("library/alpine", "3.20");
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);

  const auto result = upstream.getManifest(repo("library/alpine"), tagRef("3.20"), kManifestType);

  REQUIRE(result.ok());
  CHECK(result->body == kManifest);
  CHECK(result->digest == digestOf(kManifest));
  CHECK(result->media_type == kManifestType);
  const auto seen = server.requests();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].path == "/v2/library/alpine/manifests/3.20");
  CHECK_FALSE(seen[0].header("authorization"));
  CHECK(seen[0].header("accept") == kManifestType);
  CHECK(seen[1].path == "/token");
  CHECK_FALSE(seen[1].header("authorization"));
  CHECK(queryValue(seen[1].query, "service") == "registry.test");
  CHECK(queryValue(seen[1].query, "scope") == "repository:library/alpine:pull");
  CHECK(seen[2].path == "/v2/library/alpine/manifests/3.20");
  CHECK(seen[2].header("authorization") == "Bearer token-1");
}

TEST_CASE("Upstream: a cached token is reused until it expires", "[proxy][upstream]") {
  TestHttpServer server;
  TokenService tokens(server, server.url() + "/token");
  tokens.setLifetime(300);
  tokens.serveManifest("library/alpine", "3.20");
  tokens.serveManifest("library/busybox", "latest");
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);
  const auto alpine = repo("library/alpine");

  REQUIRE(upstream.getManifest(alpine, tagRef("3.20"), kManifestType).ok());
  REQUIRE(tokens.tokenRequests() == 1);

  SECTION("a second request sends the token at once") {
    REQUIRE(upstream.getManifest(alpine, tagRef("3.20"), kManifestType).ok());
    CHECK(tokens.tokenRequests() == 1);
    CHECK(server.count("GET", "/v2/library/alpine/manifests/3.20") == 3);
  }

  SECTION("HEAD and GET of one repository share the token") {
    REQUIRE(upstream.headManifest(alpine, tagRef("3.20"), kManifestType).ok());
    CHECK(tokens.tokenRequests() == 1);
    CHECK(server.count("HEAD", "/v2/library/alpine/manifests/3.20") == 1);
  }

  SECTION("another repository is another scope and needs its own token") {
    REQUIRE(upstream.getManifest(repo("library/busybox"), tagRef("latest"), kManifestType).ok());
    CHECK(tokens.tokenRequests() == 2);
    REQUIRE(upstream.getManifest(alpine, tagRef("3.20"), kManifestType).ok());
    CHECK(tokens.tokenRequests() == 2);
  }

  SECTION("shortly before expiry the token is still used") {
    clock.advance(280s);
    REQUIRE(upstream.getManifest(alpine, tagRef("3.20"), kManifestType).ok());
    CHECK(tokens.tokenRequests() == 1);
  }

  SECTION("once expired it is fetched again") {
    clock.advance(300s);
    REQUIRE(upstream.getManifest(alpine, tagRef("3.20"), kManifestType).ok());
    CHECK(tokens.tokenRequests() == 2);
  }
}

TEST_CASE("Upstream: a token the upstream refuses is replaced once", "[proxy][upstream]") {
  TestHttpServer server;
  TokenService tokens(server, server.url() + "/token");
  tokens.serveManifest("library/alpine", "3.20");
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);
  REQUIRE(upstream.getManifest(repo("library/alpine"), tagRef("3.20"), kManifestType).ok());

  tokens.revokeAll();
  const auto result = upstream.getManifest(repo("library/alpine"), tagRef("3.20"), kManifestType);

  REQUIRE(result.ok());
  CHECK(tokens.tokenRequests() == 2);
  const auto seen = server.requests();
  REQUIRE(seen.size() == 6);
  CHECK(seen[3].header("authorization") == "Bearer token-1");
  CHECK(seen[5].header("authorization") == "Bearer token-2");
}

TEST_CASE("Upstream: a 401 that persists after a fresh token is Unauthorized",
          "[proxy][upstream]") {
  TestHttpServer server;
  TokenService tokens(server, server.url() + "/token");
  server.on("GET", "/v2/private/app/manifests/v1", [&](const Request& request, Response& response) {
    // Docker Hub answers this way for a repository the account may not pull.
    tokens.admit(request, response, "repository:someone-else:pull");
  });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);

  const auto result = upstream.getManifest(repo("private/app"), tagRef("v1"), kManifestType);

  REQUIRE_FALSE(result.ok());
  CHECK(result.error().kind == Kind::Unauthorized);
  CHECK(result.error().status == 401);
  CHECK(server.count("GET", "/v2/private/app/manifests/v1") == 2);
  CHECK(tokens.tokenRequests() == 1);
}

TEST_CASE("Upstream: configured credentials go only to a token realm of the upstream's domain",
          "[proxy][upstream]") {
  TestHttpServer server;
  auto config = configFor(server.url());
  config.username = "alice";
  config.password = "s3cret";
  const std::string expected = proxy::basicAuthorization("alice", "s3cret");
  common::HttpClient http;
  common::FakeClock clock;

  SECTION("a realm on the upstream's own host gets them") {
    TokenService tokens(server, server.url() + "/token");
    tokens.serveManifest("library/alpine", "3.20");
    Upstream upstream(config, http, clock);
    REQUIRE(upstream.getManifest(repo("library/alpine"), tagRef("3.20"), kManifestType).ok());
    const auto seen = server.requests();
    REQUIRE(seen.size() == 3);
    CHECK(seen[1].path == "/token");
    CHECK(seen[1].header("authorization") == expected);
  }

  SECTION("a realm on another host asks anonymously") {
    // 127.0.0.1 and localhost are one machine, but not the same host by name.
    TokenService tokens(server, "http://localhost:" + std::to_string(server.port()) + "/token");
    tokens.serveManifest("library/alpine", "3.20");
    Upstream upstream(config, http, clock);
    REQUIRE(upstream.getManifest(repo("library/alpine"), tagRef("3.20"), kManifestType).ok());
    const auto seen = server.requests();
    REQUIRE(seen.size() == 3);
    CHECK(seen[1].path == "/token");
    CHECK(seen[1].header("host") == "localhost:" + std::to_string(server.port()));
    CHECK_FALSE(seen[1].header("authorization"));
  }
}

TEST_CASE("Upstream: a Basic challenge is answered with the configured credentials",
          "[proxy][upstream]") {
  TestHttpServer server;
  const std::string expected = proxy::basicAuthorization("bob", "hunter2");
  server.on("GET", "/v2/team/app/manifests/v1", [&](const Request& request, Response& response) {
    if (request.header("authorization") != expected) {
      TestHttpServer::reply(response, 401, "", {{"WWW-Authenticate", "Basic realm=\"registry\""}});
      return;
    }
    replyManifest(response);
  });
  auto config = configFor(server.url());
  config.username = "bob";
  config.password = "hunter2";
  common::HttpClient http;
  common::FakeClock clock;

  SECTION("the retry carries them, and later requests send them at once") {
    Upstream upstream(config, http, clock);
    REQUIRE(upstream.getManifest(repo("team/app"), tagRef("v1"), kManifestType).ok());
    CHECK(server.count("GET", "/v2/team/app/manifests/v1") == 2);
    REQUIRE(upstream.getManifest(repo("team/app"), tagRef("v1"), kManifestType).ok());
    CHECK(server.count("GET", "/v2/team/app/manifests/v1") == 3);
  }

  SECTION("without credentials it is Unauthorized after one request") {
    config.username.reset();
    config.password.reset();
    Upstream upstream(config, http, clock);
    const auto result = upstream.getManifest(repo("team/app"), tagRef("v1"), kManifestType);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::Unauthorized);
    CHECK(server.count("GET", "/v2/team/app/manifests/v1") == 1);
  }

  SECTION("wrong credentials are tried once, not in a loop") {
    config.password = "wrong";
    Upstream upstream(config, http, clock);
    const auto result = upstream.getManifest(repo("team/app"), tagRef("v1"), kManifestType);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::Unauthorized);
    CHECK(server.count("GET", "/v2/team/app/manifests/v1") == 2);
  }
}

TEST_CASE("Upstream: a blob redirect to another host goes there without Authorization",
          "[proxy][upstream]") {
  TestHttpServer server;
  TestHttpServer cdn;
  TokenService tokens(server, server.url() + "/token");
  const std::string blob = "layer bytes";
  const auto digest = digestOf(blob);
  const std::string blob_path = "/v2/library/alpine/blobs/" + digest.str();
  std::string location;
  server.on("*", blob_path, [&](const Request& request, Response& response) {
    if (tokens.admit(request, response, "repository:library/alpine:pull")) {
      TestHttpServer::reply(response, 307, "", {{"Location", location}});
    }
  });
  server.on("*", "/same-host/blob", [&](const Request&, Response& response) {
    TestHttpServer::reply(response, 200, blob);
  });
  cdn.on("*", "/cdn/blob",
         [&](const Request&, Response& response) { TestHttpServer::reply(response, 200, blob); });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);
  std::string received;
  auto on_data = [&](std::string_view piece) {
    received += piece;
    return true;
  };

  SECTION("another host: no Authorization, the signed query intact") {
    location = "http://localhost:" + std::to_string(cdn.port()) + "/cdn/blob?sig=a%2Fb&exp=9";
    const auto result = upstream.getBlob(repo("library/alpine"), digest, nullptr, on_data);
    REQUIRE(result.ok());
    CHECK(*result == blob.size());
    CHECK(received == blob);
    const auto seen = cdn.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].query == "sig=a%2Fb&exp=9");
    CHECK_FALSE(seen[0].header("authorization"));
    CHECK(server.requests().back().header("authorization") == "Bearer token-1");
  }

  SECTION("the same host: Authorization kept") {
    location = "/same-host/blob";
    const auto result = upstream.getBlob(repo("library/alpine"), digest, nullptr, on_data);
    REQUIRE(result.ok());
    CHECK(received == blob);
    REQUIRE(server.count("GET", "/same-host/blob") == 1);
    CHECK(server.requests().back().header("authorization") == "Bearer token-1");
  }

  SECTION("HEAD follows the redirect too") {
    location = "http://localhost:" + std::to_string(cdn.port()) + "/cdn/blob";
    const auto result = upstream.headBlob(repo("library/alpine"), digest);
    REQUIRE(result.ok());
    CHECK(result->size == blob.size());
    REQUIRE(cdn.count("HEAD", "/cdn/blob") == 1);
    CHECK_FALSE(cdn.requests()[0].header("authorization"));
  }
}

TEST_CASE("Upstream: more than five redirects is a bad response", "[proxy][upstream]") {
  TestHttpServer server;
  const auto digest = digestOf("x");
  server.onPrefix("GET", "/v2/loop/blobs/", [](const Request& request, Response& response) {
    TestHttpServer::reply(response, 302, "", {{"Location", request.path}});
  });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);

  const auto result = upstream.getBlob(repo("loop"), digest, nullptr, nullptr);

  REQUIRE_FALSE(result.ok());
  CHECK(result.error().kind == Kind::BadResponse);
  CHECK(server.requests().size() == 6);
}

TEST_CASE("Upstream: 429 is TooManyRequests with the Retry-After seconds", "[proxy][upstream]") {
  TestHttpServer server;
  std::string retry_after = "30";
  server.on("GET", "/v2/library/alpine/manifests/3.20", [&](const Request&, Response& response) {
    TestHttpServer::reply(
        response, 429,
        R"({"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit"}]})",
        {{"Retry-After", retry_after},
         {"ratelimit-limit", "100;w=21600"},
         {"ratelimit-remaining", "0;w=21600"}});
  });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);

  SECTION("seconds") {
    const auto result = upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "");
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::TooManyRequests);
    CHECK(result.error().status == 429);
    CHECK(result.error().retry_after == 30);
    CHECK_THAT(result.error().message, Catch::Contains("TOOMANYREQUESTS"));
    CHECK(upstream.rateLimit().remaining == 0);
  }

  SECTION("an HTTP date, counted from the injected clock") {
    const auto at = clock.now() + 120s;
    const Poco::Timestamp stamp =
        Poco::Timestamp::fromEpochTime(std::chrono::system_clock::to_time_t(
            std::chrono::time_point_cast<std::chrono::seconds>(at)));
    retry_after = Poco::DateTimeFormatter::format(stamp, Poco::DateTimeFormat::HTTP_FORMAT);
    const auto result = upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "");
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::TooManyRequests);
    CHECK(result.error().retry_after == 120);
  }

  SECTION("a Retry-After that is neither seconds nor a date") {
    retry_after = "soon";
    const auto result = upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "");
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::TooManyRequests);
    CHECK_FALSE(result.error().retry_after);
  }
}

TEST_CASE("Upstream: statuses map to error kinds", "[proxy][upstream]") {
  TestHttpServer server;
  int status = 404;
  std::vector<std::pair<std::string, std::string>> headers;
  server.onPrefix("*", "/v2/", [&](const Request&, Response& response) {
    TestHttpServer::reply(
        response, status,
        R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]})",
        headers);
  });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);
  auto get = [&] { return upstream.getManifest(repo("library/alpine"), tagRef("nope"), ""); };

  SECTION("404 is NotFound, with the upstream's error code in the message") {
    const auto result = get();
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::NotFound);
    CHECK(result.error().status == 404);
    CHECK_THAT(result.error().message, Catch::Contains("MANIFEST_UNKNOWN"));
  }

  SECTION("404 on a blob HEAD (no body) is NotFound too") {
    const auto result = upstream.headBlob(repo("library/alpine"), digestOf("x"));
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::NotFound);
  }

  SECTION("403 is Denied") {
    status = 403;
    CHECK(get().error().kind == Kind::Denied);
  }

  SECTION("5xx is Unavailable; a 503 keeps its Retry-After") {
    status = 500;
    CHECK(get().error().kind == Kind::Unavailable);
    status = 503;
    headers = {{"Retry-After", "7"}};
    const auto result = get();
    CHECK(result.error().kind == Kind::Unavailable);
    CHECK(result.error().retry_after == 7);
  }

  SECTION("401 without a challenge is Unauthorized") {
    status = 401;
    CHECK(get().error().kind == Kind::Unauthorized);
    CHECK(server.requests().size() == 1);
  }

  SECTION("another status is a bad response") {
    status = 400;
    CHECK(get().error().kind == Kind::BadResponse);
  }
}

TEST_CASE("Upstream: a refused connection is Unavailable", "[proxy][upstream]") {
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor("http://127.0.0.1:" + std::to_string(closedPort())), http, clock);

  const auto manifest = upstream.headManifest(repo("library/alpine"), tagRef("3.20"), "");
  const auto blob = upstream.getBlob(repo("library/alpine"), digestOf("x"), nullptr, nullptr);

  REQUIRE_FALSE(manifest.ok());
  CHECK(manifest.error().kind == Kind::Unavailable);
  CHECK(manifest.error().status == 0);
  REQUIRE_FALSE(blob.ok());
  CHECK(blob.error().kind == Kind::Unavailable);
}

TEST_CASE("Upstream: a blob download that stalls times out", "[proxy][upstream]") {
  // Declared before the server: its handler may still be writing them while the server stops.
  const std::string blob(4096, 'b');
  const auto digest = digestOf(blob);
  std::atomic<bool> stall{true};
  TestHttpServer server;
  server.on("GET", "/v2/library/alpine/blobs/" + digest.str(),
            [&](const Request&, Response& response) {
              response.setContentLength64(static_cast<Poco::Int64>(blob.size()));
              auto& out = response.send();
              out.write(blob.data(), 1024);
              out.flush();
              if (stall) {
                server.sleepFor(5s);
              }
              out.write(blob.data() + 1024, static_cast<std::streamsize>(blob.size() - 1024));
              out.flush();
            });
  common::HttpClient http;
  common::FakeClock clock;
  auto config = configFor(server.url());
  // A whole-request limit this short would end the download; blobs must not use it.
  config.request_timeout = 100ms;
  config.stall_timeout = 1s;
  Upstream upstream(config, http, clock);
  std::optional<std::uint64_t> announced;
  std::uint64_t received = 0;
  auto on_start = [&](std::optional<std::uint64_t> size) {
    announced = size;
    return true;
  };
  auto on_data = [&](std::string_view piece) {
    received += piece.size();
    return true;
  };

  SECTION("stalled") {
    const auto started = std::chrono::steady_clock::now();
    const auto result = upstream.getBlob(repo("library/alpine"), digest, on_start, on_data);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::Timeout);
    CHECK(announced == blob.size());
    CHECK(received == 1024);
    CHECK(std::chrono::steady_clock::now() - started < 4500ms);
  }

  SECTION("steady, even past the request timeout") {
    stall = false;
    const auto result = upstream.getBlob(repo("library/alpine"), digest, on_start, on_data);
    REQUIRE(result.ok());
    CHECK(*result == blob.size());
  }
}

TEST_CASE("Upstream: a manifest whose bytes do not match its digest is a bad response",
          "[proxy][upstream]") {
  TestHttpServer server;
  const auto right = digestOf(kManifest);
  std::string body = kManifest;
  std::string header_digest = right.str();
  server.onPrefix("GET", "/v2/library/alpine/manifests/", [&](const Request&, Response& response) {
    TestHttpServer::reply(response, 200, body,
                          {{"Content-Type", std::string(kManifestType) + "; charset=utf-8"},
                           {"Docker-Content-Digest", header_digest}});
  });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);
  const proxy::Reference by_digest = right;

  SECTION("matching bytes are kept exactly") {
    const auto result = upstream.getManifest(repo("library/alpine"), by_digest, "");
    REQUIRE(result.ok());
    CHECK(result->body == kManifest);
    CHECK(result->digest == right);
    CHECK(result->media_type == kManifestType);
  }

  SECTION("by digest: other bytes") {
    body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
    header_digest = digestOf(body).str();
    const auto result = upstream.getManifest(repo("library/alpine"), by_digest, "");
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::BadResponse);
  }

  SECTION("by tag: bytes that do not match Docker-Content-Digest") {
    header_digest = digestOf("something else").str();
    const auto result = upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "");
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::BadResponse);
  }

  SECTION("by tag without Docker-Content-Digest: the digest is computed") {
    header_digest.clear();
    server.onPrefix("GET", "/v2/library/alpine/manifests/", [&](const Request&, Response& r) {
      TestHttpServer::reply(r, 200, body, {{"Content-Type", kManifestType}});
    });
    const auto result = upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "");
    REQUIRE(result.ok());
    CHECK(result->digest == right);
  }

  SECTION("a manifest over 4 MiB is refused") {
    body = std::string(4 * 1024 * 1024 + 1, ' ');
    header_digest = digestOf(body).str();
    const auto result = upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "");
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::BadResponse);
  }
}

TEST_CASE("Upstream: HEAD of a manifest reads digest, size and media type", "[proxy][upstream]") {
  TestHttpServer server;
  const auto digest = digestOf(kManifest);
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", std::string(kManifestType) + "; charset=utf-8"},
      {"Docker-Content-Digest", digest.str()}};
  server.onPrefix("HEAD", "/v2/library/alpine/manifests/", [&](const Request&, Response& response) {
    TestHttpServer::reply(response, 200, kManifest, headers);
  });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);

  SECTION("by tag") {
    const auto result = upstream.headManifest(repo("library/alpine"), tagRef("3.20"), "");
    REQUIRE(result.ok());
    CHECK(result->digest == digest);
    CHECK(result->size == std::string_view(kManifest).size());
    CHECK(result->media_type == kManifestType);
    REQUIRE(server.requests().size() == 1);
    CHECK_THAT(server.requests()[0].header("accept").value_or(""),
               Catch::Contains("application/vnd.docker.distribution.manifest.v2+json"));
  }

  SECTION("by tag without Docker-Content-Digest is a bad response") {
    headers.pop_back();
    const auto result = upstream.headManifest(repo("library/alpine"), tagRef("3.20"), "");
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::BadResponse);
  }

  SECTION("by digest without Docker-Content-Digest: the reference is the digest") {
    headers.pop_back();
    const auto result = upstream.headManifest(repo("library/alpine"), digest, "");
    REQUIRE(result.ok());
    CHECK(result->digest == digest);
  }

  SECTION("by digest with another Docker-Content-Digest is a bad response") {
    const auto result = upstream.headManifest(repo("library/alpine"), digestOf("other"), "");
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::BadResponse);
  }
}

TEST_CASE("Upstream: a blob streams in pieces and the receiver can abort", "[proxy][upstream]") {
  // Before the server: after an abort its handler may still be writing the blob when the test
  // ends, and the server's destructor waits for it.
  const size_t piece_size = 64 * 1024;
  const std::string blob(8 * piece_size, 'z');
  const auto digest = digestOf(blob);
  TestHttpServer server;
  server.on("GET", "/v2/library/alpine/blobs/" + digest.str(),
            [&](const Request&, Response& response) {
              response.setContentLength64(static_cast<Poco::Int64>(blob.size()));
              auto& out = response.send();
              for (size_t offset = 0; offset < blob.size(); offset += piece_size) {
                out.write(blob.data() + offset, static_cast<std::streamsize>(piece_size));
                out.flush();
              }
            });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);
  std::vector<std::string> events;
  std::string received;
  bool keep_going = true;
  bool start_ok = true;
  auto on_start = [&](std::optional<std::uint64_t> size) {
    events.push_back("start " + (size ? std::to_string(*size) : std::string("?")));
    return start_ok;
  };
  auto on_data = [&](std::string_view piece) {
    events.push_back("data");
    received += piece;
    return keep_going;
  };

  SECTION("all pieces, after the start") {
    const auto result = upstream.getBlob(repo("library/alpine"), digest, on_start, on_data);
    REQUIRE(result.ok());
    CHECK(*result == blob.size());
    CHECK(received == blob);
    REQUIRE(events.size() > 2);
    CHECK(events[0] == "start " + std::to_string(blob.size()));
    CHECK(std::count(events.begin(), events.end(), "data") == static_cast<long>(events.size() - 1));
  }

  SECTION("false from on_data stops the download") {
    keep_going = false;
    const auto result = upstream.getBlob(repo("library/alpine"), digest, on_start, on_data);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::Aborted);
    CHECK(events.size() == 2);
    CHECK(received.size() < blob.size());
  }

  SECTION("false from on_start stops it before any data") {
    start_ok = false;
    const auto result = upstream.getBlob(repo("library/alpine"), digest, on_start, on_data);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().kind == Kind::Aborted);
    CHECK(events == std::vector<std::string>{"start " + std::to_string(blob.size())});
  }
}

TEST_CASE("Upstream: rate-limit headers of manifest answers are recorded", "[proxy][upstream]") {
  TestHttpServer server;
  std::vector<std::pair<std::string, std::string>> limits = {{"ratelimit-limit", "100;w=21600"},
                                                             {"ratelimit-remaining", "76;w=21600"}};
  server.onPrefix("*", "/v2/library/alpine/manifests/", [&](const Request&, Response& response) {
    replyManifest(response, kManifest, limits);
  });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);
  CHECK_FALSE(upstream.rateLimit().limit);

  REQUIRE(upstream.headManifest(repo("library/alpine"), tagRef("3.20"), "").ok());
  CHECK(upstream.rateLimit().limit == 100);
  CHECK(upstream.rateLimit().remaining == 76);

  SECTION("the latest answer wins") {
    limits[1].second = "75;w=21600";
    REQUIRE(upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "").ok());
    CHECK(upstream.rateLimit().remaining == 75);
  }

  SECTION("empty values say nothing") {
    limits = {{"ratelimit-limit", ""}, {"ratelimit-remaining", ""}};
    REQUIRE(upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "").ok());
    CHECK_FALSE(upstream.rateLimit().limit);
    CHECK_FALSE(upstream.rateLimit().remaining);
  }
}

TEST_CASE("Upstream: health follows the last answer and keeps the last failure",
          "[proxy][upstream]") {
  TestHttpServer server;
  int status = 200;
  server.onPrefix("*", "/v2/library/alpine/", [&](const Request&, Response& response) {
    if (status == 200) {
      replyManifest(response, kManifest, {});
      return;
    }
    TestHttpServer::reply(response, status,
                          R"({"errors":[{"code":"UNAVAILABLE","message":"back soon"}]})");
  });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);
  CHECK(upstream.health().reachable);
  CHECK(upstream.health().requests == 0);

  REQUIRE(upstream.headManifest(repo("library/alpine"), tagRef("3.20"), "").ok());
  CHECK(upstream.health().reachable);
  CHECK(upstream.health().requests == 1);
  CHECK(upstream.health().errors == 0);
  CHECK(upstream.health().last_error.empty());

  SECTION("a 5xx makes it unreachable until the next answer, which a 404 is") {
    status = 503;
    REQUIRE_FALSE(upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "").ok());
    CHECK_FALSE(upstream.health().reachable);
    CHECK(upstream.health().errors == 1);
    CHECK_THAT(upstream.health().last_error,
               Catch::Contains("503") && Catch::Contains("back soon"));

    status = 404;
    REQUIRE_FALSE(upstream.headBlob(repo("library/alpine"), digestOf("x")).ok());
    CHECK(upstream.health().reachable);
    CHECK(upstream.health().requests == 3);
    CHECK(upstream.health().errors == 1);
    CHECK_THAT(upstream.health().last_error, Catch::Contains("503"));
  }

  SECTION("429 counts as a failure") {
    status = 429;
    REQUIRE_FALSE(upstream.tagsList(repo("library/alpine"), "").ok());
    CHECK_FALSE(upstream.health().reachable);
    CHECK(upstream.health().errors == 1);
  }

  SECTION("no answer at all") {
    Upstream gone(configFor("http://127.0.0.1:" + std::to_string(closedPort())), http, clock);
    REQUIRE_FALSE(gone.headManifest(repo("library/alpine"), tagRef("3.20"), "").ok());
    CHECK_FALSE(gone.health().reachable);
    CHECK(gone.health().errors == 1);
    CHECK_THAT(gone.health().last_error, Catch::Contains("manifests/3.20"));
  }
}

TEST_CASE("Upstream: tags/list and referrers pass the query on and return the Link header",
          "[proxy][upstream]") {
  TestHttpServer server;
  server.on("GET", "/v2/library/alpine/tags/list", [](const Request&, Response& response) {
    TestHttpServer::reply(response, 200, R"({"name":"library/alpine","tags":["3.19","3.20"]})",
                          {{"Content-Type", "application/json"},
                           {"Link", "</v2/library/alpine/tags/list?last=3.20&n=2>; rel=\"next\""}});
  });
  const auto subject = digestOf(kManifest);
  server.on("GET", "/v2/library/alpine/referrers/" + subject.str(),
            [](const Request&, Response& response) {
              TestHttpServer::reply(response, 200, R"({"schemaVersion":2,"manifests":[]})",
                                    {{"Content-Type", "application/vnd.oci.image.index.v1+json"}});
            });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(configFor(server.url()), http, clock);

  const auto tags = upstream.tagsList(repo("library/alpine"), "n=2&last=3.18");
  REQUIRE(tags.ok());
  CHECK_THAT(tags->body, Catch::Contains("3.20"));
  CHECK(tags->content_type == "application/json");
  CHECK(tags->link == "</v2/library/alpine/tags/list?last=3.20&n=2>; rel=\"next\"");
  CHECK(server.requests().back().query == "n=2&last=3.18");

  const auto referrers = upstream.referrers(repo("library/alpine"), subject, "?artifactType=x%2Fy");
  REQUIRE(referrers.ok());
  CHECK(referrers->content_type == "application/vnd.oci.image.index.v1+json");
  CHECK_FALSE(referrers->link);
  CHECK(server.requests().back().query == "artifactType=x%2Fy");
}

TEST_CASE("Upstream: the request log names each request and never a secret", "[proxy][upstream]") {
  TestHttpServer server;
  TestHttpServer cdn;
  auto config = configFor(server.url());
  config.username = "carol";
  config.password = "pa55word";
  TokenService tokens(server, server.url() + "/token");
  tokens.serveManifest("library/alpine", "3.20");
  const auto digest = digestOf("blob");
  server.on("GET", "/v2/library/alpine/blobs/" + digest.str(),
            [&](const Request& request, Response& response) {
              if (tokens.admit(request, response, "repository:library/alpine:pull")) {
                TestHttpServer::reply(
                    response, 307, "",
                    {{"Location",
                      "http://localhost:" + std::to_string(cdn.port()) + "/b?signature=SIGN"}});
              }
            });
  cdn.on("GET", "/b",
         [](const Request&, Response& response) { TestHttpServer::reply(response, 200, "blob"); });
  common::HttpClient http;
  common::FakeClock clock;
  Upstream upstream(config, http, clock);
  testsupport::LogCapture capture("upstream");

  REQUIRE(upstream.getManifest(repo("library/alpine"), tagRef("3.20"), "").ok());
  REQUIRE(upstream.getBlob(repo("library/alpine"), digest, nullptr, nullptr).ok());

  const auto text = capture.text();
  CHECK_THAT(text, Catch::Contains("upstream request: upstream=test method=GET "
                                   "path=/v2/library/alpine/manifests/3.20 status=401"));
  CHECK_THAT(text, Catch::Contains("upstream request: upstream=test method=GET "
                                   "path=/v2/library/alpine/manifests/3.20 status=200"));
  CHECK_THAT(text, Catch::Contains("upstream token request: upstream=test"));
  CHECK_THAT(text, Catch::Contains("/b status=200"));
  CHECK_THAT(text, !Catch::Contains("token-1"));
  CHECK_THAT(text, !Catch::Contains("pa55word"));
  CHECK_THAT(text, !Catch::Contains(proxy::basicAuthorization("carol", "pa55word").substr(6)));
  CHECK_THAT(text, !Catch::Contains("SIGN"));
  CHECK_THAT(text, !Catch::Contains("Authorization"));
}
