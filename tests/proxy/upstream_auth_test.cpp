#include "common/clock.hpp"
#include "upstream_auth.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using proxy::parseAuthChallenges;

TEST_CASE("parseAuthChallenges: reads Docker Hub's Bearer challenge", "[proxy][auth]") {
  const auto challenges = parseAuthChallenges(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",)"
      R"(scope="repository:library/alpine:pull")");

  REQUIRE(challenges.size() == 1);
  CHECK(challenges[0].isBearer());
  CHECK(challenges[0].param("realm") == "https://auth.docker.io/token");
  CHECK(challenges[0].param("service") == "registry.docker.io");
  CHECK(challenges[0].param("scope") == "repository:library/alpine:pull");
  CHECK(challenges[0].param("error").empty());
}

TEST_CASE("parseAuthChallenges: edge cases of the challenge grammar", "[proxy][auth]") {
  SECTION("a comma inside quotes belongs to the value") {
    const auto c = parseAuthChallenges(
        R"(Bearer realm="https://r.example/token",scope="repository:a/b:pull,push",service="s")");
    REQUIRE(c.size() == 1);
    CHECK(c[0].param("scope") == "repository:a/b:pull,push");
    CHECK(c[0].param("service") == "s");
  }

  SECTION("escaped quotes and backslashes are undone") {
    const auto c = parseAuthChallenges(R"(Basic realm="say \"hi\" \\ there")");
    REQUIRE(c.size() == 1);
    CHECK(c[0].param("realm") == R"(say "hi" \ there)");
  }

  SECTION("scheme and parameter names are case-insensitive, spaces around '=' allowed") {
    const auto c = parseAuthChallenges(R"(BEARER Realm = "https://r.example/t" , SERVICE=reg)");
    REQUIRE(c.size() == 1);
    CHECK(c[0].isBearer());
    CHECK(c[0].param("realm") == "https://r.example/t");
    CHECK(c[0].param("service") == "reg");
  }

  SECTION("unquoted values may be bare URLs") {
    const auto c = parseAuthChallenges("Bearer realm=https://r.example/token,service=reg");
    REQUIRE(c.size() == 1);
    CHECK(c[0].param("realm") == "https://r.example/token");
  }

  SECTION("several challenges in one value") {
    const auto c = parseAuthChallenges(
        R"(Basic realm="basic, realm", Bearer realm="https://r.example/t",service="x", Negotiate)");
    REQUIRE(c.size() == 3);
    CHECK(c[0].isBasic());
    CHECK(c[0].param("realm") == "basic, realm");
    CHECK(c[1].isBearer());
    CHECK(c[1].param("service") == "x");
    CHECK(c[2].scheme == "negotiate");
    CHECK(c[2].params.empty());
  }

  SECTION("a scheme without parameters") {
    const auto c = parseAuthChallenges("Basic");
    REQUIRE(c.size() == 1);
    CHECK(c[0].isBasic());
    CHECK(c[0].params.empty());
  }

  SECTION("an unterminated quote ends the parse; what came before stays") {
    const auto c = parseAuthChallenges(R"(Bearer realm="https://r.example/t",service="oops)");
    REQUIRE(c.size() == 1);
    CHECK(c[0].param("realm") == "https://r.example/t");
    CHECK(c[0].param("service").empty());
  }

  SECTION("nothing to read") {
    CHECK(parseAuthChallenges("").empty());
    CHECK(parseAuthChallenges("  ,  ").empty());
    CHECK(parseAuthChallenges("=\"x\"").empty());
  }
}

TEST_CASE("selectChallenge: prefers a Bearer challenge with a realm, then Basic", "[proxy][auth]") {
  SECTION("Bearer wins over an earlier Basic, across header values") {
    const auto c =
        proxy::selectChallenge({R"(Basic realm="b")", R"(Bearer realm="https://r.example/t")"});
    REQUIRE(c);
    CHECK(c->isBearer());
  }

  SECTION("Basic when there is no usable Bearer") {
    const auto c = proxy::selectChallenge({R"(Bearer service="no realm")", R"(Basic realm="b")"});
    REQUIRE(c);
    CHECK(c->isBasic());
  }

  SECTION("nothing for schemes we cannot answer") {
    CHECK_FALSE(proxy::selectChallenge({"Negotiate", R"(Digest realm="d", nonce="n")"}));
    CHECK_FALSE(proxy::selectChallenge({}));
  }
}

TEST_CASE("parseTokenResponse: reads the token and when it expires", "[proxy][auth]") {
  const common::FakeClock clock;
  const auto now = clock.now();

  SECTION("token with expires_in") {
    const auto t = proxy::parseTokenResponse(R"({"token":"abc","expires_in":300})", now);
    REQUIRE(t.ok());
    CHECK(t->value == "abc");
    CHECK(t->expires_at == now + 300s);
  }

  SECTION("access_token alone is taken; token wins when both are there") {
    const auto only = proxy::parseTokenResponse(R"({"access_token":"xyz"})", now);
    REQUIRE(only.ok());
    CHECK(only->value == "xyz");
    const auto both = proxy::parseTokenResponse(R"({"token":"t","access_token":"a"})", now);
    REQUIRE(both.ok());
    CHECK(both->value == "t");
  }

  SECTION("expires_in defaults to 60 seconds") {
    const auto t = proxy::parseTokenResponse(R"({"token":"abc"})", now);
    REQUIRE(t.ok());
    CHECK(t->expires_at == now + 60s);
  }

  SECTION("the lifetime counts from an issued_at earlier than now") {
    // The fake clock starts at 2023-11-14T22:13:20Z.
    const auto t = proxy::parseTokenResponse(
        R"({"token":"abc","expires_in":300,"issued_at":"2023-11-14T22:12:20.123456789Z"})", now);
    REQUIRE(t.ok());
    CHECK(t->expires_at == now - 60s + 300s);
  }

  SECTION("issued_at with an offset") {
    const auto t = proxy::parseTokenResponse(
        R"({"token":"abc","expires_in":300,"issued_at":"2023-11-15T00:12:20+02:00"})", now);
    REQUIRE(t.ok());
    CHECK(t->expires_at == now - 60s + 300s);
  }

  SECTION("an issued_at ahead of our clock does not stretch the lifetime") {
    const auto t = proxy::parseTokenResponse(
        R"({"token":"abc","expires_in":300,"issued_at":"2023-11-14T23:13:20Z"})", now);
    REQUIRE(t.ok());
    CHECK(t->expires_at == now + 300s);
  }

  SECTION("answers without a token are refused") {
    CHECK_FALSE(proxy::parseTokenResponse(R"({"expires_in":300})", now).ok());
    CHECK_FALSE(proxy::parseTokenResponse(R"({"token":""})", now).ok());
    CHECK_FALSE(proxy::parseTokenResponse("not json", now).ok());
    CHECK_FALSE(proxy::parseTokenResponse(R"(["token"])", now).ok());
  }
}

TEST_CASE("TokenCache: a token is served until shortly before it expires", "[proxy][auth]") {
  common::FakeClock clock;
  proxy::TokenCache cache(clock);
  cache.put("repository:a:pull", {"ta", clock.now() + 300s});
  cache.put("repository:b:pull", {"tb", clock.now() + 600s});

  CHECK(cache.get("repository:a:pull") == "ta");
  CHECK(cache.get("repository:b:pull") == "tb");
  CHECK_FALSE(cache.get("repository:c:pull"));

  SECTION("inside the margin before expiry it is no longer served") {
    clock.advance(300s - proxy::TokenCache::kExpiryMargin - 1s);
    CHECK(cache.get("repository:a:pull") == "ta");
    clock.advance(1s);
    CHECK_FALSE(cache.get("repository:a:pull"));
    CHECK(cache.get("repository:b:pull") == "tb");
  }

  SECTION("a dropped token is gone, others stay") {
    cache.drop("repository:a:pull");
    CHECK_FALSE(cache.get("repository:a:pull"));
    CHECK(cache.get("repository:b:pull") == "tb");
  }
}

TEST_CASE("tokenRequestUrl: adds service and scopes, percent-encoded", "[proxy][auth]") {
  CHECK(proxy::tokenRequestUrl("https://auth.docker.io/token", "registry.docker.io",
                               {"repository:library/alpine:pull"}) ==
        "https://auth.docker.io/token?service=registry.docker.io"
        "&scope=repository%3Alibrary%2Falpine%3Apull");

  SECTION("a realm with a query of its own and no service") {
    CHECK(proxy::tokenRequestUrl("https://r.example/t?x=1", "", {"a b", "c&d"}) ==
          "https://r.example/t?x=1&scope=a%20b&scope=c%26d");
  }
}

TEST_CASE("basicAuthorization: encodes user:password in base64", "[proxy][auth]") {
  // RFC 7617 section 2.
  CHECK(proxy::basicAuthorization("Aladdin", "open sesame") ==
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  CHECK(proxy::basicAuthorization("u", "") == "Basic dTo=");
}

TEST_CASE("urlHost: the host of an http(s) URL", "[proxy][auth]") {
  CHECK(proxy::urlHost("https://Registry-1.Docker.IO/v2/") == "registry-1.docker.io");
  CHECK(proxy::urlHost("http://user:pw@127.0.0.1:5000/token?x=1") == "127.0.0.1");
  CHECK(proxy::urlHost("http://[::1]:5000/x") == "::1");
  CHECK(proxy::urlHost("https://example.com?q") == "example.com");
  CHECK_FALSE(proxy::urlHost("ftp://example.com/"));
  CHECK_FALSE(proxy::urlHost("example.com/token"));
  CHECK_FALSE(proxy::urlHost("https:///path"));
}

TEST_CASE("sameRegistrableDomain: credentials stay within the upstream's domain", "[proxy][auth]") {
  using proxy::sameRegistrableDomain;

  SECTION("hosts of one registrable domain") {
    CHECK(sameRegistrableDomain("registry-1.docker.io", "auth.docker.io"));
    CHECK(sameRegistrableDomain("quay.io", "quay.io"));
    CHECK(sameRegistrableDomain("Registry.Example.COM", "auth.example.com."));
  }

  SECTION("different registrable domains") {
    CHECK_FALSE(sameRegistrableDomain("registry-1.docker.io", "production.cloudflare.docker.com"));
    CHECK_FALSE(sameRegistrableDomain("docker.io", "evil-docker.io"));
    CHECK_FALSE(sameRegistrableDomain("ghcr.io", "github.com"));
  }

  SECTION("a public suffix is no shared domain") {
    // github.io and co.uk are suffixes: their subdomains belong to different owners.
    CHECK_FALSE(sameRegistrableDomain("alice.github.io", "bob.github.io"));
    CHECK_FALSE(sameRegistrableDomain("a.co.uk", "b.co.uk"));
    CHECK_FALSE(sameRegistrableDomain("co.uk", "a.co.uk"));
  }

  SECTION("IP addresses and single-label hosts must be the very same host") {
    CHECK(sameRegistrableDomain("127.0.0.1", "127.0.0.1"));
    CHECK_FALSE(sameRegistrableDomain("10.0.0.1", "20.0.0.1"));
    CHECK_FALSE(sameRegistrableDomain("127.0.0.1", "localhost"));
    CHECK(sameRegistrableDomain("localhost", "LOCALHOST"));
    CHECK_FALSE(sameRegistrableDomain("registry", "auth"));
    CHECK_FALSE(sameRegistrableDomain("::1", "::2"));
    CHECK_FALSE(sameRegistrableDomain("", ""));
  }
}
