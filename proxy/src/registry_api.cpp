#include "registry_api.hpp"

#include "common/digest_hasher.hpp"
#include "common/logging.hpp"
#include "range.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <algorithm>
#include <sstream>

namespace proxy {
namespace {

constexpr const char* kEmptyIndex =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})";

std::string jsonString(const Poco::JSON::Object& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

std::string urlEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

// The query of the client's next page, keeping ns= so the next request routes the same way.
std::string nextPageLink(const std::string& path, const Route& route, const std::string& last) {
  std::string query = "last=" + urlEncode(last);
  if (auto n = route.query.find("n"); n != route.query.end()) {
    query += "&n=" + urlEncode(n->second);
  }
  if (auto ns = route.query.find("ns"); ns != route.query.end()) {
    query += "&ns=" + urlEncode(ns->second);
  }
  return "<" + path + "?" + query + ">; rel=\"next\"";
}

} // namespace

void ApiResponse::setHeader(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
}

std::vector<std::string> paginate(const std::vector<std::string>& sorted,
                                  const QueryParameters& query, bool& more) {
  more = false;
  auto begin = sorted.begin();
  if (auto last = query.find("last"); last != query.end() && !last->second.empty()) {
    begin = std::upper_bound(sorted.begin(), sorted.end(), last->second);
  }
  auto end = sorted.end();
  if (auto n = query.find("n"); n != query.end()) {
    char* rest = nullptr;
    const long limit = std::strtol(n->second.c_str(), &rest, 10);
    if (rest != n->second.c_str() && *rest == '\0' && limit >= 0 && end - begin > limit) {
      end = begin + limit;
      more = true;
    }
  }
  return std::vector<std::string>(begin, end);
}

