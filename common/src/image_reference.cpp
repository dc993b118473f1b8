#include "common/image_reference.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

namespace common {
namespace {

// The grammar of distribution's reference package (reference/regexp.go), which Docker,
// containerd and the registries share.
const std::regex& pathComponent() {
  static const std::regex re("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
  return re;
}

const std::regex& domainPattern() {
  static const std::regex re("(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
                             "(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                             "|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?");
  return re;
}

const std::regex& tagPattern() {
  static const std::regex re("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  return re;
}

bool isHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The first segment names a registry when it looks like a host: a dot, a port, or localhost
// (the rule of Docker's ParseNormalizedNamed).
bool looksLikeRegistry(std::string_view segment) {
  return segment.find('.') != std::string_view::npos ||
         segment.find(':') != std::string_view::npos || segment == "localhost" ||
         std::any_of(segment.begin(), segment.end(),
                     [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; });
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string defaultVariant(const std::string& architecture) {
  if (architecture == "arm64") {
    return "v8";
  }
  if (architecture == "arm") {
    return "v7";
  }
  return "";
}

} // namespace

std::string Platform::str() const {
  return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
}

std::optional<Platform> Platform::parse(std::string_view text) {
  static const std::regex part("[a-z0-9_.-]+");
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const auto slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) {
    return std::nullopt;
  }
  for (const auto& p : parts) {
    if (!std::regex_match(p, part)) {
      return std::nullopt;
    }
  }
  Platform platform{parts[0], parts[1], parts.size() == 3 ? parts[2] : ""};
  return platform;
}

bool Platform::matches(const Platform& offered) const {
  if (os != offered.os || architecture != offered.architecture) {
    return false;
  }
  const auto wanted = variant.empty() ? defaultVariant(architecture) : variant;
  const auto got = offered.variant.empty() ? defaultVariant(offered.architecture) : offered.variant;
  return wanted == got;
}

std::string ImageReference::str() const {
  std::string text = registry + "/" + repository;
  if (!tag.empty()) {
    text += ":" + tag;
  }
  if (!digest.empty()) {
    text += "@" + digest;
  }
  return text;
}

bool isSupportedDigest(std::string_view text) {
  if (text.rfind("sha256:", 0) == 0) {
    return text.size() == 7 + 64 && isHex(text.substr(7));
  }
  if (text.rfind("sha512:", 0) == 0) {
    return text.size() == 7 + 128 && isHex(text.substr(7));
  }
  return false;
}

common::Result<ImageReference, std::string> ImageReference::parse(std::string_view input) {
  const std::string quoted = "\"" + std::string(input) + "\"";
  const std::string expected =
      ", expected an image like alpine:3.20, ghcr.io/owner/app:v1 or name@sha256:<digest>";
  if (input.empty()) {
    return std::string("empty image reference") + expected;
  }
  std::string text(input);
  ImageReference ref;

  if (const auto at = text.find('@'); at != std::string::npos) {
    ref.digest = text.substr(at + 1);
    text.erase(at);
    if (!isSupportedDigest(ref.digest)) {
      return quoted + ": bad digest \"" + ref.digest +
             "\", expected sha256: and 64 lower-case hex digits";
    }
  }
  // A colon after the last slash starts the tag; one before it belongs to a registry's port.
  const auto last_slash = text.rfind('/');
  const auto colon = text.rfind(':');
  if (colon != std::string::npos && (last_slash == std::string::npos || colon > last_slash)) {
    ref.tag = text.substr(colon + 1);
    text.erase(colon);
    if (!std::regex_match(ref.tag, tagPattern())) {
      return quoted + ": bad tag \"" + ref.tag +
             "\", expected letters, digits, '_', '.', '-' (at most 128, not starting with . or -)";
    }
  }

  const auto slash = text.find('/');
  if (slash != std::string::npos && looksLikeRegistry(text.substr(0, slash))) {
    ref.registry = lower(text.substr(0, slash));
    ref.repository = text.substr(slash + 1);
    if (!std::regex_match(text.substr(0, slash), domainPattern())) {
      return quoted + ": bad registry \"" + text.substr(0, slash) + "\"" + expected;
    }
  } else {
    ref.registry = "docker.io";
    ref.repository = text;
  }
  if (ref.registry == "index.docker.io" || ref.registry == "registry-1.docker.io") {
    ref.registry = "docker.io";
  }
  if (ref.registry == "docker.io" && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }

  size_t start = 0;
  while (true) {
    const auto next = ref.repository.find('/', start);
    const auto component =
        ref.repository.substr(start, next == std::string::npos ? std::string::npos : next - start);
    if (!std::regex_match(component, pathComponent())) {
      return quoted + ": bad repository name \"" + ref.repository +
             "\", expected lower-case letters, digits and separators (. _ __ -) between slashes";
    }
    if (next == std::string::npos) {
      break;
    }
    start = next + 1;
  }
  if (ref.repository.size() > 255) {
    return quoted + ": repository name longer than 255 characters" + expected;
  }
  if (ref.tag.empty() && ref.digest.empty()) {
    ref.tag = "latest";
  }
  return ref;
}

} // namespace common
