#pragma once

#include "blob_store.hpp"
#include "metadata.hpp"
#include "upstream.hpp"

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

namespace proxy {

/// One upstream download of one blob, written to a temporary upload while any number of
/// clients read it as it grows. The last byte is held back until the digest is verified and
/// the blob committed, so no client ever receives a complete body that fails verification.
class BlobDownload {
public:
  enum class State { Starting, Streaming, Committed, Failed };

  BlobDownload(Digest digest, std::shared_ptr<BlobWriter> writer);

  const Digest& digest() const { return digest_; }

  /// Waits until the upstream answered: the size when it sent one, or why it failed.
  common::Result<std::optional<std::uint64_t>, UpstreamError> waitStarted();

  /// Waits until bytes past `offset` may be read, and returns the end of what may be read (more
  /// than `offset`), or the offset itself at the end of a committed blob, or the failure.
  common::Result<std::uint64_t, UpstreamError> waitReadable(std::uint64_t offset);

  /// Reads the growing upload (pread and the file descriptor for sendfile).
  BlobReadHandle& reader() { return *writer_; }

  /// True when the download stopped because the disk is full.
  bool noSpace() const;

  // Called by the fetcher's download thread.
  void started(std::optional<std::uint64_t> size);
  void progressed();
  void finished(State state, std::optional<UpstreamError> error = std::nullopt,
                bool no_space = false);
  BlobWriter& writer() { return *writer_; }

private:
  const Digest digest_;
  std::shared_ptr<BlobWriter> writer_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  State state_ = State::Starting;
  std::optional<std::uint64_t> size_;
  std::optional<UpstreamError> error_;
  bool no_space_ = false;
  // Bytes written when readers were last woken; used by the download thread only.
  std::uint64_t notified_ = 0;
};

/// Makes sure each missing blob is downloaded once, however many clients ask for it at once.
class BlobFetcher {
public:
  BlobFetcher(BlobStore& store, Metadata& metadata);
  ~BlobFetcher();

  /// The running download of `digest`, or a new one through `upstream` for `repository`.
  /// Returns null when the blob got committed meanwhile (read it from the store), and a store
  /// error when no upload can be created (a full disk: serve without caching).
  common::Result<std::shared_ptr<BlobDownload>, StoreError>
  join(Upstream& upstream, const RepositoryName& repository, const Digest& digest);

  /// Waits (bounded) until no download is running, for a clean shutdown.
  void drain(std::chrono::milliseconds timeout);

  /// How many downloads run now.
  std::size_t running() const;

private:
  void run(std::shared_ptr<BlobDownload> download, Upstream& upstream, RepositoryName repository);

  BlobStore& store_;
  Metadata& metadata_;
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::map<std::string, std::shared_ptr<BlobDownload>> running_;
};

} // namespace proxy
