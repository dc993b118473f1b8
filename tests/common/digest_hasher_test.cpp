#include "common/digest_hasher.hpp"
#include "common/errors.hpp"

#include <catch2/catch.hpp>

TEST_CASE("DigestHasher: hashes a stream in pieces like the whole at once", "[common][digest]") {
  common::DigestHasher hasher("sha256");
  hasher.update("a");
  hasher.update("bc");
  CHECK(hasher.finish() ==
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(common::digestOf("sha256", "abc") ==
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("DigestHasher: sha512 is supported, other algorithms are refused", "[common][digest]") {
  CHECK(common::digestOf("sha512", "").rfind("sha512:cf83e1357eefb8bdf1542850d66d8007", 0) == 0);
  CHECK(common::digestOf("sha512", "").size() == 7 + 128);
  CHECK(common::DigestHasher::supports("sha256"));
  CHECK_FALSE(common::DigestHasher::supports("md5"));
  CHECK_THROWS_WITH(common::DigestHasher("md5"), Catch::Matchers::Contains("expected sha256"));
}

TEST_CASE("DigestHasher: a copy goes on from the state it was made in", "[common][digest]") {
  common::DigestHasher hasher("sha256");
  hasher.update("a");
  const auto twin = hasher.copy();
  twin->update("bc");
  hasher.update("xyz");
  CHECK(twin->finish() == common::digestOf("sha256", "abc"));
  CHECK(hasher.finish() == common::digestOf("sha256", "axyz"));
}
