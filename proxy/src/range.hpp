#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace proxy {

/// A single byte range resolved against a body's size: [first, last], inclusive.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t length() const { return last - first + 1; }
};

/// What a Range header asks of a body of `size` bytes (RFC 9110 section 14.2).
struct RangeRequest {
  enum class Kind {
    Full,          ///< no Range, or one to ignore (malformed, not bytes=, several ranges)
    Partial,       ///< 206 with `range`
    Unsatisfiable, ///< 416
  };
  Kind kind = Kind::Full;
  ByteRange range;
};

/// Resolves `header` ("bytes=0-99", "bytes=100-", "bytes=-500") against `size`. A header that
/// does not parse is ignored, as RFC 9110 allows; so are multi-range requests, which clients
/// accept a full 200 for.
RangeRequest parseRange(std::optional<std::string_view> header, std::uint64_t size);

} // namespace proxy
