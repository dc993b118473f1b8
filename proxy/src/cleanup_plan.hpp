#pragma once

#include "cache_inventory.hpp"

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace proxy {

/// The limits a cleanup enforces, resolved against the filesystem (a share became bytes).
struct CleanupPolicy {
  /// The most the content may take; 0: no limit of its own.
  std::uint64_t limit = 0;
  double high_watermark = 95;
  double low_watermark = 85;
  /// Free space to keep on the filesystem; 0: none.
  std::uint64_t min_free = 0;
  /// Content not used for this long goes; zero: never.
  std::chrono::milliseconds expire_after{0};
  /// Images that never go (the warm list's current digests).
  std::set<Digest> pinned;
};

/// Why an image goes.
enum class RemovalReason { Expired, OverLimit, LowSpace, Deleted };

const char* toString(RemovalReason reason);

/// A tag, a link or a repository a plan removes.
struct RepositoryEntryRef {
  std::string upstream;
  RepositoryName repository;
  /// The tag (tags), the digest (links), or empty (a whole repository).
  std::string name;
};

/// One image a plan removes, for people: what it was called, when it was last used, and how
/// much its removal frees (shared content that stays is not counted).
struct PlannedRemoval {
  Digest root;
  RemovalReason reason = RemovalReason::OverLimit;
  common::Clock::TimePoint last_used;
  std::uint64_t freed = 0;
  /// "docker.io/library/alpine:3.20" for each tag that pointed at it.
  std::vector<std::string> names;
};

/// Exactly what a cleanup or a deletion removes. A dry run shows it; a real run applies it.
struct CleanupPlan {
  std::vector<PlannedRemoval> images;
  /// Content to delete, and its total size.
  std::vector<Digest> content;
  std::uint64_t bytes_freed = 0;
  std::vector<RepositoryEntryRef> tags;
  std::vector<RepositoryEntryRef> links;
  std::vector<RepositoryEntryRef> repositories;
  /// The content's size before, and the limit that applied (0: none).
  std::uint64_t bytes_before = 0;
  std::uint64_t limit = 0;
  /// Set when the limits could not be met: everything left is pinned or in use.
  std::string shortfall;

  bool empty() const {
    return content.empty() && tags.empty() && links.empty() && repositories.empty();
  }
};

/// Expired images first, then the least recently used ones while the content is above the high
/// watermark (down to the low one) or the filesystem has less than min_free free. Pinned images
/// and the image used last never go; content another kept image names stays.
CleanupPlan planCleanup(const CacheInventory& inventory, const CleanupPolicy& policy,
                        common::Clock::TimePoint now);

/// What an administrator removes: a tag, an image (by digest: its tags and links in the
/// repository), or a whole repository. Content goes when no other repository keeps it.
struct Deletion {
  std::string upstream;
  RepositoryName repository;
  std::optional<Tag> tag;
  std::optional<Digest> digest;
};

/// The plan for `deletion`; empty when the repository, tag or image is not cached.
CleanupPlan planDeletion(const CacheInventory& inventory, const Deletion& deletion);

} // namespace proxy