// A page size the client gave that is not a whole number: the spec's PAGINATION_NUMBER_INVALID.
std::optional<std::string> invalidPageSize(const QueryParameters& query) {
  const auto n = query.find("n");
  if (n == query.end()) {
    return std::nullopt;
  }
  const auto& text = n->second;
  if (!text.empty() && text.size() <= 9 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return "n=\"" + text + "\" is not a page size; expected a whole number";
}

// The "tags" array of a tags/list body; nothing when the body is not such a document.
std::optional<std::vector<std::string>> tagsOf(const std::string& body) {
  try {
    const auto parsed = Poco::JSON::Parser().parse(body);
    const auto object = parsed.extract<Poco::JSON::Object::Ptr>();
    std::vector<std::string> tags;
    if (const auto array = object->getArray("tags")) {
      for (std::size_t i = 0; i < array->size(); ++i) {
        tags.push_back(array->getElement<std::string>(static_cast<unsigned>(i)));
      }
    } else if (!object->has("tags") || !object->isNull("tags")) {
      return std::nullopt;
    }
    return tags;
  } catch (const Poco::Exception&) {
    return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

RegistryApi::RegistryApi(Upstreams& upstreams, Metadata& metadata, ManifestService& manifests,
                         BlobService& blobs, AccessControl* access)
    : upstreams_(upstreams), metadata_(metadata), manifests_(manifests), blobs_(blobs),
      access_(access) {}

ApiResponse RegistryApi::error(int status, const std::string& code, const std::string& message) {
  Poco::JSON::Object entry;
  entry.set("code", code);
  entry.set("message", message);
  entry.set("detail", Poco::JSON::Object());
  Poco::JSON::Array errors;
  errors.add(entry);
  Poco::JSON::Object root;
  root.set("errors", errors);

  ApiResponse response;
  response.status = status;
  response.body = jsonString(root);
  response.content_length = response.body.size();
  response.setHeader("Content-Type", "application/json");
  response.error_code = code;
  return response;
}

ApiResponse RegistryApi::handle(const ApiRequest& request) {
  // Held to the end of the request: a reload meanwhile does not change its upstream.
  const auto upstreams = upstreams_.current();
  auto routed = routeRequest(upstreams->config, request.method, request.target);
  if (auto* failure = std::get_if<RouteError>(&routed)) {
    return error(failure->status, failure->code, failure->message);
  }
  const auto& route = std::get<Route>(routed);
  const auto client = upstreams->client(route.upstream->name);
  if (!client) {
    return error(500, "UNKNOWN", "upstream " + route.upstream->name + " has no client");
  }
  auto& upstream = *client;

  if (access_) {
    const auto verdict =
        access_->checkPull(request.client_address, request.authorization, route.upstream);
    if (!verdict.allowed) {
      auto refused =
          error(verdict.status, verdict.status == 401 ? "UNAUTHORIZED" : "DENIED", verdict.message);
      if (verdict.status == 401) {
        refused.setHeader("WWW-Authenticate", "Basic realm=\"docker-cache-proxy\"");
      }
      return refused;
    }
  }

  return dispatch(route, upstream, request);
}

ApiResponse RegistryApi::dispatch(const Route& route, Upstream& upstream,
                                  const ApiRequest& request) {
  static const char* const kRouteNames[] = {"base", "catalog", "manifest",
                                            "blob", "tags",    "referrers"};
  ApiResponse response;
  switch (route.kind) {
  case Route::Kind::Base:
    response.body = "{}";
    response.content_length = 2;
    response.setHeader("Content-Type", "application/json");
    break;
  case Route::Kind::Catalog:
    response = catalog(route);
    break;
  case Route::Kind::Manifest:
    response = manifest(route, upstream, request);
    break;
  case Route::Kind::Blob:
    response = blob(route, upstream, request);
    break;
  case Route::Kind::TagsList:
    response = tagsList(route, upstream);
    break;
  case Route::Kind::Referrers:
    response = referrers(route, upstream);
    break;
  }
  response.route = kRouteNames[static_cast<int>(route.kind)];
  return response;
}

ApiResponse RegistryApi::upstreamFailure(const UpstreamError& failure, Route::Kind kind,
                                         const std::string& what) {
  using Kind = UpstreamError::Kind;
  const auto& upstream_message = failure.message;
  switch (failure.kind) {
  case Kind::NotFound: {
    const char* code = kind == Route::Kind::Blob       ? "BLOB_UNKNOWN"
                       : kind == Route::Kind::Manifest ? "MANIFEST_UNKNOWN"
                                                       : "NAME_UNKNOWN";
    return error(404, code, what + " is not known to the upstream registry");
  }
  case Kind::Unauthorized:
    return error(401, "UNAUTHORIZED",
                 "the upstream registry refused the proxy's credentials for " + what + ": " +
                     upstream_message);
  case Kind::Denied:
    return error(403, "DENIED",
                 "the upstream registry denied access to " + what + ": " + upstream_message);
  case Kind::TooManyRequests: {
    auto response = error(429, "TOOMANYREQUESTS",
                          "the upstream registry's pull rate limit is exhausted and " + what +
                              " is not cached: " + upstream_message);
    if (failure.retry_after) {
      response.setHeader("Retry-After", std::to_string(*failure.retry_after));
    }
    return response;
  }
  case Kind::Timeout:
  case Kind::Unavailable:
  case Kind::Aborted: {
    auto response = error(503, "UNAVAILABLE",
                          "the upstream registry is unreachable and " + what +
                              " is not cached: " + upstream_message);
    if (failure.retry_after) {
      response.setHeader("Retry-After", std::to_string(*failure.retry_after));
    }
    return response;
  }
  case Kind::BadResponse:
    return error(502, "UNAVAILABLE",
                 "the upstream registry sent an invalid answer for " + what + ": " +
                     upstream_message);
  }
  return error(500, "UNKNOWN", upstream_message);
}

ApiResponse RegistryApi::manifest(const Route& route, Upstream& upstream,
                                  const ApiRequest& request) {
  const bool want_body = request.method == "GET";
  const AcceptList accept(request.accept.value_or(""));
  auto resolved =
      manifests_.resolve(upstream, *route.repository, *route.reference, accept, want_body);
  const auto what = "manifest " + route.repository->str() + ":" + toString(*route.reference);
  if (!resolved.ok()) {
    return upstreamFailure(resolved.error(), Route::Kind::Manifest, what);
  }
  auto& answer = resolved.value();
  ApiResponse response;
  response.setHeader("Content-Type", answer.media_type);
  response.setHeader("Docker-Content-Digest", answer.digest.str());
  response.setHeader("ETag", "\"" + answer.digest.str() + "\"");
  response.content_length = answer.size;
  if (answer.body) {
    response.body = std::move(*answer.body);
    response.content_length = response.body.size();
  }
  response.source = toString(answer.source);
  return response;
}

ApiResponse RegistryApi::blob(const Route& route, Upstream& upstream, const ApiRequest& request) {
  const bool want_body = request.method == "GET";
  auto resolved = blobs_.resolve(upstream, *route.repository, *route.digest, want_body);
  const auto what = "blob " + route.digest->str() + " of " + route.repository->str();
  if (!resolved.ok()) {
    return upstreamFailure(resolved.error(), Route::Kind::Blob, what);
  }
  auto& answer = resolved.value();

  ApiResponse response;
  response.source = toString(answer.source);
  response.setHeader("Content-Type", "application/octet-stream");
  response.setHeader("Docker-Content-Digest", route.digest->str());
  response.setHeader("ETag", "\"" + route.digest->str() + "\"");

  if (answer.pass_through) {
    // TODO: Content-Length and Range on a passed-through blob; while the disk is full, such a
    // blob is sent whole and chunked, and a resumed download starts over.
    const auto repository = *route.repository;
    const auto digest = *route.digest;
    response.stream = [client = upstream.shared_from_this(), repository,
                       digest](const BodyWriter& write) {
      common::DigestHasher hasher(digest.algorithm());
      auto result = client->getBlob(
          repository, digest, [](std::optional<std::uint64_t>) { return true; },
          [&](std::string_view data) {
            hasher.update(data);
            return write(data);
          });
      if (!result.ok()) {
        return false;
      }
      // Failing here leaves the chunked body without its last chunk: the client sees a cut
      // body, never a complete one that fails verification.
      if (const auto actual = hasher.finish(); actual != digest.str()) {
        common::logger("api")->error("blob digest mismatch, passed-through body cut: repo={} "
                                     "digest={} actual={}",
                                     repository.str(), digest.str(), actual);
        return false;
      }
      return true;
    };
    return response;
  }

  response.setHeader("Accept-Ranges", "bytes");
  if (!answer.size) {
    // TODO: Range on a download whose upstream sent no Content-Length; such a blob is sent
    // whole and chunked until it is cached.
    response.blob = BlobBody{answer.file, answer.download, 0, std::nullopt};
    return response;
  }
  const auto size = *answer.size;
  const auto range = parseRange(request.range, size);
  if (range.kind == RangeRequest::Kind::Unsatisfiable) {
    auto refused = error(416, "RANGE_INVALID",
                         "range \"" + request.range.value_or("") + "\" is outside the blob's " +
                             std::to_string(size) + " bytes");
    refused.setHeader("Content-Range", "bytes */" + std::to_string(size));
    return refused;
  }
  std::uint64_t offset = 0;
  std::uint64_t length = size;
  if (range.kind == RangeRequest::Kind::Partial) {
    response.status = 206;
    offset = range.range.first;
    length = range.range.length();
    response.setHeader("Content-Range", "bytes " + std::to_string(range.range.first) + "-" +
                                            std::to_string(range.range.last) + "/" +
                                            std::to_string(size));
  }
  response.content_length = length;
  if (want_body) {
    response.blob = BlobBody{answer.file, answer.download, offset, length};
  }
  return response;
}

ApiResponse RegistryApi::tagsList(const Route& route, Upstream& upstream) {
  if (auto invalid = invalidPageSize(route.query)) {
    return error(400, "PAGINATION_NUMBER_INVALID", *invalid);
  }
  const auto path = route.client_prefix + route.repository->str() + "/tags/list";
  std::string query;
  for (const char* key : {"n", "last"}) {
    if (auto it = route.query.find(key); it != route.query.end()) {
      query += (query.empty() ? "" : "&") + std::string(key) + "=" + urlEncode(it->second);
    }
  }
  auto page = upstream.tagsList(*route.repository, query);
  if (page.ok()) {
    if (page->link) {
      // The upstream paginated; its Link names its own path, point the client's next request
      // at ours.
      ApiResponse response;
      response.body = std::move(page->body);
      response.content_length = response.body.size();
      response.setHeader("Content-Type", "application/json");
      response.source = "upstream";
      const auto& link = *page->link;
      const auto query_start = link.find('?');
      const auto query_end = link.find('>');
      if (query_start != std::string::npos && query_end != std::string::npos &&
          query_start < query_end) {
        auto next =
            parseQuery(std::string_view(link).substr(query_start + 1, query_end - query_start - 1));
        if (auto last = next.find("last"); last != next.end()) {
          response.setHeader("Link", nextPageLink(path, route, last->second));
        }
      }
      return response;
    }
    // No Link: the whole list (some registries, the reference one among them, ignore n and
    // last). Sort and paginate it here so clients get the page they asked for.
    if (auto tags = tagsOf(page->body)) {
      std::sort(tags->begin(), tags->end());
      return tagsPage(route, path, *tags, "upstream");
    }
    ApiResponse response;
    response.body = std::move(page->body);
    response.content_length = response.body.size();
    response.setHeader("Content-Type", "application/json");
    response.source = "upstream";
    return response;
  }
  if (!isOutage(page.error())) {
    return upstreamFailure(page.error(), Route::Kind::TagsList,
                           "repository " + route.repository->str());
  }

  // Upstream unreachable: answer with the tags this cache knows.
  const auto cached = metadata_.tags(route.upstream->name, *route.repository);
  if (cached.empty()) {
    return upstreamFailure(page.error(), Route::Kind::TagsList,
                           "repository " + route.repository->str());
  }
  common::logger("api")->warn("upstream unavailable, listing cached tags: upstream={} repo={} "
                              "err={}",
                              route.upstream->name, route.repository->str(), page.error().message);
  return tagsPage(route, path, cached, "stale");
}

ApiResponse RegistryApi::tagsPage(const Route& route, const std::string& path,
                                  const std::vector<std::string>& sorted, const char* source) {
  bool more = false;
  const auto tags = paginate(sorted, route.query, more);
  Poco::JSON::Object root;
  root.set("name", route.repository->str());
  Poco::JSON::Array array;
  for (const auto& tag : tags) {
    array.add(tag);
  }
  root.set("tags", array);
  ApiResponse response;
  response.body = jsonString(root);
  response.content_length = response.body.size();
  response.setHeader("Content-Type", "application/json");
  response.source = source;
  if (more && !tags.empty()) {
    response.setHeader("Link", nextPageLink(path, route, tags.back()));
  }
  return response;
}

// TODO: a catalog across all upstreams; for now it lists the routed upstream's repositories.
ApiResponse RegistryApi::catalog(const Route& route) {
  if (auto invalid = invalidPageSize(route.query)) {
    return error(400, "PAGINATION_NUMBER_INVALID", *invalid);
  }
  bool more = false;
  const auto repositories =
      paginate(metadata_.repositories(route.upstream->name), route.query, more);
  Poco::JSON::Object root;
  Poco::JSON::Array array;
  for (const auto& repository : repositories) {
    array.add(repository);
  }
  root.set("repositories", array);
  ApiResponse response;
  response.body = jsonString(root);
  response.content_length = response.body.size();
  response.setHeader("Content-Type", "application/json");
  response.source = "cache";
  if (more && !repositories.empty()) {
    response.setHeader("Link", nextPageLink("/v2/_catalog", route, repositories.back()));
  }
  return response;
}

// TODO: cache referrers answers; with the upstream down, clients see an empty list.
ApiResponse RegistryApi::referrers(const Route& route, Upstream& upstream) {
  std::string query;
  if (auto it = route.query.find("artifactType"); it != route.query.end()) {
    query = "artifactType=" + urlEncode(it->second);
  }
  auto page = upstream.referrers(*route.repository, *route.digest, query);
  ApiResponse response;
  response.setHeader("Content-Type", "application/vnd.oci.image.index.v1+json");
  if (page.ok()) {
    response.body = std::move(page->body);
    response.source = "upstream";
    // OCI distribution spec, listing referrers: a client filters itself unless told it is done.
    if (page->filters_applied) {
      response.setHeader("OCI-Filters-Applied", *page->filters_applied);
    }
  } else if (page.error().kind == UpstreamError::Kind::NotFound || isOutage(page.error())) {
    // An upstream without the referrers API, or one that is down: per the spec, a registry that
    // knows no referrers answers an empty index.
    response.body = kEmptyIndex;
    response.source = "cache";
  } else {
    return upstreamFailure(page.error(), Route::Kind::Referrers,
                           "referrers of " + route.digest->str());
  }
  response.content_length = response.body.size();
  return response;
}

} // namespace proxy
