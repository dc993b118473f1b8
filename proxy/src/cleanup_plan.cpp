#include "cleanup_plan.hpp"

#include <algorithm>
#include <map>

namespace proxy {
namespace {

// Between a cleanup for low space and the next, at least this share of min_free more is freed,
// so the cleanup does not run again at the next download.
constexpr std::uint64_t kMinFreeHeadroomPercent = 20;

// "docker.io/library/alpine:3.20" for every tag, by the digest it points at.
std::map<Digest, std::vector<std::string>> tagNames(const CacheInventory& inventory) {
  std::map<Digest, std::vector<std::string>> names;
  for (const auto& repository : inventory.repositories) {
    for (const auto& [tag, record] : repository.tags) {
      names[record.digest].push_back(repository.upstream + "/" + repository.repository.str() + ":" +
                                     tag);
    }
  }
  return names;
}

// The tags and links that point at removed content, in every repository.
void dropReferences(const CacheInventory& inventory, CleanupPlan& plan) {
  const std::set<Digest> removed(plan.content.begin(), plan.content.end());
  for (const auto& repository : inventory.repositories) {
    for (const auto& [tag, record] : repository.tags) {
      if (removed.count(record.digest) > 0) {
        plan.tags.push_back({repository.upstream, repository.repository, tag});
      }
    }
    for (const auto& link : repository.links) {
      if (removed.count(link) > 0) {
        plan.links.push_back({repository.upstream, repository.repository, link.str()});
      }
    }
  }
}

std::uint64_t share(std::uint64_t bytes, double percent) {
  return static_cast<std::uint64_t>(static_cast<long double>(bytes) * percent / 100.0L);
}

} // namespace

const char* toString(RemovalReason reason) {
  switch (reason) {
  case RemovalReason::Expired:
    return "expired";
  case RemovalReason::OverLimit:
    return "over-limit";
  case RemovalReason::LowSpace:
    return "low-space";
  case RemovalReason::Deleted:
    return "deleted";
  }
  return "unknown";
}

CleanupPlan planCleanup(const CacheInventory& inventory, const CleanupPolicy& policy,
                        common::Clock::TimePoint now) {
  CleanupPlan plan;
  plan.bytes_before = inventory.bytes;
  plan.limit = policy.limit;
  const auto images = cachedImages(inventory);
  const auto names = tagNames(inventory);

  // How many kept images hold each piece of content; pinned images hold theirs for good.
  std::map<Digest, int> holders;
  for (const auto& image : images) {
    for (const auto& digest : image.content) {
      ++holders[digest];
    }
  }
  for (const auto& pinned : policy.pinned) {
    for (const auto& digest : closureOf(inventory, pinned)) {
      ++holders[digest];
    }
  }

  std::vector<bool> gone(images.size(), false);
  const auto remove = [&](std::size_t i, RemovalReason reason) {
    const auto& image = images[i];
    PlannedRemoval removal{image.root, reason, image.last_used, 0, {}};
    if (auto it = names.find(image.root); it != names.end()) {
      removal.names = it->second;
    }
    for (const auto& digest : image.content) {
      if (--holders[digest] == 0) {
        plan.content.push_back(digest);
        removal.freed += inventory.content.at(digest).size;
      }
    }
    plan.bytes_freed += removal.freed;
    plan.images.push_back(std::move(removal));
    gone[i] = true;
  };
  const auto removable = [&](std::size_t i) {
    return !gone[i] && policy.pinned.count(images[i].root) == 0;
  };

  if (policy.expire_after.count() > 0) {
    for (std::size_t i = 0; i < images.size(); ++i) {
      if (removable(i) && now - images[i].last_used >= policy.expire_after) {
        remove(i, RemovalReason::Expired);
      }
    }
  }

  const auto content_bytes = [&] { return inventory.bytes - plan.bytes_freed; };
  const bool over_limit =
      policy.limit > 0 && content_bytes() > share(policy.limit, policy.high_watermark);
  const bool low_space = policy.min_free > 0 && inventory.space &&
                         inventory.space->available + plan.bytes_freed < policy.min_free;
  if (over_limit || low_space) {
    const auto wanted_free = policy.min_free + policy.min_free * kMinFreeHeadroomPercent / 100;
    const auto done = [&] {
      const bool under_limit =
          !over_limit || content_bytes() <= share(policy.limit, policy.low_watermark);
      const bool enough_space =
          !low_space || inventory.space->available + plan.bytes_freed >= wanted_free;
      return under_limit && enough_space;
    };
    // The image used last stays: it is being pulled, or was just now.
    for (std::size_t i = 0; i + 1 < images.size() && !done(); ++i) {
      if (removable(i)) {
        remove(i, over_limit ? RemovalReason::OverLimit : RemovalReason::LowSpace);
      }
    }
    if (!done()) {
      plan.shortfall = "the limits cannot be met: what is left is pinned or was used last";
    }
  }

  dropReferences(inventory, plan);
  return plan;
}

CleanupPlan planDeletion(const CacheInventory& inventory, const Deletion& deletion) {
  CleanupPlan plan;
  plan.bytes_before = inventory.bytes;
  const auto found = std::find_if(inventory.repositories.begin(), inventory.repositories.end(),
                                  [&](const auto& repository) {
                                    return repository.upstream == deletion.upstream &&
                                           repository.repository == deletion.repository;
                                  });
  if (found == inventory.repositories.end()) {
    return plan;
  }
  const auto& repository = *found;
  const auto entry = [&](std::string name) {
    return RepositoryEntryRef{repository.upstream, repository.repository, std::move(name)};
  };

  if (deletion.tag && !deletion.digest) {
    if (repository.tags.count(deletion.tag->str()) > 0) {
      plan.tags.push_back(entry(deletion.tag->str()));
    }
    return plan;
  }

  // The links this repository gives up: all, or those of one image.
  std::set<Digest> dropped;
  if (deletion.digest) {
    const auto closure = closureOf(inventory, *deletion.digest);
    for (const auto& link : repository.links) {
      if (link == *deletion.digest || std::binary_search(closure.begin(), closure.end(), link)) {
        dropped.insert(link);
      }
    }
    for (const auto& [tag, record] : repository.tags) {
      if (record.digest == *deletion.digest) {
        plan.tags.push_back(entry(tag));
      }
    }
  } else {
    dropped.insert(repository.links.begin(), repository.links.end());
    for (const auto& [tag, record] : repository.tags) {
      plan.tags.push_back(entry(tag));
    }
    plan.repositories.push_back(entry(""));
  }
  for (const auto& link : dropped) {
    plan.links.push_back(entry(link.str()));
  }

  // Content goes when no link that stays reaches it.
  std::set<Digest> kept;
  for (const auto& other : inventory.repositories) {
    const bool same = &other == &repository;
    for (const auto& link : other.links) {
      if (same && dropped.count(link) > 0) {
        continue;
      }
      for (const auto& digest : closureOf(inventory, link)) {
        kept.insert(digest);
      }
    }
  }
  std::set<Digest> named;
  for (const auto& link : dropped) {
    if (const auto it = inventory.content.find(link); it != inventory.content.end()) {
      named.insert(it->second.references.begin(), it->second.references.end());
    }
  }
  std::set<Digest> removed;
  const auto names = tagNames(inventory);
  for (const auto& link : dropped) {
    if (!inventory.content.count(link) || named.count(link) > 0) {
      continue; // not stored, or part of another dropped image
    }
    const auto& root = inventory.content.at(link);
    PlannedRemoval removal{link, RemovalReason::Deleted, root.last_used, 0, {}};
    if (auto it = names.find(link); it != names.end()) {
      removal.names = it->second;
    }
    for (const auto& digest : closureOf(inventory, link)) {
      if (kept.count(digest) == 0 && removed.insert(digest).second) {
        plan.content.push_back(digest);
        removal.freed += inventory.content.at(digest).size;
      }
    }
    plan.bytes_freed += removal.freed;
    plan.images.push_back(std::move(removal));
  }
  return plan;
}

} // namespace proxy
