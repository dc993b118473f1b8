#include "router.hpp"

#include <algorithm>
#include <cctype>

namespace proxy {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

bool isWriteMethod(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

// A first path segment names a registry when it looks like a host: "localhost", or a name with
// a dot or a port ("ghcr.io", "127.0.0.1:5001"). Docker Hub namespaces have neither.
bool looksLikeHost(std::string_view segment) {
  if (segment.empty() || !std::isalnum(static_cast<unsigned char>(segment.front()))) {
    return false;
  }
  for (char c : segment) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':') {
      return false;
    }
  }
  return segment.find('.') != std::string_view::npos ||
         segment.find(':') != std::string_view::npos || segment == "localhost";
}

RouteError nameInvalid(std::string_view name) {
  return RouteError{400, "NAME_INVALID",
                    "invalid repository name \"" + std::string(name.substr(0, 300)) +
                        "\": expected lowercase path components [a-z0-9] separated by '/', "
                        "'.', '_', '__' or '-'"};
}

std::string configuredNames(const ProxyConfig& config) {
  std::string out;
  for (const auto& upstream : config.upstreams) {
    out += (out.empty() ? "" : ", ") + upstream.name;
  }
  return out;
}

RouteError unknownUpstream(const ProxyConfig& config, std::string_view name) {
  return RouteError{
      403, "DENIED",
      "registry \"" + std::string(name.substr(0, 300)) +
          "\" is not an upstream of this proxy (configured: " + configuredNames(config) + ")"};
}

struct Split {
  Route::Kind kind;
  std::string_view name;
  std::string_view rest;
};

// Splits "<name>/manifests/<ref>" and friends at the last marker, since names may contain any
// of the marker words as components ("a/blobs/b" is a valid repository name).
std::optional<Split> splitPath(std::string_view path) {
  static constexpr std::string_view kTagsList = "/tags/list";
  if (path.size() > kTagsList.size() && path.substr(path.size() - kTagsList.size()) == kTagsList) {
    return Split{Route::Kind::TagsList, path.substr(0, path.size() - kTagsList.size()), ""};
  }
  const std::pair<std::string_view, Route::Kind> markers[] = {
      {"/manifests/", Route::Kind::Manifest},
      {"/blobs/", Route::Kind::Blob},
      {"/referrers/", Route::Kind::Referrers},
  };
  std::optional<Split> best;
  size_t best_pos = 0;
  for (const auto& [marker, kind] : markers) {
    const auto pos = path.rfind(marker);
    if (pos != std::string_view::npos && pos > 0 && (!best || pos > best_pos)) {
      best = Split{kind, path.substr(0, pos), path.substr(pos + marker.size())};
      best_pos = pos;
    }
  }
  return best;
}

} // namespace

std::optional<std::string> percentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (i + 2 >= text.size()) {
        return std::nullopt;
      }
      const int hi = hexValue(text[i + 1]);
      const int lo = hexValue(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (text[i] == '+') {
      out += ' ';
    } else {
      out += text[i];
    }
  }
  return out;
}

QueryParameters parseQuery(std::string_view query) {
  QueryParameters out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const auto eq = pair.find('=');
    auto key = percentDecode(pair.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::optional<std::string>("")
                                              : percentDecode(pair.substr(eq + 1));
    if (key && value) {
      out.emplace(std::move(*key), std::move(*value));
    }
  }
  return out;
}

