#include "cache_cleaner.hpp"

#include "common/logging.hpp"

#include <algorithm>

namespace proxy {
namespace {

// How often the background thread writes recorded uses and looks at free space.
// TODO: write uses through a journal; a crash loses the last-use order of up to this long.
constexpr auto kTick = std::chrono::seconds(5);

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    out += (out.empty() ? "" : ",") + name;
  }
  return out.empty() ? "-" : out;
}

} // namespace

std::vector<PinnedImage> pinnedImages(const ProxyConfig& config) {
  std::vector<PinnedImage> pins;
  for (const auto& warm : config.warm.images) {
    const auto* upstream = config.findUpstream(warm.image.registry);
    const auto repository = RepositoryName::parse(warm.image.repository);
    if (!upstream || !repository) {
      continue;
    }
    PinnedImage pin{upstream->name, *repository, std::nullopt, std::nullopt};
    if (!warm.image.digest.empty()) {
      pin.digest = Digest::parse(warm.image.digest);
    } else {
      pin.tag = Tag::parse(warm.image.tag);
    }
    pins.push_back(std::move(pin));
  }
  return pins;
}

CacheCleaner::CacheCleaner(BlobStore& store, Metadata& metadata, const common::Clock& clock)
    : store_(store), metadata_(metadata), clock_(clock) {}

CacheCleaner::~CacheCleaner() {
  stop();
}

void CacheCleaner::configure(CleanupSettings settings) {
  {
    std::lock_guard lock(mutex_);
    settings_ = std::move(settings);
    triggered_ = true; // a lower limit applies at once
  }
  wake_.notify_all();
}

void CacheCleaner::start() {
  std::lock_guard lock(mutex_);
  stopping_ = false;
  triggered_ = true; // look at the cache once at start
  thread_ = std::thread([this] { loop(); });
}

void CacheCleaner::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    metadata_.flushUses();
  }
}

void CacheCleaner::noteStored(std::uint64_t bytes) {
  const auto estimate = last_bytes_ + (stored_since_ += bytes);
  const auto high = high_mark_.load();
  if (high > 0 && estimate > high) {
    {
      std::lock_guard lock(mutex_);
      triggered_ = true;
    }
    wake_.notify_all();
  }
}

void CacheCleaner::loop() {
  auto log = common::logger("cleanup");
  auto last_run = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, kTick, [this] { return stopping_ || triggered_; });
    if (stopping_) {
      break;
    }
    const auto interval = settings_.cache.cleanup_interval;
    // A write the full disk refused asks for room as the reserve does.
    const auto min_free = settings_.min_free + store_.shortage();
    bool due = triggered_ || std::chrono::steady_clock::now() - last_run >= interval;
    triggered_ = false;
    lock.unlock();

    metadata_.flushUses();
    if (!due && min_free > 0) {
      const auto space = store_.space();
      due = space && space->available < min_free;
    }
    if (due) {
      try {
        runNow(false);
      } catch (const std::exception& e) {
        log->error("cleanup failed: err={}", e.what());
      }
      last_run = std::chrono::steady_clock::now();
    }
    lock.lock();
  }
}

CleanupPolicy CacheCleaner::policyFor(const CacheInventory& inventory) const {
  std::lock_guard lock(mutex_);
  const auto& cache = settings_.cache;
  CleanupPolicy policy;
  policy.limit = cache.max_size;
  if (cache.max_size_percent > 0 && inventory.space) {
    policy.limit = static_cast<std::uint64_t>(static_cast<long double>(inventory.space->capacity) *
                                              cache.max_size_percent / 100.0L);
  }
  policy.high_watermark = cache.high_watermark;
  policy.low_watermark = cache.low_watermark;
  policy.min_free = settings_.min_free + store_.shortage();
  policy.expire_after = cache.expire_after;
  return policy;
}

