#pragma once

#include "common/image_reference.hpp"
#include "common/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace common {

/// The media types a manifest request accepts: image indexes and manifests, OCI and Docker.
extern const char* const kManifestAccept;

/// A content descriptor (OCI image spec, descriptor.md).
struct Descriptor {
  std::string media_type;
  std::string digest;
  std::optional<std::uint64_t> size;
  /// Set for the entries of an image index.
  std::optional<Platform> platform;
};

/// What a manifest points at: other manifests (an index) or blobs (config and layers).
struct ParsedManifest {
  bool index = false;
  std::string media_type;
  /// The entries of an index.
  std::vector<Descriptor> manifests;
  /// The config (first) and the layers of an image manifest.
  std::vector<Descriptor> blobs;
};

/// Parses a manifest body. `content_type` is the answer's Content-Type; the body's own
/// mediaType decides when that is missing or generic. The error says what is wrong.
common::Result<ParsedManifest, std::string> parseManifest(const std::string& body,
                                                          const std::string& content_type);

} // namespace common
