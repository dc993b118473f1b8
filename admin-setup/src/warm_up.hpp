#pragma once

#include "config.hpp"
#include "registry_client.hpp"

#include <cstdint>
#include <set>
#include <string>

namespace admin {

/// One image in the cache, and what the end-to-end check can ask for again.
struct WarmedImage {
  common::ImageReference image;
  /// The digest of what the reference names (an index, or a single manifest).
  std::string digest;
  /// An image manifest of it (the first platform fetched) and its config blob.
  std::string manifest_digest;
  std::string blob_digest;
  std::optional<std::uint64_t> blob_size;
};

/// What a warm-up fetched, over all images.
struct WarmUpTotals {
  std::size_t images = 0;
  std::size_t failed = 0;
  std::size_t manifests = 0;
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;
};

/// Step 3: pulls images through the proxy as a client would, so that it caches them: the
/// manifest the reference names, the image manifests of the wanted platforms, and every blob
/// they list, each verified against its digest. A blob shared by several images is fetched
/// once per run.
class WarmUp {
public:
  explicit WarmUp(const RegistryClient& client) : client_(client) {}

  /// Warms one image; on failure the error says which request failed and why.
  common::Result<WarmedImage, FetchError> warm(const common::WarmImage& image);

  const WarmUpTotals& totals() const { return totals_; }

private:
  common::Result<std::string, FetchError>
  warmManifest(const common::ImageReference& image, const std::string& digest, WarmedImage& warmed);

  const RegistryClient& client_;
  WarmUpTotals totals_;
  std::set<std::string> blobs_done_;
};

} // namespace admin
