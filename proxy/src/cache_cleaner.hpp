#pragma once

#include "cleanup_plan.hpp"
#include "config.hpp"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace proxy {

/// An image of the warm list, as the cache names it: its current image is never evicted.
struct PinnedImage {
  std::string upstream;
  RepositoryName repository;
  /// The tag it follows, or the digest it is pinned to.
  std::optional<Tag> tag;
  std::optional<Digest> digest;
};

/// What the cleanup enforces; replaced on reload.
struct CleanupSettings {
  CacheConfig cache;
  std::uint64_t min_free = 0;
  std::vector<PinnedImage> pinned;
};

/// The warm list of `config` as pins; images of unknown upstreams or bad names are left out.
std::vector<PinnedImage> pinnedImages(const ProxyConfig& config);

/// What the cleanup did so far, for /metrics, /status and the admin API.
struct CleanupStatus {
  /// The limit in bytes (a share of the filesystem resolved); 0: none.
  std::uint64_t limit = 0;
  /// The content's size at the last look, plus what was stored since.
  std::uint64_t bytes = 0;
  std::optional<common::Clock::TimePoint> last_run;
  /// Images and bytes removed, by reason ("expired", "over-limit", "low-space", "deleted").
  std::map<std::string, std::uint64_t> removed_images;
  std::map<std::string, std::uint64_t> removed_bytes;
  /// Why the last cleanup could not meet the limits, if it could not.
  std::string shortfall;
};

/// Keeps the cache inside its limits, in the background: every cleanup interval, whenever
/// downloads push the content past the high watermark, and when free space runs low. Decides on
/// an inventory read at once and then removes, so serving never waits for it; a blob being read
/// while it is removed is read to the end. Also writes the recorded uses every few seconds, so
/// the last-use order survives a restart (and a crash loses a few seconds of it at most).
class CacheCleaner {
public:
  CacheCleaner(BlobStore& store, Metadata& metadata, const common::Clock& clock);
  ~CacheCleaner();
  CacheCleaner(const CacheCleaner&) = delete;
  CacheCleaner& operator=(const CacheCleaner&) = delete;

  void configure(CleanupSettings settings);
  void start();
  /// Stops the background thread and writes the uses recorded since the last flush.
  void stop();

  /// Runs a cleanup now. A dry run removes nothing and returns exactly what a run on the same
  /// cache would remove; it may try another size limit (`limit`, in bytes) first.
  CleanupPlan runNow(bool dry_run, std::optional<std::uint64_t> limit = std::nullopt);
  /// Removes a tag, an image or a repository (admin API); a dry run only plans it.
  CleanupPlan remove(const Deletion& deletion, bool dry_run);

  /// Called when content was stored: wakes the cleanup once the limit is passed.
  void noteStored(std::uint64_t bytes);

  /// A fresh inventory (admin API listings).
  CacheInventory inventory();
  /// The digests the warm list pins in `inventory`.
  std::set<Digest> pinnedIn(const CacheInventory& inventory) const;
  CleanupStatus status() const;

private:
  CleanupPolicy policyFor(const CacheInventory& inventory) const;
  void apply(const CleanupPlan& plan);
  void loop();

  BlobStore& store_;
  Metadata& metadata_;
  const common::Clock& clock_;
  mutable std::mutex mutex_;
  CleanupSettings settings_;
  CleanupStatus status_;
  /// One cleanup or deletion at a time.
  std::mutex run_mutex_;
  std::atomic<std::uint64_t> stored_since_{0};
  std::atomic<std::uint64_t> high_mark_{0};
  std::atomic<std::uint64_t> last_bytes_{0};
  std::condition_variable wake_;
  bool triggered_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace proxy
