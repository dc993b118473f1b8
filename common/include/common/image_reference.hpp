#pragma once

#include "common/result.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace common {

/// A platform as image indexes name it: os/architecture[/variant] (OCI image index,
/// "platform" object).
struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;

  /// "linux/arm64/v8".
  std::string str() const;

  /// Parses "linux/amd64", "linux/arm64/v8", "windows/amd64". Nothing for anything else.
  static std::optional<Platform> parse(std::string_view text);

  /// Whether an index entry offering `offered` is this platform. A variant left out means the
  /// architecture's usual one (v8 for arm64, v7 for arm), as Docker and containerd match.
  bool matches(const Platform& offered) const;

  bool operator==(const Platform&) const = default;
};

/// An image as people write it ("alpine:3.20", "ghcr.io/owner/app@sha256:..."), normalized the
/// way Docker does: no registry means docker.io, and a one-segment Docker Hub name means
/// library/<name>.
struct ImageReference {
  /// "docker.io", "ghcr.io", "registry.lan:5000".
  std::string registry;
  /// "library/alpine".
  std::string repository;
  /// "3.20"; "latest" when neither a tag nor a digest is given; empty with a digest only.
  std::string tag;
  /// "sha256:<hex>" when pinned; may accompany a tag (then the digest decides).
  std::string digest;

  /// What goes after /manifests/: the digest when pinned, else the tag.
  const std::string& reference() const { return digest.empty() ? tag : digest; }

  /// "docker.io/library/alpine:3.20", "ghcr.io/o/app@sha256:...".
  std::string str() const;

  /// Parses and normalizes; the error says what was wrong and what is expected.
  static common::Result<ImageReference, std::string> parse(std::string_view text);
};

/// Whether `text` is "sha256:<64 hex>" or "sha512:<128 hex>" (lower case), the digests we can
/// verify.
bool isSupportedDigest(std::string_view text);

} // namespace common
