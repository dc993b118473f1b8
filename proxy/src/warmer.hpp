#pragma once

#include "blobs.hpp"
#include "config.hpp"
#include "manifests.hpp"
#include "upstream_set.hpp"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace proxy {

/// How fresh one image of the warm list is.
struct WarmImageStatus {
  /// "docker.io/library/alpine:3.20".
  std::string image;
  /// What the tag pointed at when last refreshed.
  std::optional<Digest> digest;
  /// The last refresh that reached the upstream and has everything cached, and the last try.
  std::optional<common::Clock::TimePoint> refreshed_at;
  std::optional<common::Clock::TimePoint> tried_at;
  /// Why the last try failed; empty when it succeeded.
  std::string error;
};

/// Keeps the warm list in the cache: on a schedule it asks the upstream (with HEAD, which
/// Docker Hub does not count) whether each tag moved and fetches what it points at, all
/// platforms or the listed ones, so a moved tag such as latest is cached before anyone asks.
class Warmer {
public:
  Warmer(Upstreams& upstreams, ManifestService& manifests, BlobService& blobs,
         const common::Clock& clock);
  ~Warmer();
  Warmer(const Warmer&) = delete;
  Warmer& operator=(const Warmer&) = delete;

  /// A new list or interval; the next refresh follows the new schedule.
  void configure(const WarmConfig& config);
  /// Refreshes at once, then every refresh interval.
  void start();
  void stop();

  /// Refreshes every image now and returns how each went.
  std::vector<WarmImageStatus> refreshNow();
  std::vector<WarmImageStatus> status() const;
  std::chrono::milliseconds interval() const;

private:
  /// Refreshes one image; the error, or nothing on success.
  std::optional<std::string> refresh(const common::WarmImage& image, std::optional<Digest>& digest);
  std::optional<std::string> cacheManifest(Upstream& upstream, const RepositoryName& repository,
                                           const Reference& reference,
                                           const std::vector<common::Platform>& platforms,
                                           std::optional<Digest>* digest);
  std::optional<std::string> cacheBlob(Upstream& upstream, const RepositoryName& repository,
                                       const Digest& digest);
  void loop();

  Upstreams& upstreams_;
  ManifestService& manifests_;
  BlobService& blobs_;
  const common::Clock& clock_;
  mutable std::mutex mutex_;
  WarmConfig config_;
  std::vector<WarmImageStatus> status_;
  std::mutex refresh_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool reconfigured_ = false;
  std::thread thread_;
};

} // namespace proxy
