#include "cidr.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>

namespace proxy {

std::optional<std::array<unsigned char, 16>> parseAddress(std::string_view text) {
  std::string address(text);
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  std::array<unsigned char, 16> out{};
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

std::optional<Network> Network::parse(std::string_view text) {
  const auto slash = text.find('/');
  const auto address_text = text.substr(0, slash);
  const bool v4 = address_text.find(':') == std::string_view::npos;
  auto address = parseAddress(address_text);
  if (!address) {
    return std::nullopt;
  }
  int prefix = v4 ? 32 : 128;
  if (slash != std::string_view::npos) {
    const auto prefix_text = text.substr(slash + 1);
    const auto [end, ec] =
        std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
    if (ec != std::errc() || end != prefix_text.data() + prefix_text.size() || prefix < 0 ||
        prefix > (v4 ? 32 : 128) || prefix_text.empty()) {
      return std::nullopt;
    }
  }
  Network network;
  network.bytes_ = *address;
  network.prefix_ = v4 ? prefix + 96 : prefix;
  network.text_ = std::string(text);
  return network;
}

bool Network::contains(std::string_view address_text) const {
  const auto address = parseAddress(address_text);
  if (!address) {
    return false;
  }
  int bits = prefix_;
  for (size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if (((*address)[i] & mask) != (bytes_[i] & mask)) {
      return false;
    }
  }
  return true;
}

bool inAny(const std::vector<Network>& networks, std::string_view address) {
  for (const auto& network : networks) {
    if (network.contains(address)) {
      return true;
    }
  }
  return false;
}

} // namespace proxy
