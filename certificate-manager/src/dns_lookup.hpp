#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace certmgr {

/// The TXT records at `fqdn` as `resolver` ("192.0.2.53", "127.0.0.1:8053", "[::1]:53")
/// answers them over UDP, each record's strings concatenated; an empty `resolver` asks the
/// system's resolvers (/etc/resolv.conf). Nothing when the query failed (timeout, SERVFAIL);
/// an empty list when the name has no TXT records.
std::optional<std::vector<std::string>>
lookupTxt(const std::string& fqdn, const std::string& resolver, std::chrono::milliseconds timeout);

} // namespace certmgr