std::variant<Route, RouteError> routeRequest(const ProxyConfig& config, std::string_view method,
                                             std::string_view target) {
  const auto question = target.find('?');
  const auto path = target.substr(0, question);
  Route route;
  if (question != std::string_view::npos) {
    route.query = parseQuery(target.substr(question + 1));
  }

  if (path != "/v2" && path.substr(0, 4) != "/v2/") {
    return RouteError{404, "NAME_UNKNOWN", "not a registry API path; expected /v2/..."};
  }
  if (isWriteMethod(method)) {
    return RouteError{405, "UNSUPPORTED",
                      "this registry is a read-only pull-through cache: " + std::string(method) +
                          " is not supported"};
  }
  if (method != "GET" && method != "HEAD") {
    return RouteError{405, "UNSUPPORTED",
                      "method " + std::string(method.substr(0, 20)) + " is not supported"};
  }

  // The upstream named by ns=, when there is one.
  const UpstreamConfig* upstream = nullptr;
  if (auto ns = route.query.find("ns"); ns != route.query.end()) {
    upstream = config.findUpstream(ns->second);
    if (!upstream) {
      return unknownUpstream(config, ns->second);
    }
  }

  if (path == "/v2" || path == "/v2/") {
    route.kind = Route::Kind::Base;
    route.upstream = upstream ? upstream : &config.defaultUpstream();
    return route;
  }
  auto rest = path.substr(4);
  if (rest == "_catalog") {
    route.kind = Route::Kind::Catalog;
    route.upstream = upstream ? upstream : &config.defaultUpstream();
    return route;
  }

  // Names never contain '%', so an escaped path ("%2e%2e%2f") is simply an invalid name.
  const auto split = splitPath(rest);
  if (!split) {
    return RouteError{404, "NAME_UNKNOWN",
                      "unknown registry API path; expected /v2/<name>/manifests/<reference>, "
                      "/v2/<name>/blobs/<digest>, /v2/<name>/tags/list or "
                      "/v2/<name>/referrers/<digest>"};
  }
  auto name = split->name;

  if (!upstream) {
    const auto slash = name.find('/');
    const auto first = name.substr(0, slash);
    if (slash != std::string_view::npos && looksLikeHost(first)) {
      upstream = config.findUpstream(std::string(first));
      if (!upstream) {
        return unknownUpstream(config, first);
      }
      name = name.substr(slash + 1);
      route.client_prefix = "/v2/" + std::string(first) + "/";
    } else {
      upstream = &config.defaultUpstream();
    }
  }
  route.upstream = upstream;

  auto repository = RepositoryName::parse(name);
  if (!repository) {
    return nameInvalid(name);
  }
  // Docker Hub keeps official images under library/; clients that do not add it (Podman's
  // short names through a mirror prefix, plain curl) mean the same image.
  if (upstream->name == "docker.io" && name.find('/') == std::string_view::npos) {
    repository = RepositoryName::parse("library/" + std::string(name));
  }
  route.repository = repository;
  route.kind = split->kind;

  switch (split->kind) {
  case Route::Kind::Manifest: {
    route.reference = parseReference(split->rest);
    if (!route.reference) {
      if (split->rest.find(':') != std::string_view::npos) {
        return RouteError{400, "DIGEST_INVALID",
                          "invalid digest \"" + std::string(split->rest.substr(0, 200)) +
                              "\": expected sha256:<64 lowercase hex> or sha512:<128>"};
      }
      return RouteError{400, "MANIFEST_INVALID",
                        "invalid tag \"" + std::string(split->rest.substr(0, 200)) +
                            "\": expected [A-Za-z0-9_][A-Za-z0-9._-]{0,127}"};
    }
    break;
  }
  case Route::Kind::Blob:
  case Route::Kind::Referrers: {
    if (split->kind == Route::Kind::Blob && split->rest.substr(0, 7) == "uploads") {
      return RouteError{405, "UNSUPPORTED",
                        "this registry is a read-only pull-through cache: uploads are not "
                        "supported"};
    }
    route.digest = Digest::parse(split->rest);
    if (!route.digest) {
      return RouteError{400, "DIGEST_INVALID",
                        "invalid digest \"" + std::string(split->rest.substr(0, 200)) +
                            "\": expected sha256:<64 lowercase hex> or sha512:<128>"};
    }
    break;
  }
  default:
    break;
  }
  return route;
}

} // namespace proxy
