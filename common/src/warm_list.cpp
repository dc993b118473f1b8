#include "common/warm_list.hpp"

#include "common/errors.hpp"

#include <set>
#include <string_view>

namespace common {
namespace {

// Splits on any of `separators`, dropping empty items.
std::vector<std::string> split(std::string_view text, std::string_view separators) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    const auto end = text.find_first_of(separators, start);
    const auto item = text.substr(start, end == std::string_view::npos ? end : end - start);
    if (!item.empty()) {
      items.emplace_back(item);
    }
    if (end == std::string_view::npos) {
      break;
    }
    start = end + 1;
  }
  return items;
}

} // namespace

std::vector<Platform> parsePlatforms(const std::string& text) {
  std::vector<Platform> platforms;
  const auto items = split(text, ", \t\n+");
  if (items.empty() || (items.size() == 1 && items[0] == "all")) {
    return platforms;
  }
  for (const auto& item : items) {
    const auto platform = Platform::parse(item);
    if (!platform) {
      throw ConfigError(
          "bad platform \"" + item +
          "\", expected all or os/architecture[/variant] such as linux/amd64 or linux/arm/v7");
    }
    platforms.push_back(*platform);
  }
  return platforms;
}

std::vector<WarmImage> parseWarmImages(const std::string& text,
                                       const std::vector<Platform>& platforms,
                                       const std::string& source) {
  std::vector<WarmImage> images;
  std::set<std::string> seen;
  for (const auto& entry : split(text, ", \t\r\n")) {
    const auto equals = entry.find('=');
    const auto name = entry.substr(0, equals);
    auto parsed = ImageReference::parse(name);
    if (!parsed) {
      throw ConfigError(source + ": " + parsed.error());
    }
    WarmImage image{std::move(parsed.value()), platforms};
    if (equals != std::string::npos) {
      const auto own = entry.substr(equals + 1);
      if (own.empty()) {
        throw ConfigError(source + ": \"" + entry +
                          "\" has '=' but no platforms, expected image=os/arch[+os/arch]");
      }
      try {
        image.platforms = parsePlatforms(own);
      } catch (const ConfigError& e) {
        throw ConfigError(source + ": " + e.what());
      }
    }
    if (seen.insert(image.image.str()).second) {
      images.push_back(std::move(image));
    }
  }
  return images;
}

} // namespace common
