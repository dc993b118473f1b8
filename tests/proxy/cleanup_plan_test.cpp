#include "cleanup_plan.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using proxy::CacheInventory;
using proxy::Digest;

namespace {

const auto kStart = common::Clock::TimePoint(std::chrono::seconds(1'700'000'000));

Digest digestOf(const std::string& name) {
  return Digest::sha256Of(name);
}

// An inventory built by hand: images made of named layers, each used at a given minute.
struct Cache {
  CacheInventory inventory;

  void blob(const std::string& name, std::uint64_t size, int minute = 0) {
    inventory.content[digestOf(name)] = {
        size, kStart + std::chrono::minutes(minute), false, {}, {}};
    inventory.bytes += size;
  }

  // A manifest of 100 bytes naming `parts`, tagged `tag` in docker.io/library/<repository>.
  void manifest(const std::string& name, std::vector<std::string> parts, int minute,
                const std::string& repository = "", const std::string& tag = "") {
    std::vector<Digest> references;
    for (const auto& part : parts) {
      references.push_back(digestOf(part));
    }
    inventory.content[digestOf(name)] = {100, kStart + std::chrono::minutes(minute), true,
                                         "application/vnd.oci.image.manifest.v1+json", references};
    inventory.bytes += 100;
    if (repository.empty()) {
      return;
    }
    auto& entry = repo(repository);
    entry.tags.insert_or_assign(tag, proxy::TagRecord{digestOf(name), "", 100, kStart});
    entry.links.push_back(digestOf(name));
    for (const auto& reference : references) {
      entry.links.push_back(reference);
    }
  }

  proxy::StoredRepository& repo(const std::string& name) {
    const auto parsed = *proxy::RepositoryName::parse("library/" + name);
    for (auto& entry : inventory.repositories) {
      if (entry.repository == parsed) {
        return entry;
      }
    }
    inventory.repositories.push_back({"docker.io", parsed, {}, {}});
    return inventory.repositories.back();
  }
};

// The digests a plan deletes, as the names given to them.
std::set<std::string> removedNames(const proxy::CleanupPlan& plan,
                                   std::initializer_list<std::string> candidates) {
  std::set<std::string> out;
  for (const auto& name : candidates) {
    if (std::find(plan.content.begin(), plan.content.end(), digestOf(name)) != plan.content.end()) {
      out.insert(name);
    }
  }
  return out;
}

// Three images of 1000 bytes of layers each, used at minutes 1, 2 and 3; b and c share a layer.
Cache threeImages() {
  Cache cache;
  cache.blob("layer-a", 1000);
  cache.blob("layer-b", 500);
  cache.blob("shared", 500);
  cache.blob("layer-c", 500);
  cache.manifest("a", {"layer-a"}, 1, "a", "v1");
  cache.manifest("b", {"layer-b", "shared"}, 2, "b", "v1");
  cache.manifest("c", {"layer-c", "shared"}, 3, "c", "v1");
  return cache;
}

const std::initializer_list<std::string> kAll = {"a",       "b",      "c",      "layer-a",
                                                 "layer-b", "shared", "layer-c"};

} // namespace

TEST_CASE("planCleanup: under the limit nothing goes", "[proxy][cleanup]") {
  const auto cache = threeImages();
  proxy::CleanupPolicy policy;
  policy.limit = 10'000;
  const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
  CHECK(plan.empty());
  CHECK(plan.images.empty());
  CHECK(plan.bytes_before == 2800);
}

TEST_CASE("planCleanup: over the limit the least recently used image goes first",
          "[proxy][cleanup]") {
  auto cache = threeImages();
  proxy::CleanupPolicy policy;
  policy.limit = 2500; // high 95% = 2375 < 2800; low 85% = 2125

  SECTION("the oldest image and only what no kept image names") {
    const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
    REQUIRE(plan.images.size() == 1);
    CHECK(plan.images[0].root == digestOf("a"));
    CHECK(plan.images[0].reason == proxy::RemovalReason::OverLimit);
    CHECK(plan.images[0].names == std::vector<std::string>{"docker.io/library/a:v1"});
    CHECK(plan.images[0].freed == 1100);
    CHECK(removedNames(plan, kAll) == std::set<std::string>{"a", "layer-a"});
    REQUIRE(plan.tags.size() == 1);
    CHECK(plan.tags[0].name == "v1");
    CHECK(plan.links.size() == 2);
    CHECK(plan.bytes_freed == 1100);
  }

  SECTION("a layer shared with a kept image stays when its other image goes") {
    policy.limit = 1800; // low 1530: a (1100) then b (600 of its own) must go
    const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
    REQUIRE(plan.images.size() == 2);
    CHECK(plan.images[1].root == digestOf("b"));
    CHECK(plan.images[1].freed == 600);
    CHECK(removedNames(plan, kAll) == std::set<std::string>{"a", "layer-a", "b", "layer-b"});
  }

  SECTION("a pull by digest of the oldest image makes it the newest") {
    cache.inventory.content.at(digestOf("a")).last_used = kStart + 10min;
    const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
    REQUIRE(plan.images.size() == 2);
    CHECK(plan.images[0].root == digestOf("b"));
    CHECK(plan.images[1].root == digestOf("c"));
    CHECK(removedNames(plan, kAll).count("layer-a") == 0);
  }

  SECTION("a pinned image never goes, the next one does") {
    policy.pinned = {digestOf("a")};
    const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
    REQUIRE_FALSE(plan.images.empty());
    CHECK(plan.images[0].root == digestOf("b"));
    CHECK(removedNames(plan, kAll).count("layer-a") == 0);
  }

  SECTION("the image used last stays even when the limit cannot be met") {
    policy.limit = 100;
    const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
    CHECK(plan.images.size() == 2);
    CHECK(removedNames(plan, kAll).count("c") == 0);
    CHECK(removedNames(plan, kAll).count("shared") == 0);
    CHECK_FALSE(plan.shortfall.empty());
  }

  SECTION("the same inventory always gives the same plan") {
    const auto first = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
    const auto second = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
    CHECK(first.content == second.content);
  }
}

TEST_CASE("planCleanup: an index goes with the children no kept image uses", "[proxy][cleanup]") {
  Cache cache;
  cache.blob("amd64-layer", 1000);
  cache.blob("arm64-layer", 1000);
  cache.blob("common", 200);
  cache.manifest("amd64", {"amd64-layer", "common"}, 1);
  cache.manifest("arm64", {"arm64-layer", "common"}, 1);
  cache.manifest("index", {"amd64", "arm64"}, 1, "multi", "v1");
  cache.blob("other-layer", 300);
  cache.manifest("other", {"other-layer", "common"}, 5, "other", "v1");
  proxy::CleanupPolicy policy;
  policy.limit = 1000;

  const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
  REQUIRE(plan.images.size() == 1);
  CHECK(plan.images[0].root == digestOf("index"));
  CHECK(removedNames(plan, {"index", "amd64", "arm64", "amd64-layer", "arm64-layer", "common",
                            "other", "other-layer"}) ==
        std::set<std::string>{"index", "amd64", "arm64", "amd64-layer", "arm64-layer"});

  SECTION("a child pulled on its own by digest keeps the whole index recent") {
    cache.inventory.content.at(digestOf("arm64")).last_used = kStart + 10min;
    const auto later = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
    REQUIRE_FALSE(later.images.empty());
    CHECK(later.images[0].root == digestOf("other"));
  }
}

TEST_CASE("planCleanup: expiry counts from the last use", "[proxy][cleanup]") {
  auto cache = threeImages();
  proxy::CleanupPolicy policy;
  policy.expire_after = 30min;

  CHECK(proxy::planCleanup(cache.inventory, policy, kStart + 30min).images.empty());

  const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 32min + 30s);
  REQUIRE(plan.images.size() == 2);
  CHECK(plan.images[0].root == digestOf("a"));
  CHECK(plan.images[0].reason == proxy::RemovalReason::Expired);
  CHECK(plan.images[1].root == digestOf("b"));
  CHECK(removedNames(plan, kAll) == std::set<std::string>{"a", "layer-a", "b", "layer-b"});

  SECTION("a pinned image does not expire") {
    policy.pinned = {digestOf("a")};
    const auto pinned = proxy::planCleanup(cache.inventory, policy, kStart + 5h);
    CHECK(removedNames(pinned, kAll).count("a") == 0);
    CHECK(removedNames(pinned, kAll).count("layer-a") == 0);
  }
}

TEST_CASE("planCleanup: too little free space evicts until min_free and some headroom are free",
          "[proxy][cleanup]") {
  auto cache = threeImages();
  cache.inventory.space = proxy::StorageSpace{1'000'000, 9'500};
  proxy::CleanupPolicy policy;
  policy.min_free = 10'000;
  const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
  REQUIRE_FALSE(plan.images.empty());
  CHECK(plan.images[0].reason == proxy::RemovalReason::LowSpace);
  CHECK(plan.images.size() == 2); // 9'500 + 1'100 + 600 < 12'000: all it can, then a shortfall
  CHECK_FALSE(plan.shortfall.empty());

  cache.inventory.space->available = 20'000;
  CHECK(proxy::planCleanup(cache.inventory, policy, kStart + 1h).empty());
}

TEST_CASE("planCleanup: content no manifest names is its own unit", "[proxy][cleanup]") {
  auto cache = threeImages();
  cache.blob("stray", 2000, 0);
  proxy::CleanupPolicy policy;
  policy.limit = 4000; // 4800 > 3800; removing the stray blob reaches 2800 < 3400
  const auto plan = proxy::planCleanup(cache.inventory, policy, kStart + 1h);
  REQUIRE(plan.images.size() == 1);
  CHECK(plan.images[0].root == digestOf("stray"));
  CHECK_FALSE(plan.images[0].names.size());
}

TEST_CASE("planDeletion: a tag, an image or a repository", "[proxy][cleanup]") {
  auto cache = threeImages();
  // "b" is also in a second repository: deleting it from one keeps its content.
  auto& alias = cache.repo("alias");
  alias.tags.insert_or_assign("v1", proxy::TagRecord{digestOf("b"), "", 100, kStart});
  alias.links = {digestOf("b"), digestOf("layer-b"), digestOf("shared")};
  const auto repo = [](const std::string& name) {
    return *proxy::RepositoryName::parse("library/" + name);
  };

  SECTION("a tag: only the tag") {
    const auto plan =
        proxy::planDeletion(cache.inventory, {"docker.io", repo("a"), proxy::Tag::parse("v1"), {}});
    REQUIRE(plan.tags.size() == 1);
    CHECK(plan.content.empty());
    CHECK(plan.links.empty());
  }

  SECTION("an image: its tags and links in the repository, and content nobody else keeps") {
    const auto plan =
        proxy::planDeletion(cache.inventory, {"docker.io", repo("a"), {}, digestOf("a")});
    CHECK(plan.tags.size() == 1);
    CHECK(plan.links.size() == 2);
    CHECK(removedNames(plan, kAll) == std::set<std::string>{"a", "layer-a"});
    REQUIRE(plan.images.size() == 1);
    CHECK(plan.images[0].freed == 1100);
  }

  SECTION("an image another repository keeps: links and tags go, content stays") {
    const auto plan =
        proxy::planDeletion(cache.inventory, {"docker.io", repo("b"), {}, digestOf("b")});
    CHECK(plan.links.size() == 3);
    CHECK(plan.content.empty());
  }

  SECTION("a repository: everything of it; a layer another image uses stays") {
    const auto plan = proxy::planDeletion(cache.inventory, {"docker.io", repo("c"), {}, {}});
    REQUIRE(plan.repositories.size() == 1);
    CHECK(removedNames(plan, kAll) == std::set<std::string>{"c", "layer-c"});
  }

  SECTION("what is not cached: nothing") {
    CHECK(proxy::planDeletion(cache.inventory, {"docker.io", repo("zzz"), {}, {}}).empty());
    CHECK(proxy::planDeletion(cache.inventory, {"ghcr.io", repo("a"), {}, {}}).empty());
  }
}
