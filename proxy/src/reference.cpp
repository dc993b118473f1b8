#include "reference.hpp"

#include "common/digest_hasher.hpp"

namespace proxy {
namespace {

bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool isLowerHex(char c) {
  return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9');
}

// path-component = alpha-numeric (separator alpha-numeric)*
// separator      = /[_.]|__|[-]+/   (distribution spec, "Pulling manifests")
bool isPathComponent(std::string_view c) {
  if (c.empty() || !isLowerAlnum(c.front()) || !isLowerAlnum(c.back())) {
    return false;
  }
  size_t i = 0;
  while (i < c.size()) {
    if (isLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    // A separator run: '.', '_', '__', or one or more '-'.
    size_t j = i;
    while (j < c.size() && !isLowerAlnum(c[j])) {
      ++j;
    }
    const auto sep = c.substr(i, j - i);
    const bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) {
      return false;
    }
    i = j;
  }
  return true;
}

} // namespace

std::optional<RepositoryName> RepositoryName::parse(std::string_view text) {
  if (text.empty() || text.size() > 255) {
    return std::nullopt;
  }
  size_t start = 0;
  while (true) {
    const auto slash = text.find('/', start);
    const auto component = text.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!isPathComponent(component)) {
      return std::nullopt;
    }
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  return RepositoryName(std::string(text));
}

std::optional<Digest> Digest::parse(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  const auto algorithm = text.substr(0, colon);
  const auto encoded = text.substr(colon + 1);
  size_t expected = 0;
  if (algorithm == "sha256") {
    expected = 64;
  } else if (algorithm == "sha512") {
    expected = 128;
  } else {
    return std::nullopt;
  }
  if (encoded.size() != expected) {
    return std::nullopt;
  }
  for (char c : encoded) {
    if (!isLowerHex(c)) {
      return std::nullopt;
    }
  }
  return Digest(std::string(text));
}

Digest Digest::sha256Of(std::string_view bytes) {
  return Digest(common::digestOf("sha256", bytes));
}

std::string_view Digest::algorithm() const {
  return std::string_view(value_).substr(0, value_.find(':'));
}

std::string_view Digest::encoded() const {
  return std::string_view(value_).substr(value_.find(':') + 1);
}

std::optional<Tag> Tag::parse(std::string_view text) {
  if (text.empty() || text.size() > 128) {
    return std::nullopt;
  }
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(text.front())) {
    return std::nullopt;
  }
  for (char c : text) {
    if (!(word(c) || c == '.' || c == '-')) {
      return std::nullopt;
    }
  }
  return Tag(std::string(text));
}

std::optional<Reference> parseReference(std::string_view text) {
  if (text.find(':') != std::string_view::npos) {
    if (auto digest = Digest::parse(text)) {
      return Reference(*digest);
    }
    return std::nullopt;
  }
  if (auto tag = Tag::parse(text)) {
    return Reference(*tag);
  }
  return std::nullopt;
}

std::string toString(const Reference& reference) {
  return std::visit([](const auto& r) { return r.str(); }, reference);
}

} // namespace proxy
