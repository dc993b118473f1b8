#pragma once

#include "common/clock.hpp"
#include "common/digest_hasher.hpp"
#include "common/result.hpp"
#include "reference.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace proxy {

/// Why the store could not do what was asked. `no_space` marks a full filesystem, which the
/// proxy survives by serving without caching.
struct StoreError {
  std::string message;
  bool no_space = false;
};

/// Size and last use of stored content.
struct BlobStat {
  std::uint64_t size = 0;
  common::Clock::TimePoint last_used;
};

/// The capacity of where a store keeps its bytes, and how much of it is free.
struct StorageSpace {
  std::uint64_t capacity = 0;
  std::uint64_t available = 0;
};

/// Readable content: committed, or the part of an upload written so far.
class BlobReadHandle {
public:
  virtual ~BlobReadHandle() = default;
  /// Reads up to `length` bytes at `offset`; 0 at the end; -1 with errno on failure.
  virtual ssize_t read(std::uint64_t offset, char* buffer, std::size_t length) = 0;
  /// A file descriptor for sendfile(2), when the store keeps the content in a local file.
  virtual std::optional<int> fileDescriptor() const = 0;
};

/// An upload in progress: bytes go to a temporary object, never visible under the digest until
/// `BlobStore::commit` has verified them.
class BlobWriter : public BlobReadHandle {
public:
  /// Appends; a failed write (a full disk among others) is an error and leaves the writer unusable:
  /// the temporary object is dropped at once, and what was written stays readable through this
  /// writer until it is destroyed. `written()` counts the bytes of `data` that went in before.
  virtual common::Result<std::uint64_t, StoreError> append(std::string_view data) = 0;
  virtual std::uint64_t written() const = 0;
  /// The sha256 digest of everything appended, computed as the bytes went in.
  virtual Digest digest() = 0;
  /// The running hash of what was appended, copied: to go on verifying bytes the store could not
  /// take (a download relayed to its clients after the disk filled).
  virtual std::unique_ptr<common::DigestHasher> hashSoFar() const = 0;
};

/// Where the cache keeps its bytes. One interface, so an object store can later hold one cache for
/// several replicas: blobs addressed by digest (manifests are blobs too), and small metadata
/// objects under keys ("repositories/docker.io/library/alpine/_tags/3.20").
class BlobStore {
public:
  virtual ~BlobStore() = default;

  virtual std::optional<BlobStat> stat(const Digest& digest) = 0;
  virtual std::unique_ptr<BlobReadHandle> open(const Digest& digest) = 0;
  virtual common::Result<std::unique_ptr<BlobWriter>, StoreError> create() = 0;
  /// Makes the upload visible under `expected` if its digest matches; the upload is consumed
  /// either way (a mismatch deletes it).
  virtual common::Result<bool, StoreError> commit(BlobWriter& writer, const Digest& expected) = 0;
  /// Removes stored content. A handle opened before keeps reading it to the end (its space is
  /// freed when the last reader is done), so a download in progress is never cut short.
  virtual void remove(const Digest& digest) = 0;
  /// Records a use, for eviction by last use.
  virtual void touch(const Digest& digest, common::Clock::TimePoint when) = 0;
  /// Every stored digest.
  virtual std::vector<Digest> list() = 0;

  virtual std::optional<std::string> getMeta(const std::string& key) = 0;
  /// Atomic replace; false when the store refused (its error is logged).
  virtual bool putMeta(const std::string& key, std::string_view value) = 0;
  /// Removes one metadata object, and the prefixes it leaves empty.
  virtual void removeMeta(const std::string& key) = 0;
  /// Removes every metadata object under `prefix` ("repositories/docker.io/library/alpine").
  virtual void removeMetaTree(const std::string& prefix) = 0;
  virtual bool hasMeta(const std::string& key) = 0;
  /// The names directly below `prefix` ("a/b/" -> "c", "d.json").
  virtual std::vector<std::string> listMeta(const std::string& prefix) = 0;

  /// Whether `bytes` more can be stored while keeping the configured free-space reserve. False for
  /// everything while a shortage noted by `noteNoSpace` lasts.
  virtual bool hasRoomFor(std::uint64_t bytes) = 0;
  /// Records that a write failed for want of space while storing content of `bytes`: the store
  /// counts as full (nothing new is cached, readiness says so) until that much is free again
  /// above the reserve. The cleanup makes room for it as it does for the reserve.
  virtual void noteNoSpace(std::uint64_t bytes) = 0;
  /// The size of the content a full disk refused, while the shortage lasts; 0 otherwise.
  virtual std::uint64_t shortage() = 0;
  /// Capacity and free space; nothing when the store cannot tell.
  virtual std::optional<StorageSpace> space() = 0;
  /// Whether the store accepts writes (a probe, for readiness).
  virtual bool writable() = 0;
};

} // namespace proxy
