#pragma once

#include "config.hpp"
#include "reference.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace proxy {

/// The parsed query string of a request, percent-decoded. Repeated keys keep the first value.
using QueryParameters = std::map<std::string, std::string>;

/// What a /v2/ request asks for, with every name and digest validated.
struct Route {
  enum class Kind { Base, Catalog, Manifest, Blob, TagsList, Referrers };
  Kind kind = Kind::Base;
  /// The configured upstream it goes to.
  const UpstreamConfig* upstream = nullptr;
  /// The repository at the upstream ("library/alpine", with Docker Hub's implied library/).
  std::optional<RepositoryName> repository;
  /// Manifest: tag or digest.
  std::optional<Reference> reference;
  /// Blob and referrers: the digest.
  std::optional<Digest> digest;
  QueryParameters query;
  /// The path prefix the client used before the repository ("/v2/docker.io/" for a mirror
  /// prefix, else "/v2/"), for Link headers that point back at this proxy.
  std::string client_prefix = "/v2/";
};

/// Why a request cannot be routed: the OCI error code and a message for the client.
struct RouteError {
  int status = 400;
  std::string code;
  std::string message;
};

/// Turns a request's method and target ("/v2/library/alpine/manifests/3.20?ns=docker.io") into
/// a Route. Routing: `?ns=` names the upstream; else a first path segment that looks like a host
/// (has '.' or ':' or is "localhost") does; else the default upstream. A name that is not a
/// configured upstream is refused: the proxy never dials a host a client names.
std::variant<Route, RouteError> routeRequest(const ProxyConfig& config, std::string_view method,
                                             std::string_view target);

/// Parses "a=1&b=x%20y".
QueryParameters parseQuery(std::string_view query);

/// Percent-decodes; nothing for a malformed escape.
std::optional<std::string> percentDecode(std::string_view text);

} // namespace proxy
