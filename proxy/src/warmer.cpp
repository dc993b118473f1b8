#include "warmer.hpp"

#include "common/logging.hpp"
#include "common/manifest.hpp"

#include <algorithm>

namespace proxy {

Warmer::Warmer(Upstreams& upstreams, ManifestService& manifests, BlobService& blobs,
               const common::Clock& clock)
    : upstreams_(upstreams), manifests_(manifests), blobs_(blobs), clock_(clock) {}

Warmer::~Warmer() {
  stop();
}

void Warmer::configure(const WarmConfig& config) {
  {
    std::lock_guard lock(mutex_);
    config_ = config;
    std::vector<WarmImageStatus> status;
    for (const auto& image : config_.images) {
      const auto name = image.image.str();
      const auto known = std::find_if(status_.begin(), status_.end(),
                                      [&](const auto& entry) { return entry.image == name; });
      status.push_back(known != status_.end() ? *known : WarmImageStatus{name});
    }
    status_ = std::move(status);
    reconfigured_ = true;
  }
  wake_.notify_all();
}

void Warmer::start() {
  std::lock_guard lock(mutex_);
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void Warmer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

std::chrono::milliseconds Warmer::interval() const {
  std::lock_guard lock(mutex_);
  return config_.refresh_interval;
}

std::vector<WarmImageStatus> Warmer::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

void Warmer::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const bool empty = config_.images.empty();
    reconfigured_ = false;
    lock.unlock();
    if (!empty) {
      refreshNow();
    }
    lock.lock();
    wake_.wait_for(lock, config_.refresh_interval, [this] { return stopping_ || reconfigured_; });
  }
}

// TODO: refresh several images at once; a long list of large images takes the sum of their
// download times, and the admin API's refresh waits for all of it.
std::vector<WarmImageStatus> Warmer::refreshNow() {
  std::lock_guard refreshing(refresh_mutex_);
  std::vector<common::WarmImage> images;
  {
    std::lock_guard lock(mutex_);
    images = config_.images;
  }
  auto log = common::logger("warm");
  for (const auto& image : images) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        break;
      }
    }
    const auto name = image.image.str();
    std::optional<Digest> digest;
    const auto error = refresh(image, digest);
    const auto now = clock_.now();
    if (error) {
      log->warn("warm image not refreshed: image={} err={}", name, *error);
    } else {
      log->info("warm image refreshed: image={} digest={}", name, digest ? digest->str() : "-");
    }
    std::lock_guard lock(mutex_);
    for (auto& entry : status_) {
      if (entry.image != name) {
        continue;
      }
      entry.tried_at = now;
      entry.error = error.value_or("");
      if (!error) {
        entry.refreshed_at = now;
        entry.digest = digest;
      }
    }
  }
  return status();
}

std::optional<std::string> Warmer::refresh(const common::WarmImage& image,
                                           std::optional<Digest>& digest) {
  const auto upstreams = upstreams_.current();
  const auto* config = upstreams->config.findUpstream(image.image.registry);
  const auto client = config ? upstreams->client(config->name) : nullptr;
  if (!client) {
    return "registry " + image.image.registry + " is not a configured upstream";
  }
  const auto repository = RepositoryName::parse(image.image.repository);
  const auto reference = parseReference(image.image.reference());
  if (!repository || !reference) {
    return "not a valid repository and reference";
  }
  return cacheManifest(*client, *repository, *reference, image.platforms, &digest);
}

std::optional<std::string> Warmer::cacheManifest(Upstream& upstream,
                                                 const RepositoryName& repository,
                                                 const Reference& reference,
                                                 const std::vector<common::Platform>& platforms,
                                                 std::optional<Digest>* digest) {
  // Ask the upstream now, whatever the tag's lifetime says: that is the point of a refresh.
  const auto answer =
      manifests_.resolve(upstream, repository, reference, AcceptList(""), true, true);
  const auto what = "manifest " + repository.str() + ":" + toString(reference);
  if (!answer.ok()) {
    return what + ": " + answer.error().message;
  }
  if (answer->source == Source::Stale) {
    return what + ": the upstream is unreachable; the cached image stays";
  }
  if (digest) {
    *digest = answer->digest;
  }
  const auto parsed = common::parseManifest(answer->body.value_or(""), answer->media_type);
  if (!parsed) {
    return what + ": " + parsed.error();
  }
  for (const auto& child : parsed->manifests) {
    const bool wanted =
        platforms.empty() || !child.platform ||
        std::any_of(platforms.begin(), platforms.end(),
                    [&](const common::Platform& p) { return p.matches(*child.platform); });
    const auto child_digest = Digest::parse(child.digest);
    if (!wanted || !child_digest) {
      continue;
    }
    if (auto error = cacheManifest(upstream, repository, *child_digest, {}, nullptr)) {
      return error;
    }
  }
  for (const auto& blob : parsed->blobs) {
    const auto blob_digest = Digest::parse(blob.digest);
    if (!blob_digest) {
      return what + ": names a blob with a digest the proxy cannot verify: " + blob.digest;
    }
    if (auto error = cacheBlob(upstream, repository, *blob_digest)) {
      return error;
    }
  }
  return std::nullopt;
}

std::optional<std::string> Warmer::cacheBlob(Upstream& upstream, const RepositoryName& repository,
                                             const Digest& digest) {
  auto answer = blobs_.resolve(upstream, repository, digest, true);
  const auto what = "blob " + digest.str() + " of " + repository.str();
  if (!answer.ok()) {
    return what + ": " + answer.error().message;
  }
  if (answer->pass_through) {
    return what + ": the cache cannot store it (storage full)";
  }
  if (!answer->download) {
    return std::nullopt; // cached already
  }
  // Wait for the download, which other clients may share, to be verified and committed.
  std::uint64_t offset = 0;
  while (true) {
    const auto readable = answer->download->waitReadable(offset);
    if (!readable.ok()) {
      return what + ": " + readable.error().message;
    }
    if (readable->end == offset) {
      break;
    }
    offset = readable->end;
  }
  if (!answer->download->download().committed()) {
    return what + ": the cache cannot store it (storage full)";
  }
  return std::nullopt;
}

} // namespace proxy
