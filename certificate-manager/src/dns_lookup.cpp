#include "dns_lookup.hpp"

#include "common/unique_fd.hpp"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <sys/socket.h>

namespace certmgr {
namespace {

// "host[:port]" or "[v6][:port]" as a socket address; port 53 when none is given.
std::optional<sockaddr_storage> resolverAddress(const std::string& text, socklen_t& length) {
  std::string host = text;
  int port = 53;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      port = std::stoi(text.substr(close + 2));
    }
  } else if (const auto colon = text.find(':');
             colon != std::string::npos && text.find(':', colon + 1) == std::string::npos) {
    host = text.substr(0, colon);
    port = std::stoi(text.substr(colon + 1));
  }
  sockaddr_storage address{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in);
    return address;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in6);
    return address;
  }
  return std::nullopt;
}

std::optional<std::vector<std::string>> parseTxtAnswer(const unsigned char* answer, int length) {
  ns_msg message;
  if (::ns_initparse(answer, length, &message) != 0) {
    return std::nullopt;
  }
  const int rcode = ns_msg_getflag(message, ns_f_rcode);
  if (rcode == ns_r_nxdomain) {
    return std::vector<std::string>{};
  }
  if (rcode != ns_r_noerror) {
    return std::nullopt;
  }
  std::vector<std::string> records;
  for (int i = 0; i < ns_msg_count(message, ns_s_an); ++i) {
    ns_rr rr;
    if (::ns_parserr(&message, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_txt) {
      continue;
    }
    // RDATA of TXT: one or more <length byte><bytes> strings (RFC 1035 §3.3.14).
    const unsigned char* data = ns_rr_rdata(rr);
    const int size = ns_rr_rdlen(rr);
    std::string text;
    for (int at = 0; at < size;) {
      const int piece = data[at];
      if (at + 1 + piece > size) {
        break;
      }
      text.append(reinterpret_cast<const char*>(data + at + 1), static_cast<size_t>(piece));
      at += 1 + piece;
    }
    records.push_back(std::move(text));
  }
  return records;
}

std::optional<std::vector<std::string>> querySystem(const std::string& fqdn) {
  struct __res_state state;
  std::memset(&state, 0, sizeof(state));
  if (::res_ninit(&state) != 0) {
    return std::nullopt;
  }
  unsigned char answer[4096];
  const int length = ::res_nquery(&state, fqdn.c_str(), ns_c_in, ns_t_txt, answer, sizeof(answer));
  const int herr = state.res_h_errno;
  ::res_nclose(&state);
  if (length < 0) {
    // No such name, or no TXT at it: an answer, just not the one we wait for.
    if (herr == HOST_NOT_FOUND || herr == NO_DATA) {
      return std::vector<std::string>{};
    }
    return std::nullopt;
  }
  return parseTxtAnswer(answer, length);
}

} // namespace

std::optional<std::vector<std::string>>
lookupTxt(const std::string& fqdn, const std::string& resolver, std::chrono::milliseconds timeout) {
  if (resolver.empty()) {
    return querySystem(fqdn);
  }
  socklen_t address_length = 0;
  const auto address = resolverAddress(resolver, address_length);
  if (!address) {
    return std::nullopt;
  }

  unsigned char query[512];
  struct __res_state state;
  std::memset(&state, 0, sizeof(state));
  if (::res_ninit(&state) != 0) {
    return std::nullopt;
  }
  const int query_length = ::res_nmkquery(&state, ns_o_query, fqdn.c_str(), ns_c_in, ns_t_txt,
                                          nullptr, 0, nullptr, query, sizeof(query));
  ::res_nclose(&state);
  if (query_length < 0) {
    return std::nullopt;
  }
  const uint16_t id = static_cast<uint16_t>((query[0] << 8) | query[1]);

  common::UniqueFd fd(::socket(address->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() ||
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*address), address_length) != 0 ||
      ::send(fd.get(), query, static_cast<size_t>(query_length), 0) != query_length) {
    return std::nullopt;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  unsigned char answer[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return std::nullopt;
    }
    pollfd pfd{fd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      return std::nullopt;
    }
    const ssize_t n = ::recv(fd.get(), answer, sizeof(answer), 0);
    if (n < 12) {
      return std::nullopt;
    }
    // TODO: no TCP retry when the answer is truncated (TC bit); a name with TXT records over
    // 512 bytes may then look incomplete and the propagation check waits until its timeout.
    // A stray datagram with another id is not our answer.
    if (static_cast<uint16_t>((answer[0] << 8) | answer[1]) == id) {
      return parseTxtAnswer(answer, static_cast<int>(n));
    }
  }
}

} // namespace certmgr
