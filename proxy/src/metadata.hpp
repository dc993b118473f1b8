#pragma once

#include "blob_store.hpp"
#include "common/clock.hpp"
#include "reference.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace proxy {

/// What a tag pointed at when last checked with the upstream.
struct TagRecord {
  Digest digest;
  std::string media_type;
  std::uint64_t size = 0;
  /// When the upstream last confirmed the tag; fresh until this plus the upstream's tag_ttl.
  common::Clock::TimePoint validated_at;
};

/// What the cache knows of a stored manifest.
struct ManifestRecord {
  std::string media_type;
  std::uint64_t size = 0;
  /// Every digest it names: config, layers, index children, subject.
  std::vector<Digest> references;
};

/// A manifest ready to serve: its exact bytes and type.
struct CachedManifest {
  Digest digest;
  std::string media_type;
  std::string body;
};

/// The cache's bookkeeping over a BlobStore: tags, which repository may read which digest
/// (links), manifests and what they reference, last use. Persisted as metadata objects;
/// hot entries are kept in memory. Thread-safe.
class Metadata {
public:
  Metadata(BlobStore& store, const common::Clock& clock);

  std::optional<TagRecord> tag(const std::string& upstream, const RepositoryName& repository,
                               const Tag& tag);
  void putTag(const std::string& upstream, const RepositoryName& repository, const Tag& tag,
              const TagRecord& record);
  void removeTag(const std::string& upstream, const RepositoryName& repository, const Tag& tag);
  /// The cached tags of a repository, sorted.
  std::vector<std::string> tags(const std::string& upstream, const RepositoryName& repository);

  /// Whether `repository` of `upstream` may read `digest`: it was fetched for it or is
  /// referenced by one of its manifests, or the upstream confirmed it.
  bool linked(const std::string& upstream, const RepositoryName& repository, const Digest& digest);
  void link(const std::string& upstream, const RepositoryName& repository, const Digest& digest);

  /// Stores a manifest's exact bytes, its record, and links it and everything it references
  /// to the repository. False when the store refused (full disk): the manifest is still served.
  bool putManifest(const std::string& upstream, const RepositoryName& repository,
                   const CachedManifest& manifest);
  /// A stored manifest by digest (no access check: callers check `linked` first).
  std::optional<CachedManifest> manifest(const Digest& digest);
  std::optional<ManifestRecord> manifestRecord(const Digest& digest);

  /// The repositories with cached content for `upstream`, sorted.
  std::vector<std::string> repositories(const std::string& upstream);

  /// Called with the size of each piece of content stored from now on (the cleanup watches the
  /// limit with it).
  void onStored(std::function<void(std::uint64_t)> listener);
  /// Tells the listener that `bytes` of new content were stored.
  void noteStored(std::uint64_t bytes);

  /// Notes that `digest` was served now. Kept in memory until flushUses() writes it.
  void recordUse(const Digest& digest);
  /// Writes the uses recorded since the last flush to the store, so that the last-use order
  /// survives a restart. Returns how many were written.
  std::size_t flushUses();

  /// The upstreams with cached repositories, sorted.
  std::vector<std::string> upstreams();
  /// A repository's tags and what each points at.
  std::map<std::string, TagRecord> tagRecords(const std::string& upstream,
                                              const RepositoryName& repository);
  /// The digests a repository may read.
  std::vector<Digest> links(const std::string& upstream, const RepositoryName& repository);
  /// Takes back a repository's right to read `digest`.
  void unlink(const std::string& upstream, const RepositoryName& repository, const Digest& digest);
  /// Makes the next pull of `tag` ask the upstream; false when the tag is not cached.
  bool invalidateTag(const std::string& upstream, const RepositoryName& repository, const Tag& tag);
  /// Forgets a repository: its tags and links (not the content, which others may share).
  void removeRepository(const std::string& upstream, const RepositoryName& repository);
  /// Removes content: its bytes, its manifest record and what memory holds of it. Readers that
  /// opened it before finish reading.
  void removeContent(const Digest& digest);

private:
  std::string repositoryKey(const std::string& upstream, const RepositoryName& repository) const;
  void collectRepositories(const std::string& prefix, const std::string& name,
                           std::vector<std::string>& out, int depth);

  BlobStore& store_;
  const common::Clock& clock_;
  std::mutex mutex_;
  std::unordered_map<std::string, TagRecord> tags_;
  std::unordered_set<std::string> links_;
  std::unordered_map<std::string, std::shared_ptr<const CachedManifest>> manifests_;
  std::size_t manifest_bytes_ = 0;
  std::function<void(std::uint64_t)> stored_listener_;
  std::mutex uses_mutex_;
  std::unordered_map<std::string, common::Clock::TimePoint> pending_uses_;
};

/// The digests a manifest names (config, layers, index children, subject); empty for bytes
/// that are not a manifest.
std::vector<Digest> manifestReferences(std::string_view body);

} // namespace proxy
