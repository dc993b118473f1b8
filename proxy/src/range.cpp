#include "range.hpp"

#include <charconv>

namespace proxy {
namespace {

std::optional<std::uint64_t> parseNumber(std::string_view text) {
  while (!text.empty() && text.front() == ' ') {
    text.remove_prefix(1);
  }
  while (!text.empty() && text.back() == ' ') {
    text.remove_suffix(1);
  }
  if (text.empty()) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

} // namespace

RangeRequest parseRange(std::optional<std::string_view> header, std::uint64_t size) {
  RangeRequest full;
  if (!header) {
    return full;
  }
  auto spec = *header;
  constexpr std::string_view kUnit = "bytes=";
  if (spec.substr(0, kUnit.size()) != kUnit) {
    return full;
  }
  spec.remove_prefix(kUnit.size());
  if (spec.find(',') != std::string_view::npos) {
    return full;
  }
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) {
    return full;
  }
  const auto first_text = spec.substr(0, dash);
  const auto last_text = spec.substr(dash + 1);

  RangeRequest out;
  out.kind = RangeRequest::Kind::Partial;
  if (first_text.find_first_not_of(' ') == std::string_view::npos) {
    // Suffix range: the last N bytes.
    const auto suffix = parseNumber(last_text);
    if (!suffix) {
      return full;
    }
    if (*suffix == 0 || size == 0) {
      return RangeRequest{RangeRequest::Kind::Unsatisfiable, {}};
    }
    out.range.first = *suffix >= size ? 0 : size - *suffix;
    out.range.last = size - 1;
    return out;
  }
  const auto first = parseNumber(first_text);
  if (!first) {
    return full;
  }
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (last_text.find_first_not_of(' ') != std::string_view::npos) {
    const auto parsed = parseNumber(last_text);
    if (!parsed || *parsed < *first) {
      return full;
    }
    last = std::min(*parsed, last);
  }
  if (*first >= size) {
    return RangeRequest{RangeRequest::Kind::Unsatisfiable, {}};
  }
  out.range = ByteRange{*first, last};
  return out;
}

} // namespace proxy
