#include "range.hpp"

#include <catch2/catch.hpp>

using proxy::parseRange;
using Kind = proxy::RangeRequest::Kind;

TEST_CASE("parseRange: single byte ranges resolve against the size", "[proxy][range]") {
  CHECK(parseRange(std::nullopt, 100).kind == Kind::Full);

  auto r = parseRange("bytes=10-19", 100);
  REQUIRE(r.kind == Kind::Partial);
  CHECK(r.range.first == 10);
  CHECK(r.range.last == 19);
  CHECK(r.range.length() == 10);

  SECTION("an open end runs to the last byte (resume)") {
    r = parseRange("bytes=40-", 100);
    REQUIRE(r.kind == Kind::Partial);
    CHECK(r.range.first == 40);
    CHECK(r.range.last == 99);
  }
  SECTION("a last position past the end is clipped") {
    r = parseRange("bytes=90-500", 100);
    REQUIRE(r.kind == Kind::Partial);
    CHECK(r.range.last == 99);
  }
  SECTION("a suffix range takes the last bytes") {
    r = parseRange("bytes=-30", 100);
    REQUIRE(r.kind == Kind::Partial);
    CHECK(r.range.first == 70);
    CHECK(r.range.last == 99);
    CHECK(parseRange("bytes=-300", 100).range.first == 0);
  }
}

TEST_CASE("parseRange: a start at or past the end is unsatisfiable", "[proxy][range]") {
  CHECK(parseRange("bytes=100-", 100).kind == Kind::Unsatisfiable);
  CHECK(parseRange("bytes=999999999-", 100).kind == Kind::Unsatisfiable);
  CHECK(parseRange("bytes=-0", 100).kind == Kind::Unsatisfiable);
  CHECK(parseRange("bytes=0-", 0).kind == Kind::Unsatisfiable);
}

TEST_CASE("parseRange: headers it cannot honour are ignored, as RFC 9110 allows",
          "[proxy][range]") {
  for (const char* header :
       {"items=0-1", "bytes=a-b", "bytes=5-2", "bytes=0-1,5-6", "bytes=", "bytes=-", "bytes=1"}) {
    INFO(header);
    CHECK(parseRange(header, 100).kind == Kind::Full);
  }
}
