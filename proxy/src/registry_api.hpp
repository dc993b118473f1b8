#pragma once

#include "access.hpp"
#include "blobs.hpp"
#include "config.hpp"
#include "manifests.hpp"
#include "router.hpp"
#include "upstream_set.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace proxy {

/// The parts of an HTTP request the registry API reads.
struct ApiRequest {
  std::string method;
  /// The request target as received: path and query, still percent-encoded.
  std::string target;
  std::optional<std::string> accept;
  std::optional<std::string> range;
  /// The client's address (after the trusted-proxy rule) and its Authorization header.
  std::string client_address = "127.0.0.1";
  std::optional<std::string> authorization;
  /// The Origin and Host headers, for refusing cross-site changes to the admin API.
  std::optional<std::string> origin;
  std::optional<std::string> host;
};

/// Stored or in-flight bytes to send: `length` bytes from `offset`, or to the end when the size
/// is not known yet (a download without Content-Length).
struct BlobBody {
  std::shared_ptr<BlobReadHandle> file;
  std::shared_ptr<DownloadReader> download;
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> length;
};

/// Writes a piece of a streamed body; false when the client is gone.
using BodyWriter = std::function<bool(std::string_view)>;

/// What to answer. The server sends it; this type knows nothing of sockets.
struct ApiResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  /// Content-Length; unset with a streamed body of unknown size (sent chunked).
  std::optional<std::uint64_t> content_length;
  std::string body;
  std::optional<BlobBody> blob;
  /// Bytes relayed from the upstream without caching (a full disk); returns false on failure.
  std::function<bool(const BodyWriter&)> stream;
  /// For the access log: cache, upstream, stale, or "-".
  std::string source = "-";
  /// For the access log: the OCI error code of an error answer.
  std::string error_code;
  /// For metrics: the route ("manifest", "blob", "tags", "catalog", "referrers", "base", "-").
  std::string route = "-";

  void setHeader(std::string name, std::string value);
};

/// The OCI distribution API of a pull-through cache: turns each request into an answer, and each
/// failure into a status code and an OCI error body. No other part speaks status codes.
class RegistryApi {
public:
  /// `access` may be null (no access control). Requests are counted by the server, upstream
  /// health by each Upstream.
  RegistryApi(Upstreams& upstreams, Metadata& metadata, ManifestService& manifests,
              BlobService& blobs, AccessControl* access = nullptr);

  ApiResponse handle(const ApiRequest& request);

  /// An OCI error answer.
  static ApiResponse error(int status, const std::string& code, const std::string& message);

private:
  ApiResponse manifest(const Route& route, Upstream& upstream, const ApiRequest& request);
  ApiResponse blob(const Route& route, Upstream& upstream, const ApiRequest& request);
  ApiResponse tagsPage(const Route& route, const std::string& path,
                       const std::vector<std::string>& sorted, const char* source);
  ApiResponse tagsList(const Route& route, Upstream& upstream);
  ApiResponse catalog(const Route& route);
  ApiResponse referrers(const Route& route, Upstream& upstream);
  ApiResponse upstreamFailure(const UpstreamError& error, Route::Kind kind,
                              const std::string& what);
  ApiResponse dispatch(const Route& route, Upstream& upstream, const ApiRequest& request);

  Upstreams& upstreams_;
  Metadata& metadata_;
  ManifestService& manifests_;
  BlobService& blobs_;
  AccessControl* access_;
};

/// Applies `n` and `last` to a sorted list; sets `next` when more follow.
std::vector<std::string> paginate(const std::vector<std::string>& sorted,
                                  const QueryParameters& query, bool& more);

} // namespace proxy
