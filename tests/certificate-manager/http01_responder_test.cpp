#include "common/atomic_file.hpp"
#include "common/http_client.hpp"
#include "http01_responder.hpp"
#include "test_util.hpp"

#include <catch2/catch.hpp>

using certmgr_test::TempDir;

namespace {

common::Result<common::HttpResponse, common::HttpError> fetch(const std::string& url) {
  static common::HttpClient client;
  common::HttpRequest request;
  request.url = url;
  request.timeout = std::chrono::seconds(5);
  return client.perform(request);
}

} // namespace

TEST_CASE("Http01Responder: answers tokens while presented, then stops", "[certmgr][http01]") {
  TempDir webroot;
  certmgr::Http01Responder responder("127.0.0.1:0", webroot.path());
  const std::vector<certmgr::ChallengeTask> tasks = {{"a.example", "tok-A_1", "tok-A_1.thumb"}};
  responder.present(tasks);
  REQUIRE(responder.boundPort() > 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(responder.boundPort());

  auto answer = fetch(base + "/.well-known/acme-challenge/tok-A_1");
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(answer->body == "tok-A_1.thumb");
  CHECK(fetch(base + "/.well-known/acme-challenge/other")->status == 404);
  CHECK(fetch(base + "/")->status == 404);
  CHECK(common::readFile(webroot / "tok-A_1") == "tok-A_1.thumb");

  responder.cleanup(tasks);
  CHECK(responder.boundPort() == 0);
  CHECK_FALSE(fetch(base + "/.well-known/acme-challenge/tok-A_1").ok());
  CHECK_FALSE(std::filesystem::exists(webroot / "tok-A_1"));
}

TEST_CASE("Http01Responder: a taken port is an error that suggests the webroot",
          "[certmgr][http01]") {
  certmgr::Http01Responder first("127.0.0.1:0", {});
  const std::vector<certmgr::ChallengeTask> tasks = {{"a.example", "t", "t.k"}};
  first.present(tasks);
  certmgr::Http01Responder second("127.0.0.1:" + std::to_string(first.boundPort()), {});
  CHECK_THROWS_WITH(second.present(tasks), Catch::Contains("CERTMGR_HTTP01_WEBROOT"));
  first.cleanup(tasks);
}
