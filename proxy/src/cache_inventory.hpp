#pragma once

#include "blob_store.hpp"
#include "metadata.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace proxy {

/// One piece of stored content: a blob, or a manifest (stored as a blob too, with a record).
struct StoredContent {
  std::uint64_t size = 0;
  common::Clock::TimePoint last_used;
  bool manifest = false;
  std::string media_type;
  /// For a manifest: what it names (config, layers, index children, subject).
  std::vector<Digest> references;
};

/// What one repository holds: its tags and the digests it may read.
struct StoredRepository {
  std::string upstream;
  RepositoryName repository;
  std::map<std::string, TagRecord> tags;
  std::vector<Digest> links;
};

/// A snapshot of the whole cache: the input of every cleanup decision and of the admin API's
/// listings. Read at once, decided on later, so serving never waits for a decision.
struct CacheInventory {
  std::map<Digest, StoredContent> content;
  std::vector<StoredRepository> repositories;
  /// The sum of the content's sizes.
  std::uint64_t bytes = 0;
  std::optional<StorageSpace> space;
};

/// Reads the inventory. Uses recorded in memory are flushed first, so last use is exact.
CacheInventory readInventory(BlobStore& store, Metadata& metadata);

/// What eviction removes as one: an image (a manifest no other stored manifest names, such as
/// an index or a single-platform manifest, with everything it names), or content no manifest
/// names.
struct CachedImage {
  Digest root;
  /// The root and everything it names, directly or through child manifests, that is stored.
  std::vector<Digest> content;
  /// Their sizes added up (shared content included).
  std::uint64_t bytes = 0;
  /// The latest use of any manifest in it: a pull by tag, by digest or of one platform all
  /// count. Layers do not, as another image may share them.
  common::Clock::TimePoint last_used;
  bool manifest = false;
};

/// The images of an inventory, least recently used first (ties: by digest, so that two
/// decisions on one inventory always agree).
std::vector<CachedImage> cachedImages(const CacheInventory& inventory);

/// The stored content `root` names, directly or through child manifests, `root` included.
std::vector<Digest> closureOf(const CacheInventory& inventory, const Digest& root);

} // namespace proxy
