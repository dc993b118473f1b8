#include "common/atomic_file.hpp"
#include "dns01_hook.hpp"
#include "test_util.hpp"

#include <catch2/catch.hpp>

using certmgr_test::TempDir;
using namespace std::chrono_literals;

TEST_CASE("runHook: lego's exec contract through /bin/sh", "[certmgr][dns01]") {
  TempDir dir;
  const auto log = (dir / "calls").string();
  const auto result = certmgr::runHook("printf '%s|' >>" + log,
                                       {"present", "_acme-challenge.a.example.", "v a"}, 5s);
  CHECK(result.exit_code == 0);
  CHECK(common::readFile(log) == "present|_acme-challenge.a.example.|v a|");

  SECTION("exit status and output come back") {
    const auto failed = certmgr::runHook("echo boom; exit 3", {}, 5s);
    CHECK(failed.exit_code == 3);
    CHECK(failed.output == "boom\n");
  }

  SECTION("a hook that hangs is killed at the timeout") {
    const auto start = std::chrono::steady_clock::now();
    const auto hung = certmgr::runHook("sleep 30", {}, 300ms);
    CHECK(hung.timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 10s);
  }
}

TEST_CASE("dns01Record: RFC 8555 §8.4 name and value", "[certmgr][dns01]") {
  // The value is base64url(SHA-256(key authorization)).
  const auto [name, value] = certmgr::dns01Record({"a.example", "tok", "tok.thumb"});
  CHECK(name == "_acme-challenge.a.example.");
  std::string expected;
  REQUIRE(certmgr_test::runCommand("printf tok.thumb | openssl dgst -sha256 -binary | "
                                   "basenc --base64url | tr -d '=\\n'",
                                   expected) == 0);
  CHECK(value == expected);
  CHECK(value.size() == 43);
}

TEST_CASE("Dns01Hook: a failing present names the record; cleanup runs for every task",
          "[certmgr][dns01]") {
  TempDir dir;
  const auto log = (dir / "calls").string();
  certmgr::Dns01Options options;
  options.command = "sh -c 'echo \"$0 $1\" >>" + log + "; [ \"$0\" = cleanup ]'";
  options.skip_propagation = true;
  certmgr::Dns01Hook hook(options);
  const std::vector<certmgr::ChallengeTask> tasks = {{"a.example", "t1", "t1.k"},
                                                     {"b.example", "t2", "t2.k"}};
  CHECK_THROWS_WITH(hook.present(tasks), Catch::Contains("fqdn=_acme-challenge.a.example.") &&
                                             Catch::Contains("exit=1"));
  hook.cleanup(tasks);
  CHECK(common::readFile(log) == "present _acme-challenge.a.example.\n"
                                 "cleanup _acme-challenge.a.example.\n"
                                 "cleanup _acme-challenge.b.example.\n");
}
