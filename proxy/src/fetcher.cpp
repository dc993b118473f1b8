#include "fetcher.hpp"

#include "common/logging.hpp"

#include <algorithm>
#include <cstring>
#include <thread>

namespace proxy {
namespace {

// Readers of a growing download are woken in steps this large, at the end, and otherwise
// look for new bytes on their own this often (a slow upstream may take long for one step).
constexpr std::uint64_t kNotifyStep = 1u << 20;
constexpr auto kReaderRecheck = std::chrono::milliseconds(10);

} // namespace

BlobDownload::BlobDownload(Digest digest, std::shared_ptr<BlobWriter> writer)
    : digest_(std::move(digest)), writer_(std::move(writer)) {}

common::Result<std::optional<std::uint64_t>, UpstreamError> BlobDownload::waitStarted() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return state_ != State::Starting; });
  if (state_ == State::Failed && error_) {
    return *error_;
  }
  return size_;
}

std::optional<std::uint64_t> BlobDownload::attach() {
  std::lock_guard lock(mutex_);
  if (relaying_) {
    return std::nullopt;
  }
  const auto id = next_reader_++;
  readers_.emplace(id, 0);
  return id;
}

void BlobDownload::detach(std::uint64_t reader) {
  {
    std::lock_guard lock(mutex_);
    readers_.erase(reader);
    trimWindowLocked();
  }
  changed_.notify_all();
}

common::Result<BlobDownload::Readable, UpstreamError>
BlobDownload::waitReadable(std::uint64_t reader, std::uint64_t offset) {
  std::unique_lock lock(mutex_);
  if (auto it = readers_.find(reader); it != readers_.end() && offset > it->second) {
    it->second = offset;
    if (relaying_) {
      trimWindowLocked();
      changed_.notify_all();
    }
  }
  while (true) {
    if (state_ == State::Failed) {
      return error_.value_or(UpstreamError{UpstreamError::Kind::Aborted, 0, "download failed"});
    }
    const auto received = receivedLocked();
    const bool verified = state_ == State::Committed || state_ == State::Relayed;
    // Hold back the last byte until the digest is verified.
    const auto end = verified ? received : (received > 0 ? received - 1 : 0);
    if (end > offset) {
      if (!relaying_ || offset < file_end_) {
        return Readable{relaying_ ? std::min(end, file_end_) : end, true};
      }
      if (offset < window_start_) {
        return UpstreamError{UpstreamError::Kind::Aborted, 0,
                             "the reader fell behind the relay of a blob the disk had no room for"};
      }
      return Readable{end, false};
    }
    if (verified) {
      return Readable{offset, true};
    }
    // Bytes arrive without a wake-up between two steps: look again after a short while.
    changed_.wait_for(lock, kReaderRecheck);
  }
}

ssize_t BlobDownload::read(std::uint64_t offset, char* buffer, std::size_t length) {
  {
    std::lock_guard lock(mutex_);
    if (relaying_ && offset >= file_end_) {
      if (offset < window_start_) {
        errno = ESPIPE;
        return -1;
      }
      std::size_t copied = 0;
      std::uint64_t piece_start = window_start_;
      for (const auto& piece : window_) {
        const auto piece_end = piece_start + piece.size();
        const auto at = offset + copied;
        if (at < piece_end) {
          const auto from = static_cast<std::size_t>(at - piece_start);
          const auto n = std::min(piece.size() - from, length - copied);
          std::memcpy(buffer + copied, piece.data() + from, n);
          copied += n;
          if (copied == length) {
            break;
          }
        }
        piece_start = piece_end;
      }
      return static_cast<ssize_t>(copied);
    }
  }
  return writer_->read(offset, buffer, length);
}

bool BlobDownload::noSpace() const {
  std::lock_guard lock(mutex_);
  return no_space_;
}

bool BlobDownload::committed() const {
  std::lock_guard lock(mutex_);
  return state_ == State::Committed;
}

bool BlobDownload::relaying() const {
  std::lock_guard lock(mutex_);
  return relaying_;
}

void BlobDownload::started(std::optional<std::uint64_t> size) {
  {
    std::lock_guard lock(mutex_);
    size_ = size;
    state_ = State::Streaming;
  }
  changed_.notify_all();
}

void BlobDownload::progressed() {
  // Readers are woken once per step, not per piece: a wake-up costs each of them a futex call,
  // a context switch and a small sendfile, more than the piece itself on a busy machine.
  const auto written = writer_->written();
  if (written - notified_ < kNotifyStep) {
    return;
  }
  notified_ = written;
  changed_.notify_all();
}

