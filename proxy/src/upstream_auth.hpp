#pragma once

#include "common/clock.hpp"
#include "common/result.hpp"

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

/// One challenge of a `WWW-Authenticate` header (RFC 7235 section 4.1).
struct AuthChallenge {
  /// The scheme as sent, lowercased: "bearer", "basic".
  std::string scheme;
  /// The auth-params, names lowercased, values unquoted.
  std::map<std::string, std::string> params;

  bool isBearer() const { return scheme == "bearer"; }
  bool isBasic() const { return scheme == "basic"; }
  /// The value of `name` (lowercase), or empty.
  std::string param(const std::string& name) const;
};

/// Parses every challenge of one `WWW-Authenticate` value, e.g.
/// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`. Quoted values
/// may hold commas and escaped quotes; several challenges may share one value. A malformed
/// header yields the challenges parsed before the fault.
std::vector<AuthChallenge> parseAuthChallenges(std::string_view header);

/// The challenge to answer among all `WWW-Authenticate` values of a 401: Bearer with a realm
/// first, then Basic; nothing when neither is there.
std::optional<AuthChallenge> selectChallenge(const std::vector<std::string>& header_values);

/// A Bearer token and when to stop using it.
struct BearerToken {
  std::string value;
  common::Clock::TimePoint expires_at;
};

/// Reads a token endpoint's JSON answer: `token` or `access_token`, `expires_in` (seconds,
/// 60 when absent), `issued_at` (RFC 3339). The lifetime counts from `issued_at` when that is
/// earlier than `now`, so a server clock ahead of ours never stretches it. An error names
/// what was wrong with the answer.
common::Result<BearerToken, std::string> parseTokenResponse(std::string_view body,
                                                            common::Clock::TimePoint now);

/// Bearer tokens of one upstream by scope, each until it expires less a margin (so a token is
/// not sent in the last seconds of its life). Thread-safe.
class TokenCache {
public:
  static constexpr std::chrono::seconds kExpiryMargin{10};

  explicit TokenCache(const common::Clock& clock) : clock_(clock) {}

  /// The token for `scope` while it is still good.
  std::optional<std::string> get(const std::string& scope) const;
  void put(const std::string& scope, BearerToken token);
  /// Drops the token for `scope` (the upstream refused it).
  void drop(const std::string& scope);

private:
  const common::Clock& clock_;
  mutable std::mutex mutex_;
  std::map<std::string, BearerToken> tokens_;
};

/// The token endpoint URL: `realm` with `service` (if not empty) and each of `scopes` added to
/// its query, percent-encoded.
std::string tokenRequestUrl(const std::string& realm, const std::string& service,
                            const std::vector<std::string>& scopes);

/// The value of an `Authorization: Basic` header for these credentials.
std::string basicAuthorization(const std::string& username, const std::string& password);

/// The host of an absolute http(s) URL, lowercased, without brackets or port; nothing when the
/// URL is not one.
std::optional<std::string> urlHost(const std::string& url);

/// Whether credentials meant for `upstream_host` may go to `other_host`: both in the same
/// registrable domain by the Public Suffix List ("auth.docker.io" and "registry-1.docker.io").
/// IP addresses, single-label hosts ("localhost") and hosts that are a public suffix themselves
/// must match exactly.
bool sameRegistrableDomain(const std::string& upstream_host, const std::string& other_host);

} // namespace proxy
