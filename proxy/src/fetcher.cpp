#include "fetcher.hpp"

#include "common/logging.hpp"

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

common::Result<std::uint64_t, UpstreamError> BlobDownload::waitReadable(std::uint64_t offset) {
  std::unique_lock lock(mutex_);
  while (true) {
    if (state_ == State::Failed) {
      return error_.value_or(UpstreamError{UpstreamError::Kind::Aborted, 0, "download failed"});
    }
    const auto written = writer_->written();
    if (state_ == State::Committed) {
      return written;
    }
    // Hold back the last byte until the digest is verified.
    if (written > 0 && written - 1 > offset) {
      return written - 1;
    }
    // Bytes arrive without a wake-up between two steps: look again after a short while.
    changed_.wait_for(lock, kReaderRecheck);
  }
}

bool BlobDownload::noSpace() const {
  std::lock_guard lock(mutex_);
  return no_space_;
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

void BlobDownload::finished(State state, std::optional<UpstreamError> error, bool no_space) {
  {
    std::lock_guard lock(mutex_);
    state_ = state;
    error_ = std::move(error);
    no_space_ = no_space;
  }
  changed_.notify_all();
}

BlobFetcher::BlobFetcher(BlobStore& store, Metadata& metadata)
    : store_(store), metadata_(metadata) {}

BlobFetcher::~BlobFetcher() {
  drain(std::chrono::seconds(5));
}

common::Result<std::shared_ptr<BlobDownload>, StoreError>
BlobFetcher::join(Upstream& upstream, const RepositoryName& repository, const Digest& digest) {
  std::lock_guard lock(mutex_);
  if (auto it = running_.find(digest.str()); it != running_.end()) {
    return it->second;
  }
  // Committed between the caller's look-up and now: the download removed itself under this lock.
  if (store_.stat(digest)) {
    return std::shared_ptr<BlobDownload>();
  }
  auto writer = store_.create();
  if (!writer.ok()) {
    return writer.error();
  }
  auto download = std::make_shared<BlobDownload>(
      digest, std::shared_ptr<BlobWriter>(std::move(writer.value())));
  running_.emplace(digest.str(), download);
  // The download keeps its upstream's client alive, should a reload replace it meanwhile.
  std::thread([this, download, client = upstream.shared_from_this(), repository] {
    run(download, *client, repository);
  }).detach();
  return download;
}

void BlobFetcher::run(std::shared_ptr<BlobDownload> download, Upstream& upstream,
                      RepositoryName repository) {
  auto log = common::logger("fetcher");
  const auto& digest = download->digest();
  std::optional<StoreError> store_error;
  std::optional<std::uint64_t> expected_size;

  log->debug("blob download started: upstream={} repo={} digest={}", upstream.config().name,
             repository.str(), digest.str());
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
        auto appended = download->writer().append(data);
        if (!appended.ok()) {
          store_error = appended.error();
          return false;
        }
        download->progressed();
        return true;
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
    log->warn("blob download failed: upstream={} repo={} digest={} err={}", upstream.config().name,
              repository.str(), digest.str(), error->message);
  } else if (expected_size && result.value() != *expected_size) {
    error = UpstreamError{UpstreamError::Kind::BadResponse, 0,
                          "upstream sent " + std::to_string(result.value()) + " of " +
                              std::to_string(*expected_size) + " bytes"};
    log->warn("blob download truncated: digest={} err={}", digest.str(), error->message);
  } else {
    auto committed = store_.commit(download->writer(), digest);
    if (committed.ok() && committed.value()) {
      state = BlobDownload::State::Committed;
      metadata_.link(upstream.config().name, repository, digest);
      metadata_.noteStored(result.value());
      log->debug("blob cached: digest={} bytes={}", digest.str(), result.value());
    } else if (committed.ok()) {
      error = UpstreamError{UpstreamError::Kind::BadResponse, 0,
                            "digest mismatch: upstream bytes hash to " +
                                download->writer().digest().str()};
      log->error("blob digest mismatch, discarded: upstream={} repo={} digest={} actual={}",
                 upstream.config().name, repository.str(), digest.str(),
                 download->writer().digest().str());
    } else {
      no_space = committed.error().no_space;
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