bool BlobDownload::startRelay(std::string_view rest) {
  {
    std::lock_guard lock(mutex_);
    relaying_ = true;
    no_space_ = true;
    file_end_ = writer_->written();
    window_start_ = file_end_;
    relay_hash_ = writer_->hashSoFar();
  }
  return relay(rest);
}

bool BlobDownload::relay(std::string_view data) {
  std::unique_lock lock(mutex_);
  if (!data.empty()) {
    relay_hash_->update(data);
    window_.emplace_back(data);
    window_bytes_ += data.size();
  }
  changed_.notify_all();
  // The upstream waits for the slowest reader; one that stops for good is dropped by its own
  // write timeout, and detaches.
  changed_.wait(lock, [&] {
    trimWindowLocked();
    return readers_.empty() || window_bytes_ <= kRelayWindow;
  });
  return !readers_.empty();
}

std::optional<Digest> BlobDownload::relayDigest() {
  std::lock_guard lock(mutex_);
  return Digest::parse(relay_hash_->finish());
}

void BlobDownload::finished(State state, std::optional<UpstreamError> error, bool no_space) {
  {
    std::lock_guard lock(mutex_);
    state_ = state;
    error_ = std::move(error);
    no_space_ = no_space_ || no_space;
  }
  changed_.notify_all();
}

std::uint64_t BlobDownload::receivedLocked() const {
  return relaying_ ? window_start_ + window_bytes_ : writer_->written();
}

void BlobDownload::trimWindowLocked() {
  auto slowest = receivedLocked();
  for (const auto& [id, position] : readers_) {
    slowest = std::min(slowest, position);
  }
  while (!window_.empty() && window_start_ + window_.front().size() <= slowest) {
    window_start_ += window_.front().size();
    window_bytes_ -= window_.front().size();
    window_.pop_front();
  }
}

std::shared_ptr<DownloadReader> DownloadReader::attach(std::shared_ptr<BlobDownload> download) {
  const auto id = download->attach();
  if (!id) {
    return nullptr;
  }
  return std::make_shared<DownloadReader>(std::move(download), *id);
}

DownloadReader::DownloadReader(std::shared_ptr<BlobDownload> download, std::uint64_t id)
    : download_(std::move(download)), id_(id) {}

DownloadReader::~DownloadReader() {
  download_->detach(id_);
}

BlobFetcher::BlobFetcher(BlobStore& store, Metadata& metadata)
    : store_(store), metadata_(metadata) {}

BlobFetcher::~BlobFetcher() {
  drain(std::chrono::seconds(5));
}

common::Result<std::shared_ptr<DownloadReader>, StoreError>
BlobFetcher::join(Upstream& upstream, const RepositoryName& repository, const Digest& digest) {
  std::lock_guard lock(mutex_);
  if (auto it = running_.find(digest.str()); it != running_.end()) {
    if (auto reader = DownloadReader::attach(it->second)) {
      return reader;
    }
    return StoreError{"the disk filled while this blob was being cached", true};
  }
  // Committed between the caller's look-up and now: the download removed itself under this lock.
  if (store_.stat(digest)) {
    return std::shared_ptr<DownloadReader>();
  }
  if (!store_.hasRoomFor(0)) {
    return StoreError{"the storage is full", true};
  }
  auto writer = store_.create();
  if (!writer.ok()) {
    return writer.error();
  }
  auto download = std::make_shared<BlobDownload>(
      digest, std::shared_ptr<BlobWriter>(std::move(writer.value())));
  // Registered before the download starts, so a relay never starts without this client.
  auto reader = DownloadReader::attach(download);
  running_.emplace(digest.str(), download);
  // The download keeps its upstream's client alive, should a reload replace it meanwhile.
  std::thread([this, download, client = upstream.shared_from_this(), repository] {
    run(download, *client, repository);
  }).detach();
  return reader;
}