std::set<Digest> CacheCleaner::pinnedIn(const CacheInventory& inventory) const {
  std::vector<PinnedImage> pins;
  {
    std::lock_guard lock(mutex_);
    pins = settings_.pinned;
  }
  std::set<Digest> pinned;
  for (const auto& pin : pins) {
    if (pin.digest) {
      pinned.insert(*pin.digest);
      continue;
    }
    for (const auto& repository : inventory.repositories) {
      if (repository.upstream != pin.upstream || repository.repository != pin.repository) {
        continue;
      }
      if (const auto it = repository.tags.find(pin.tag->str()); it != repository.tags.end()) {
        pinned.insert(it->second.digest);
      }
    }
  }
  return pinned;
}

CacheInventory CacheCleaner::inventory() {
  return readInventory(store_, metadata_);
}

CleanupPlan CacheCleaner::runNow(bool dry_run, std::optional<std::uint64_t> limit) {
  std::lock_guard run(run_mutex_);
  const auto added = stored_since_.exchange(0);
  const auto inventory = readInventory(store_, metadata_);
  auto policy = policyFor(inventory);
  if (dry_run && limit) {
    policy.limit = *limit;
  }
  policy.pinned = pinnedIn(inventory);
  const auto plan = planCleanup(inventory, policy, clock_.now());

  if (dry_run) {
    stored_since_ += added;
    return plan;
  }
  apply(plan);
  last_bytes_ = inventory.bytes - plan.bytes_freed;
  high_mark_ = static_cast<std::uint64_t>(static_cast<long double>(policy.limit) *
                                          policy.high_watermark / 100.0L);
  {
    std::lock_guard lock(mutex_);
    status_.limit = policy.limit;
    status_.last_run = clock_.now();
    status_.shortfall = plan.shortfall;
  }
  if (!plan.shortfall.empty()) {
    common::logger("cleanup")->warn("cache over its limits: bytes={} limit={} reason={}",
                                    last_bytes_.load(), policy.limit, plan.shortfall);
  }
  return plan;
}

CleanupPlan CacheCleaner::remove(const Deletion& deletion, bool dry_run) {
  std::lock_guard run(run_mutex_);
  const auto inventory = readInventory(store_, metadata_);
  const auto plan = planDeletion(inventory, deletion);
  if (!dry_run) {
    apply(plan);
    last_bytes_ = inventory.bytes - plan.bytes_freed;
  }
  return plan;
}

// TODO: re-check each image's last use just before removing it; an image pulled again between
// the inventory and its removal is removed anyway, and its next blobs come from the upstream.
void CacheCleaner::apply(const CleanupPlan& plan) {
  auto log = common::logger("cleanup");
  // Names first, so no new request finds content that is about to go; then the content.
  for (const auto& entry : plan.tags) {
    if (const auto tag = Tag::parse(entry.name)) {
      metadata_.removeTag(entry.upstream, entry.repository, *tag);
    }
  }
  for (const auto& entry : plan.links) {
    if (const auto digest = Digest::parse(entry.name)) {
      metadata_.unlink(entry.upstream, entry.repository, *digest);
    }
  }
  for (const auto& entry : plan.repositories) {
    metadata_.removeRepository(entry.upstream, entry.repository);
  }
  for (const auto& digest : plan.content) {
    metadata_.removeContent(digest);
  }

  std::lock_guard lock(mutex_);
  for (const auto& image : plan.images) {
    const auto* reason = toString(image.reason);
    ++status_.removed_images[reason];
    status_.removed_bytes[reason] += image.freed;
    log->info("image removed: reason={} digest={} names={} freed={}", reason, image.root.str(),
              joined(image.names), image.freed);
  }
  if (!plan.images.empty()) {
    log->info("cleanup done: images={} freed={} bytes={} limit={}", plan.images.size(),
              plan.bytes_freed, plan.bytes_before - plan.bytes_freed, plan.limit);
  }
}

CleanupStatus CacheCleaner::status() const {
  std::lock_guard lock(mutex_);
  auto status = status_;
  status.bytes = last_bytes_ + stored_since_;
  return status;
}

} // namespace proxy
