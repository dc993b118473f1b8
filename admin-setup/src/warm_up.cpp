#include "warm_up.hpp"

#include "common/logging.hpp"
#include "common/manifest.hpp"

#include <algorithm>
#include <cstdio>

namespace admin {
namespace {

std::string platformList(const std::vector<common::Platform>& platforms) {
  if (platforms.empty()) {
    return "all";
  }
  std::string text;
  for (const auto& p : platforms) {
    text += (text.empty() ? "" : ",") + p.str();
  }
  return text;
}

// Rounded like the run's summary, so the two agree.
std::string megabytes(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1fMB", static_cast<double>(bytes) / 1e6);
  return text;
}

} // namespace

common::Result<std::string, FetchError> WarmUp::warmManifest(const common::ImageReference& image,
                                                             const std::string& digest,
                                                             WarmedImage& warmed) {
  auto log = common::logger("warm-up");
  auto fetched = client_.manifest(image, digest);
  if (!fetched) {
    return fetched.error();
  }
  ++totals_.manifests;
  auto parsed = common::parseManifest(fetched->body, fetched->media_type);
  if (!parsed) {
    return FetchError{FetchError::Kind::Content, 200,
                      "manifest " + digest + " of " + image.str() + ": " + parsed.error()};
  }
  if (parsed->index) {
    return FetchError{FetchError::Kind::Content, 200,
                      "manifest " + digest + " of " + image.str() +
                          " is an index inside an index, which clients do not pull"};
  }
  for (const auto& blob : parsed->blobs) {
    if (blobs_done_.count(blob.digest)) {
      continue;
    }
    auto bytes = client_.blob(image, blob.digest, blob.size);
    if (!bytes) {
      return bytes.error();
    }
    blobs_done_.insert(blob.digest);
    ++totals_.blobs;
    totals_.bytes += bytes.value();
    log->debug("blob cached: image={} digest={} bytes={}", image.str(), blob.digest, bytes.value());
  }
  if (warmed.manifest_digest.empty()) {
    warmed.manifest_digest = digest;
    warmed.blob_digest = parsed->blobs.front().digest;
    warmed.blob_size = parsed->blobs.front().size;
  }
  return digest;
}

common::Result<WarmedImage, FetchError> WarmUp::warm(const common::WarmImage& wanted) {
  auto log = common::logger("warm-up");
  const auto& image = wanted.image;
  const auto before = totals_;
  ++totals_.images;

  auto top = client_.manifest(image, image.reference());
  if (!top) {
    ++totals_.failed;
    return top.error();
  }
  ++totals_.manifests;
  auto parsed = common::parseManifest(top->body, top->media_type);
  if (!parsed) {
    ++totals_.failed;
    return FetchError{FetchError::Kind::Content, 200, image.str() + ": " + parsed.error()};
  }

  WarmedImage warmed;
  warmed.image = image;
  warmed.digest = top->digest;
  if (!parsed->index) {
    // One platform only: the manifest the tag names is the image itself.
    --totals_.manifests;
    auto done = warmManifest(image, top->digest, warmed);
    if (!done) {
      ++totals_.failed;
      return done.error();
    }
  } else {
    std::vector<common::Platform> missing = wanted.platforms;
    std::size_t chosen = 0;
    for (const auto& entry : parsed->manifests) {
      bool wanted_entry = wanted.platforms.empty();
      if (!wanted_entry && entry.platform) {
        for (const auto& p : wanted.platforms) {
          if (p.matches(*entry.platform)) {
            wanted_entry = true;
            missing.erase(std::remove(missing.begin(), missing.end(), p), missing.end());
          }
        }
      }
      if (!wanted_entry) {
        continue;
      }
      ++chosen;
      auto done = warmManifest(image, entry.digest, warmed);
      if (!done) {
        ++totals_.failed;
        return done.error();
      }
    }
    for (const auto& p : missing) {
      log->warn("platform not offered by the image, skipped: image={} platform={}", image.str(),
                p.str());
    }
    if (chosen == 0) {
      ++totals_.failed;
      return FetchError{FetchError::Kind::Status, 404,
                        image.str() + " offers none of the platforms " +
                            platformList(wanted.platforms)};
    }
  }
  log->info("image cached: image={} digest={} platforms={} manifests={} blobs={} size={}",
            image.str(), warmed.digest, platformList(wanted.platforms),
            totals_.manifests - before.manifests, totals_.blobs - before.blobs,
            megabytes(totals_.bytes - before.bytes));
  return warmed;
}

} // namespace admin
