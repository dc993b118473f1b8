#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

/// An IPv4 or IPv6 network ("192.168.0.0/16", "fc00::/7"; a bare address is a /32 or /128).
/// IPv4 is held as IPv4-mapped IPv6, so "::ffff:10.0.0.1" from a dual-stack socket matches
/// "10.0.0.0/8".
class Network {
public:
  static std::optional<Network> parse(std::string_view text);
  bool contains(std::string_view address) const;
  const std::string& str() const { return text_; }

private:
  std::array<unsigned char, 16> bytes_{};
  int prefix_ = 0;
  std::string text_;
};

/// Parses an address into 16 bytes (IPv4 mapped); nothing when it is not an address.
std::optional<std::array<unsigned char, 16>> parseAddress(std::string_view text);

/// Whether `address` is in any of `networks`.
bool inAny(const std::vector<Network>& networks, std::string_view address);

} // namespace proxy
