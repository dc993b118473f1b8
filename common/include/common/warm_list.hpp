#pragma once

#include "common/image_reference.hpp"

#include <string>
#include <vector>

namespace common {

/// One image to keep in the cache: the proxy pins and refreshes it, admin-setup warms it.
struct WarmImage {
  ImageReference image;
  /// The platforms to fetch from an image index; empty: every one it lists.
  std::vector<Platform> platforms;
};

/// Parses a platform list: "all" or "" (every platform), or os/architecture[/variant] entries
/// separated by commas, spaces or '+'. Throws common::ConfigError naming the bad entry.
std::vector<Platform> parsePlatforms(const std::string& text);

/// Parses a warm list (DCP_WARM_IMAGES): entries separated by commas or white space, each an
/// image reference, optionally followed by `=` and platforms joined by `+`
/// ("nginx:1.27=linux/amd64+linux/arm64"). `platforms` applies to entries without their own.
/// Duplicates are dropped. Errors are common::ConfigError messages that start with `source`.
std::vector<WarmImage> parseWarmImages(const std::string& text,
                                       const std::vector<Platform>& platforms,
                                       const std::string& source);

} // namespace common
