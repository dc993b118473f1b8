#include "common/clock.hpp"
#include "renewal_policy.hpp"

#include <catch2/catch.hpp>

using certmgr::CurrentPair;
using namespace std::chrono_literals;

namespace {

constexpr auto kDay = 24h;

CurrentPair validPair(common::Clock::TimePoint not_before,
                      common::Clock::TimePoint::duration lifetime, certmgr::Identifiers ids) {
  CurrentPair pair;
  pair.state = CurrentPair::State::Valid;
  certmgr::CertificateInfo info;
  info.not_before = not_before;
  info.not_after = not_before + lifetime;
  ids.normalize();
  info.identifiers = ids;
  pair.info = info;
  return pair;
}

} // namespace

TEST_CASE("renewalTime: 2/3 of the lifetime, 1/2 for 10 days or less", "[certmgr][renewal]") {
  const common::Clock::TimePoint start(std::chrono::seconds(1'700'000'000));
  CHECK(certmgr::renewalTime(start, start + 90 * kDay) == start + 60 * kDay);
  CHECK(certmgr::renewalTime(start, start + 45 * kDay) == start + 30 * kDay);
  CHECK(certmgr::renewalTime(start, start + 10 * kDay) == start + 5 * kDay);
  CHECK(certmgr::renewalTime(start, start + 6 * kDay) == start + 3 * kDay);
  CHECK(certmgr::renewalTime(start, start + 600s) == start + 300s);
  CHECK(certmgr::renewalTime(start, start + 10 * kDay + 3s) == start + (10 * kDay + 3s) * 2 / 3);
}

TEST_CASE("decideRenewal: when and why a certificate is renewed", "[certmgr][renewal]") {
  common::FakeClock clock;
  const certmgr::Identifiers wanted{{"a.example", "b.example"}, {"192.0.2.1"}};
  CurrentPair current = validPair(clock.now(), 90 * kDay, wanted);
  certmgr::RenewalInputs inputs;
  inputs.current = &current;
  inputs.wanted = wanted;

  auto decision = certmgr::decideRenewal(inputs, clock.now());
  CHECK_FALSE(decision.renew);
  CHECK(decision.due == clock.now() + 60 * kDay);
  CHECK(decision.reason.rfind("renewal not due until ", 0) == 0);

  SECTION("one second before the due time it is not due, at the due time it is") {
    clock.advance(60 * kDay - 1s);
    CHECK_FALSE(certmgr::decideRenewal(inputs, clock.now()).renew);
    clock.advance(1s);
    decision = certmgr::decideRenewal(inputs, clock.now());
    CHECK(decision.renew);
    CHECK(decision.reason.find("renewal due since") != std::string::npos);
  }

  SECTION("a changed name renews at once and says which") {
    inputs.wanted.dns_names = {"a.example", "c.example"};
    decision = certmgr::decideRenewal(inputs, clock.now());
    CHECK(decision.renew);
    CHECK(decision.reason == "names changed, renewing: missing=c.example extra=b.example");
  }

  SECTION("a changed IP renews at once") {
    inputs.wanted.ip_addresses = {"192.0.2.2"};
    CHECK(certmgr::decideRenewal(inputs, clock.now()).renew);
  }

  SECTION("names compare case-insensitively and in any order") {
    certmgr::Identifiers shuffled{{"B.example", "A.EXAMPLE."}, {"192.0.2.1"}};
    shuffled.normalize();
    inputs.wanted = shuffled;
    CHECK_FALSE(certmgr::decideRenewal(inputs, clock.now()).renew);
  }

  SECTION("missing, unreadable and mismatched files renew at once") {
    current.state = CurrentPair::State::Missing;
    CHECK(certmgr::decideRenewal(inputs, clock.now()).renew);
    current.state = CurrentPair::State::Unreadable;
    CHECK(certmgr::decideRenewal(inputs, clock.now()).renew);
    current.state = CurrentPair::State::KeyMismatch;
    decision = certmgr::decideRenewal(inputs, clock.now());
    CHECK(decision.renew);
    CHECK(decision.reason == "key and certificate do not match, renewing");
  }

  SECTION("an issuer's objection renews at once") {
    inputs.rejected = "not signed by the current lan ca";
    decision = certmgr::decideRenewal(inputs, clock.now());
    CHECK(decision.renew);
    CHECK(decision.reason.find("not signed by the current lan ca") != std::string::npos);
  }

  SECTION("an ARI window replaces the 2/3 rule") {
    inputs.window = certmgr::RenewalWindow{clock.now() + 10 * kDay, clock.now() + 12 * kDay};
    inputs.window_fraction = 0.5;
    decision = certmgr::decideRenewal(inputs, clock.now());
    CHECK_FALSE(decision.renew);
    CHECK(decision.due == clock.now() + 11 * kDay);
    CHECK(decision.reason.find("ari window") != std::string::npos);
    clock.advance(11 * kDay);
    CHECK(certmgr::decideRenewal(inputs, clock.now()).renew);
  }

  SECTION("a window in the past means now, even before the 2/3 time") {
    inputs.window = certmgr::RenewalWindow{clock.now() - 2 * kDay, clock.now() - kDay};
    CHECK(certmgr::decideRenewal(inputs, clock.now()).renew);
  }
}

TEST_CASE("decideRenewal: a short-lived certificate is due at half its life",
          "[certmgr][renewal]") {
  common::FakeClock clock;
  const certmgr::Identifiers wanted{{"a.example"}, {}};
  CurrentPair current = validPair(clock.now(), 600s, wanted);
  certmgr::RenewalInputs inputs{&current, wanted, std::nullopt, std::nullopt, 0.5};

  clock.advance(299s);
  CHECK_FALSE(certmgr::decideRenewal(inputs, clock.now()).renew);
  clock.advance(1s);
  CHECK(certmgr::decideRenewal(inputs, clock.now()).renew);
  clock.advance(400s);
  const auto expired = certmgr::decideRenewal(inputs, clock.now());
  CHECK(expired.renew);
  CHECK(expired.reason.find("expired") != std::string::npos);
}

TEST_CASE("timeInWindow: a point inside the window", "[certmgr][renewal]") {
  const common::Clock::TimePoint start(std::chrono::seconds(1'700'000'000));
  const certmgr::RenewalWindow window{start, start + 100s};
  CHECK(certmgr::timeInWindow(window, 0.0) == start);
  CHECK(certmgr::timeInWindow(window, 0.25) == start + 25s);
  CHECK(certmgr::timeInWindow(window, 2.0) == start + 100s);
  CHECK(certmgr::timeInWindow({start, start - 5s}, 0.5) == start);
}