void BlobFetcher::run(std::shared_ptr<BlobDownload> download, Upstream& upstream,
                      RepositoryName repository) {
  auto log = common::logger("fetcher");
  const auto& digest = download->digest();
  const auto& name = upstream.config().name;
  std::optional<StoreError> store_error;
  std::optional<std::uint64_t> expected_size;
  bool relaying = false;

  log->debug("blob download started: upstream={} repo={} digest={}", name, repository.str(),
             digest.str());
  auto result = upstream.getBlob(
      repository, digest,
      [&](std::optional<std::uint64_t> size) {
        expected_size = size;
        if (size && !store_.hasRoomFor(*size)) {
          store_error =
              StoreError{"not enough free space for " + std::to_string(*size) + " bytes", true};
          return false;
        }
        download->started(size);
        return true;
      },
      [&](std::string_view data) {
        if (relaying) {
          return download->relay(data);
        }
        auto& writer = download->writer();
        const auto before = writer.written();
        auto appended = writer.append(data);
        if (appended.ok()) {
          download->progressed();
          return true;
        }
        if (!appended.error().no_space) {
          store_error = appended.error();
          return false;
        }
        // The disk filled: nothing is cached, but the clients of this download still get it.
        relaying = true;
        store_.noteNoSpace(expected_size.value_or(before + data.size()));
        log->warn("disk full, blob not cached, relaying it to its clients: upstream={} repo={} "
                  "digest={} stored={} err={}",
                  name, repository.str(), digest.str(), writer.written(), appended.error().message);
        return download->startRelay(data.substr(writer.written() - before));
      });

  BlobDownload::State state = BlobDownload::State::Failed;
  std::optional<UpstreamError> error;
  bool no_space = false;
  if (store_error) {
    no_space = store_error->no_space;
    log->warn("blob not cached, storage refused it: digest={} err={}", digest.str(),
              store_error->message);
    error = UpstreamError{UpstreamError::Kind::Aborted, 0,
                          "the cache cannot store this blob: " + store_error->message};
  } else if (!result.ok()) {
    error = result.error();
    log->warn("blob download failed: upstream={} repo={} digest={} err={}", name, repository.str(),
              digest.str(), error->message);
  } else if (expected_size && result.value() != *expected_size) {
    error = UpstreamError{UpstreamError::Kind::BadResponse, 0,
                          "upstream sent " + std::to_string(result.value()) + " of " +
                              std::to_string(*expected_size) + " bytes"};
    log->warn("blob download truncated: digest={} err={}", digest.str(), error->message);
  } else if (relaying) {
    const auto actual = download->relayDigest();
    if (actual == digest) {
      state = BlobDownload::State::Relayed;
      log->debug("blob relayed without caching: digest={} bytes={}", digest.str(), result.value());
    } else {
      error = UpstreamError{UpstreamError::Kind::BadResponse, 0,
                            "digest mismatch: upstream bytes hash to " +
                                (actual ? actual->str() : std::string("?"))};
      log->error("blob digest mismatch, discarded: upstream={} repo={} digest={} actual={}", name,
                 repository.str(), digest.str(), actual ? actual->str() : "?");
    }
  } else {
    auto committed = store_.commit(download->writer(), digest);
    if (committed.ok() && committed.value()) {
      state = BlobDownload::State::Committed;
      metadata_.link(name, repository, digest);
      metadata_.noteStored(result.value());
      log->debug("blob cached: digest={} bytes={}", digest.str(), result.value());
    } else if (committed.ok()) {
      error = UpstreamError{UpstreamError::Kind::BadResponse, 0,
                            "digest mismatch: upstream bytes hash to " +
                                download->writer().digest().str()};
      log->error("blob digest mismatch, discarded: upstream={} repo={} digest={} actual={}", name,
                 repository.str(), digest.str(), download->writer().digest().str());
    } else if (committed.error().no_space) {
      // Verified, but the disk filled before it was made durable: the clients still get the
      // whole upload, nothing is cached.
      state = BlobDownload::State::Relayed;
      no_space = true;
      store_.noteNoSpace(result.value());
      log->warn("disk full, blob not cached, sent to its clients: digest={} err={}", digest.str(),
                committed.error().message);
    } else {
      error = UpstreamError{UpstreamError::Kind::Aborted, 0, committed.error().message};
      log->warn("blob not cached, commit failed: digest={} err={}", digest.str(),
                committed.error().message);
    }
  }

  {
    // Leave the map before readers learn the outcome, so a new request after a commit finds the
    // blob in the store, and after a failure starts a fresh download.
    std::lock_guard lock(mutex_);
    running_.erase(digest.str());
  }
  download->finished(state, error, no_space);
  idle_.notify_all();
}

void BlobFetcher::drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  idle_.wait_for(lock, timeout, [&] { return running_.empty(); });
}

std::size_t BlobFetcher::running() const {
  std::lock_guard lock(mutex_);
  return running_.size();
}

} // namespace proxy
