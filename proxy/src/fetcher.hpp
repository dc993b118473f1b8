#pragma once

#include "blob_store.hpp"
#include "metadata.hpp"
#include "upstream.hpp"

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

namespace proxy {

/// One upstream download of one blob, written to a temporary upload while any number of
/// clients read it as it grows. The last byte is held back until the digest is verified and
/// the blob committed, so no client ever receives a complete body that fails verification.
///
/// Should the disk fill in the middle, the download carries on as a relay: nothing is cached,
/// the upload's bytes stay readable for the clients still behind, and the rest passes through a
/// bounded window in memory that moves at the pace of the slowest client. The digest is still
/// verified before the last byte.
class BlobDownload {
public:
  enum class State { Starting, Streaming, Committed, Relayed, Failed };

  /// What a reader may take next: the bytes up to `end`, from the upload's file (sendfile works
  /// on them) or, in a relay, from memory (read() only).
  struct Readable {
    std::uint64_t end = 0;
    bool in_file = true;
  };

  /// How much of a relay is kept in memory at most.
  static constexpr std::uint64_t kRelayWindow = 8u << 20;

  BlobDownload(Digest digest, std::shared_ptr<BlobWriter> writer);

  const Digest& digest() const { return digest_; }

  /// Waits until the upstream answered: the size when it sent one, or why it failed.
  common::Result<std::optional<std::uint64_t>, UpstreamError> waitStarted();

  /// Registers a reader at offset 0; a relay keeps every byte a registered reader has not read.
  /// Nothing once the download relays: a newcomer would need bytes the relay has dropped.
  std::optional<std::uint64_t> attach();
  void detach(std::uint64_t reader);

  /// Records that `reader` has taken everything before `offset`, then waits until bytes past
  /// `offset` may be read. The end of what may be read, or `offset` itself at the end of a
  /// verified blob, or the failure.
  common::Result<Readable, UpstreamError> waitReadable(std::uint64_t reader, std::uint64_t offset);

  /// Reads what waitReadable allowed: from the upload, or from the relay's memory.
  ssize_t read(std::uint64_t offset, char* buffer, std::size_t length);
  std::optional<int> fileDescriptor() const { return writer_->fileDescriptor(); }

  /// True when the download stopped because the disk is full.
  bool noSpace() const;
  /// True once the blob is verified and in the store.
  bool committed() const;
  /// True while (and after) the download goes on as a relay.
  bool relaying() const;

  // Called by the fetcher's download thread.
  void started(std::optional<std::uint64_t> size);
  void progressed();
  /// Turns the download into a relay once the upload failed for want of space; `rest` is what
  /// of the last piece the upload did not take. False when no reader is left to relay to.
  bool startRelay(std::string_view rest);
  /// Passes a piece on to the readers, waiting while the window is full. False when no reader is
  /// left.
  bool relay(std::string_view data);
  /// The digest of everything a relay received (ends the relay's hash).
  std::optional<Digest> relayDigest();
  void finished(State state, std::optional<UpstreamError> error = std::nullopt,
                bool no_space = false);
  BlobWriter& writer() { return *writer_; }

private:
  std::uint64_t receivedLocked() const;
  void trimWindowLocked();

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
  // Registered readers and the offset each has read up to.
  std::map<std::uint64_t, std::uint64_t> readers_;
  std::uint64_t next_reader_ = 0;
  // The relay: bytes before file_end_ are in the dropped upload, the window's pieces follow on
  // from window_start_.
  bool relaying_ = false;
  std::uint64_t file_end_ = 0;
  std::deque<std::string> window_;
  std::uint64_t window_start_ = 0;
  std::uint64_t window_bytes_ = 0;
  std::unique_ptr<common::DigestHasher> relay_hash_;
};

/// One client's place in a download, registered from the moment it joined so that a relay keeps
/// what it has not read; leaves the download when destroyed.
class DownloadReader : public BlobReadHandle {
public:
  /// A new reader of `download`; null once it relays.
  static std::shared_ptr<DownloadReader> attach(std::shared_ptr<BlobDownload> download);

  DownloadReader(std::shared_ptr<BlobDownload> download, std::uint64_t id);
  ~DownloadReader() override;
  DownloadReader(const DownloadReader&) = delete;
  DownloadReader& operator=(const DownloadReader&) = delete;

  BlobDownload& download() { return *download_; }
  common::Result<BlobDownload::Readable, UpstreamError> waitReadable(std::uint64_t offset) {
    return download_->waitReadable(id_, offset);
  }
  ssize_t read(std::uint64_t offset, char* buffer, std::size_t length) override {
    return download_->read(offset, buffer, length);
  }
  std::optional<int> fileDescriptor() const override { return download_->fileDescriptor(); }

private:
  std::shared_ptr<BlobDownload> download_;
  std::uint64_t id_;
};

/// Makes sure each missing blob is downloaded once, however many clients ask for it at once.
class BlobFetcher {
public:
  BlobFetcher(BlobStore& store, Metadata& metadata);
  ~BlobFetcher();

  /// Joins the running download of `digest`, or starts one through `upstream` for `repository`.
  /// Returns null when the blob got committed meanwhile (read it from the store), and a store
  /// error when nothing can be cached now (a full disk: serve without caching).
  common::Result<std::shared_ptr<DownloadReader>, StoreError>
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
