#include "acme_client.hpp"
#include "acme_messages.hpp"

#include <catch2/catch.hpp>

TEST_CASE("parseDirectory: endpoints, meta and renewalInfo", "[certmgr][acme]") {
  // Pebble 2.4's directory: no renewalInfo.
  const auto pebble = certmgr::parseDirectory(R"({
    "keyChange": "https://127.0.0.1:14000/rollover-account-key",
    "meta": {"externalAccountRequired": true, "termsOfService": "data:text/plain,Do%20what%20thou%20wilt"},
    "newAccount": "https://127.0.0.1:14000/sign-me-up",
    "newNonce": "https://127.0.0.1:14000/nonce-plz",
    "newOrder": "https://127.0.0.1:14000/order-plz",
    "revokeCert": "https://127.0.0.1:14000/revoke-cert"})");
  CHECK(pebble.new_nonce == "https://127.0.0.1:14000/nonce-plz");
  CHECK(pebble.new_account == "https://127.0.0.1:14000/sign-me-up");
  CHECK(pebble.new_order == "https://127.0.0.1:14000/order-plz");
  CHECK(pebble.external_account_required);
  CHECK(pebble.renewal_info.empty());

  const auto le = certmgr::parseDirectory(R"({
    "newNonce": "https://ca/n", "newAccount": "https://ca/a", "newOrder": "https://ca/o",
    "renewalInfo": "https://ca/draft-ietf-acme-ari-03/renewalInfo"})");
  CHECK(le.renewal_info == "https://ca/draft-ietf-acme-ari-03/renewalInfo");
  CHECK_FALSE(le.external_account_required);

  SECTION("missing endpoints and non-objects are errors that say what is wrong") {
    CHECK_THROWS_WITH(certmgr::parseDirectory(R"({"newNonce": "x"})"),
                      Catch::Contains("\"newAccount\" missing"));
    CHECK_THROWS_AS(certmgr::parseDirectory("[]"), certmgr::AcmeError);
    CHECK_THROWS_AS(certmgr::parseDirectory("<html>"), certmgr::AcmeError);
  }
}

TEST_CASE("parseOrder and parseAuthorization: RFC 8555 §7.1 objects", "[certmgr][acme]") {
  const auto order = certmgr::parseOrder(R"({
    "status": "pending", "expires": "2026-12-10T00:00:00Z",
    "identifiers": [{"type": "dns", "value": "a.example"}, {"type": "ip", "value": "192.0.2.1"}],
    "authorizations": ["https://ca/authz/1", "https://ca/authz/2"],
    "finalize": "https://ca/finalize/1"})");
  CHECK(order.status == "pending");
  REQUIRE(order.identifiers.size() == 2);
  CHECK(order.identifiers[1].type == "ip");
  CHECK(order.authorizations ==
        std::vector<std::string>{"https://ca/authz/1", "https://ca/authz/2"});
  CHECK(order.finalize == "https://ca/finalize/1");
  CHECK(order.certificate.empty());
  CHECK_FALSE(order.error);

  const auto invalid = certmgr::parseOrder(R"({
    "status": "invalid", "authorizations": [], "finalize": "https://ca/f",
    "error": {"type": "urn:ietf:params:acme:error:unauthorized", "detail": "no TXT record"}})");
  REQUIRE(invalid.error);
  CHECK(invalid.error->describe() == "urn:ietf:params:acme:error:unauthorized: no TXT record");

  const auto authz = certmgr::parseAuthorization(R"({
    "status": "pending", "identifier": {"type": "dns", "value": "example.org"}, "wildcard": true,
    "challenges": [
      {"type": "http-01", "url": "https://ca/chall/1", "token": "tok1", "status": "pending"},
      {"type": "dns-01", "url": "https://ca/chall/2", "token": "tok2", "status": "invalid",
       "error": {"type": "urn:ietf:params:acme:error:dns", "detail": "NXDOMAIN"}}]})");
  CHECK(authz.identifier.value == "example.org");
  CHECK(authz.wildcard);
  REQUIRE(authz.challenges.size() == 2);
  CHECK(authz.challenges[1].token == "tok2");
  REQUIRE(authz.challenges[1].error);
  CHECK(authz.challenges[1].error->detail == "NXDOMAIN");

  CHECK_THROWS_WITH(certmgr::parseOrder(R"({"status": "pending", "finalize": "x"})"),
                    Catch::Contains("authorizations"));
}

TEST_CASE("parseProblem: problem documents and anything else", "[certmgr][acme]") {
  const auto bad_nonce = certmgr::parseProblem(
      R"({"type": "urn:ietf:params:acme:error:badNonce", "detail": "JWS has an invalid anti-replay nonce", "status": 400})",
      400);
  CHECK(bad_nonce.type == "urn:ietf:params:acme:error:badNonce");
  const auto rejected = certmgr::parseProblem(
      R"({"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "some rejected",
          "subproblems": [{"type": "x", "detail": "localhost is forbidden"}]})",
      400);
  CHECK(rejected.describe().find("localhost is forbidden") != std::string::npos);
  CHECK(certmgr::parseProblem("<html>bad gateway</html>", 502).describe() == "status 502");
}

TEST_CASE("parseRenewalInfo and newOrderPayload: RFC 9773", "[certmgr][acme]") {
  const auto window = certmgr::parseRenewalInfo(
      R"({"suggestedWindow": {"start": "2026-01-02T03:04:05Z", "end": "2026-01-03T03:04:05.5Z"},
          "explanationURL": "https://ca/why"})");
  CHECK(window.end - window.start == std::chrono::hours(24) + std::chrono::milliseconds(500));
  CHECK_THROWS_AS(
      certmgr::parseRenewalInfo(
          R"({"suggestedWindow": {"start": "2026-01-03T00:00:00Z", "end": "2026-01-02T00:00:00Z"}})"),
      certmgr::AcmeError);

  const certmgr::Identifiers ids{{"a.example"}, {"192.0.2.1"}};
  CHECK(
      certmgr::newOrderPayload(ids, std::nullopt) ==
      R"({"identifiers":[{"type":"dns","value":"a.example"},{"type":"ip","value":"192.0.2.1"}]})");
  CHECK(certmgr::newOrderPayload(ids, std::string("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"))
            .find(R"("replaces":"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")") != std::string::npos);
}

TEST_CASE("AcmeClient::parseRetryAfter: seconds or an HTTP date", "[certmgr][acme]") {
  CHECK(certmgr::AcmeClient::parseRetryAfter("120") == std::chrono::seconds(120));
  CHECK(certmgr::AcmeClient::parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT") ==
        std::chrono::seconds(0));
  CHECK_FALSE(certmgr::AcmeClient::parseRetryAfter("soon"));
  CHECK_FALSE(certmgr::AcmeClient::parseRetryAfter(""));
}
