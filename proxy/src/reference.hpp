#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace proxy {

/// A repository name as the distribution spec's grammar allows it: lowercase path components
/// of [a-z0-9] separated by '.', '_', '__' or '-'s, joined by '/', at most 255 characters.
/// Once constructed it is safe to put into a filesystem path or an upstream URL.
class RepositoryName {
public:
  /// Validates `text`; nothing if it breaks the grammar.
  static std::optional<RepositoryName> parse(std::string_view text);

  const std::string& str() const { return value_; }
  bool operator==(const RepositoryName&) const = default;
  auto operator<=>(const RepositoryName&) const = default;

private:
  explicit RepositoryName(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

/// A content digest `algorithm:encoded`. sha256 and sha512 are accepted (the algorithms the
/// spec registers); the encoded part must be lowercase hex of the algorithm's length.
class Digest {
public:
  static std::optional<Digest> parse(std::string_view text);

  /// The sha256 digest of `bytes`.
  static Digest sha256Of(std::string_view bytes);

  const std::string& str() const { return value_; }
  std::string_view algorithm() const;
  std::string_view encoded() const;
  bool operator==(const Digest&) const = default;
  auto operator<=>(const Digest&) const = default;

private:
  explicit Digest(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

/// A tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
class Tag {
public:
  static std::optional<Tag> parse(std::string_view text);

  const std::string& str() const { return value_; }
  bool operator==(const Tag&) const = default;
  auto operator<=>(const Tag&) const = default;

private:
  explicit Tag(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

/// What `/manifests/<reference>` names: a tag or a digest.
using Reference = std::variant<Tag, Digest>;

/// Parses a reference: a digest if it contains ':', else a tag.
std::optional<Reference> parseReference(std::string_view text);

/// The reference as text.
std::string toString(const Reference& reference);

} // namespace proxy

template <> struct std::hash<proxy::Digest> {
  size_t operator()(const proxy::Digest& d) const noexcept {
    return std::hash<std::string>{}(d.str());
  }
};
template <> struct std::hash<proxy::RepositoryName> {
  size_t operator()(const proxy::RepositoryName& r) const noexcept {
    return std::hash<std::string>{}(r.str());
  }
};
