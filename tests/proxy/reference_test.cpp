#include "reference.hpp"

#include <catch2/catch.hpp>

using proxy::Digest;
using proxy::RepositoryName;
using proxy::Tag;

TEST_CASE("RepositoryName: accepts the distribution spec's grammar", "[proxy][reference]") {
  for (const char* name : {"alpine", "library/alpine", "a/b/c/d", "my-app", "my--app", "my_app",
                           "my__app", "my.app", "a0/b1", "127.0.0.1/x"}) {
    INFO(name);
    CHECK(RepositoryName::parse(name));
  }
}

TEST_CASE("RepositoryName: refuses what could leave a path or break a URL", "[proxy][reference]") {
  for (const char* name : {"", "Alpine", "../etc", "a/../b", "a//b", "/a", "a/", ".a", "a.",
                           "a___b", "a..b", "a%2e%2e", "a b", "a?b", "a\\b", "-a", "a_-b"}) {
    INFO(name);
    CHECK_FALSE(RepositoryName::parse(name));
  }
  CHECK_FALSE(RepositoryName::parse(std::string(256, 'a')));
  CHECK(RepositoryName::parse(std::string(255, 'a')));
}

TEST_CASE("Digest: sha256 and sha512 of the right length in lowercase hex", "[proxy][reference]") {
  const std::string hex64(64, 'a');
  CHECK(Digest::parse("sha256:" + hex64));
  CHECK(Digest::parse("sha512:" + std::string(128, '0')));

  SECTION("everything else is refused") {
    CHECK_FALSE(Digest::parse("sha256:" + std::string(63, 'a')));
    CHECK_FALSE(Digest::parse("sha256:" + std::string(64, 'A')));
    CHECK_FALSE(Digest::parse("sha256:" + std::string(63, 'a') + "/"));
    CHECK_FALSE(Digest::parse("md5:" + std::string(32, 'a')));
    CHECK_FALSE(Digest::parse("sha256:../../" + std::string(58, 'a')));
    CHECK_FALSE(Digest::parse("sha256"));
    CHECK_FALSE(Digest::parse(""));
  }
}

TEST_CASE("Digest: sha256Of hashes bytes like sha256sum", "[proxy][reference]") {
  CHECK(Digest::sha256Of("").str() ==
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Digest::sha256Of("abc").encoded() ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Tag: the spec's tag grammar", "[proxy][reference]") {
  CHECK(Tag::parse("latest"));
  CHECK(Tag::parse("3.20.1-alpine_x"));
  CHECK(Tag::parse("_x"));
  CHECK_FALSE(Tag::parse(".hidden"));
  CHECK_FALSE(Tag::parse("-x"));
  CHECK_FALSE(Tag::parse("a/b"));
  CHECK_FALSE(Tag::parse(std::string(129, 'a')));
  CHECK_FALSE(Tag::parse(""));
}

TEST_CASE("parseReference: a colon makes it a digest", "[proxy][reference]") {
  const auto digest = "sha256:" + std::string(64, 'b');
  REQUIRE(proxy::parseReference(digest));
  CHECK(std::holds_alternative<Digest>(*proxy::parseReference(digest)));
  CHECK(std::holds_alternative<Tag>(*proxy::parseReference("v1")));
  CHECK_FALSE(proxy::parseReference("sha256:short"));
  CHECK(proxy::toString(*proxy::parseReference("v1")) == "v1");
}
