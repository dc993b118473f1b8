#pragma once

#include "common/clock.hpp"
#include "common/http_client.hpp"
#include "common/result.hpp"
#include "config.hpp"
#include "reference.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace proxy {

/// Why an upstream could not give what was asked.
struct UpstreamError {
  enum class Kind {
    NotFound,        ///< 404: the upstream does not have it
    Unauthorized,    ///< 401 after authenticating (or no way to authenticate)
    Denied,          ///< 403
    TooManyRequests, ///< 429 (Docker Hub's pull limit)
    Unavailable,     ///< 5xx, connection refused, DNS failure, TLS failure
    Timeout,         ///< connect, request or stall timeout
    BadResponse,     ///< an answer that breaks the protocol (missing header, bad digest)
    Aborted,         ///< the caller's sink asked to stop
  };
  Kind kind;
  /// The upstream's HTTP status, 0 when there was no answer.
  int status = 0;
  /// For logs and for the client's error body: what happened, no secrets.
  std::string message;
  /// Seconds from a Retry-After header, when one came with a 429 or 503.
  std::optional<long> retry_after;
};

template <typename T> using UpstreamResult = common::Result<T, UpstreamError>;

/// What a HEAD on a manifest tells.
struct ManifestInfo {
  Digest digest;
  std::string media_type;
  std::uint64_t size = 0;
};

/// A manifest as the upstream sent it: the exact bytes (the digest is of them).
struct ManifestData {
  Digest digest;
  std::string media_type;
  std::string body;
};

struct BlobInfo {
  std::uint64_t size = 0;
};

/// A page of an upstream list answer (tags/list, referrers): body and the headers that matter.
struct ListPage {
  std::string body;
  std::string content_type;
  /// The `Link: <...>; rel="next"` header, if any, as received.
  std::optional<std::string> link;
  /// The `OCI-Filters-Applied` header of a referrers answer: the filters the upstream applied.
  std::optional<std::string> filters_applied;
};

/// What the upstream said of its pull limit (Docker Hub's `ratelimit-remaining`).
struct RateLimitStatus {
  std::optional<long> limit;
  std::optional<long> remaining;
};

/// How the upstream answered the proxy lately, for /status and /metrics.
struct UpstreamHealth {
  /// False while the last request got no answer, a timeout, 429 or a 5xx; true before the
  /// first request.
  bool reachable = true;
  /// The last such failure, kept after the upstream recovered; empty before the first.
  std::string last_error;
  /// Requests sent (a 401 answered with a token and retried counts once), and failed ones.
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
};

/// One registry upstream. The only place that speaks HTTP to registries: authentication
/// (Bearer tokens cached per scope until expiry, Basic), redirects (followed here, with no
/// Authorization header on another host), timeouts and the error mapping. Thread-safe.
class Upstream : public std::enable_shared_from_this<Upstream> {
public:
  Upstream(UpstreamConfig config, common::HttpClient& http, const common::Clock& clock);

  const UpstreamConfig& config() const { return config_; }

  /// HEAD /v2/<repository>/manifests/<reference> with `accept` as the Accept header. The
  /// digest comes from Docker-Content-Digest (required for a tag).
  UpstreamResult<ManifestInfo> headManifest(const RepositoryName& repository,
                                            const Reference& reference, const std::string& accept);

  /// GET of a manifest. The digest is computed from the bytes and checked against the
  /// reference when it is a digest, and against Docker-Content-Digest when sent (sha256).
  UpstreamResult<ManifestData> getManifest(const RepositoryName& repository,
                                           const Reference& reference, const std::string& accept);

  /// HEAD /v2/<repository>/blobs/<digest>.
  UpstreamResult<BlobInfo> headBlob(const RepositoryName& repository, const Digest& digest);

  /// GET of a blob, streamed: `on_start` receives the size (if the upstream sent one) once the
  /// upstream answered 200; `on_data` each piece; either returning false aborts (Aborted).
  /// Redirects to a CDN are followed. Returns the number of body bytes received.
  UpstreamResult<std::uint64_t>
  getBlob(const RepositoryName& repository, const Digest& digest,
          const std::function<bool(std::optional<std::uint64_t>)>& on_start,
          const std::function<bool(std::string_view)>& on_data);

  /// GET /v2/<repository>/tags/list with the query (`n`, `last`) passed on as given.
  UpstreamResult<ListPage> tagsList(const RepositoryName& repository, const std::string& query);

  /// GET /v2/<repository>/referrers/<digest> with the query (`artifactType`) passed on.
  UpstreamResult<ListPage> referrers(const RepositoryName& repository, const Digest& digest,
                                     const std::string& query);

  /// The last rate-limit headers seen on a manifest answer.
  RateLimitStatus rateLimit() const;

  /// Reachability and request counts.
  UpstreamHealth health() const;

private:
  struct Impl;
  UpstreamConfig config_;
  std::shared_ptr<Impl> impl_;
};

} // namespace proxy
