#pragma once

#include "blob_store.hpp"

#include <atomic>
#include <filesystem>

namespace proxy {

/// The embedded store: a directory on the local filesystem.
///
///   <root>/docker-cache-proxy.layout   layout version; a root with a newer or foreign layout
///                                      is refused, never rewritten
///   <root>/blobs/sha256/ab/abcd...     content, named by digest; mtime = last use
///   <root>/meta/...                    metadata objects, one small file each
///   <root>/tmp/                        uploads in progress; emptied at start (crash leftovers)
class FsBlobStore : public BlobStore {
public:
  static constexpr int kLayoutVersion = 1;

  /// Opens or initializes the store. Throws common::SetupError when the root cannot be used.
  FsBlobStore(std::filesystem::path root, std::uint64_t min_free_bytes = 512ull << 20);

  std::optional<BlobStat> stat(const Digest& digest) override;
  std::unique_ptr<BlobReadHandle> open(const Digest& digest) override;
  common::Result<std::unique_ptr<BlobWriter>, StoreError> create() override;
  common::Result<bool, StoreError> commit(BlobWriter& writer, const Digest& expected) override;
  void remove(const Digest& digest) override;
  void touch(const Digest& digest, common::Clock::TimePoint when) override;
  std::vector<Digest> list() override;

  std::optional<std::string> getMeta(const std::string& key) override;
  bool putMeta(const std::string& key, std::string_view value) override;
  void removeMeta(const std::string& key) override;
  void removeMetaTree(const std::string& prefix) override;
  bool hasMeta(const std::string& key) override;
  std::vector<std::string> listMeta(const std::string& prefix) override;

  bool hasRoomFor(std::uint64_t bytes) override;
  void noteNoSpace(std::uint64_t bytes) override;
  std::uint64_t shortage() override;
  std::optional<StorageSpace> space() override;
  bool writable() override;

  const std::filesystem::path& root() const { return root_; }
  /// How many leftover uploads the start swept away.
  int sweptAtStart() const { return swept_; }

private:
  std::filesystem::path blobPath(const Digest& digest) const;
  std::filesystem::path metaPath(const std::string& key) const;
  void checkLayout();
  void sweepTemporaryFiles();
  void pruneEmptyParents(const std::filesystem::path& path);

  std::filesystem::path root_;
  std::uint64_t min_free_bytes_;
  std::atomic<std::uint64_t> shortage_{0};
  int swept_ = 0;
};

} // namespace proxy
