#pragma once

#include "common/http_client.hpp"
#include "common/image_reference.hpp"
#include "common/result.hpp"
#include "config.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace admin {

/// One way to reach the proxy: plain HTTP, or HTTPS verified with a CA.
struct Endpoint {
  /// "http://127.0.0.1:5000", "https://localhost:5443".
  std::string base_url;
  /// PEM file to verify HTTPS with; empty: the system's trust store.
  std::string ca_file;
  /// Sent as Basic credentials when set.
  std::optional<Credential> credential;
};

/// Why a request through the proxy did not give what was asked.
struct FetchError {
  enum class Kind {
    /// No answer: refused, timed out, TLS failed.
    Unreachable,
    /// An answer with an unexpected status.
    Status,
    /// Bytes that do not hash to their digest, or a wrong size.
    Digest,
    /// A manifest that cannot be read.
    Content,
  };
  Kind kind = Kind::Unreachable;
  int status = 0;
  std::string message;
};

/// A manifest as received, its digest verified.
struct FetchedManifest {
  std::string digest;
  std::string media_type;
  std::string body;
};

/// The registry API of the proxy, as a client sees it. Every manifest and blob is checked
/// against its digest; manifests for upstream registry R are asked with `?ns=R`, the way
/// containerd names the registry, so every configured upstream is reachable through one URL.
class RegistryClient {
public:
  RegistryClient(common::HttpClient& http, Endpoint endpoint);

  /// GET /v2/<repository>/manifests/<reference>. The body's digest must equal the
  /// Docker-Content-Digest header when present, and `reference` when it is a digest.
  common::Result<FetchedManifest, FetchError> manifest(const common::ImageReference& image,
                                                       const std::string& reference) const;

  /// GET /v2/<repository>/blobs/<digest>, hashing the bytes as they arrive (nothing is kept).
  /// Returns the number of bytes.
  common::Result<std::uint64_t, FetchError> blob(const common::ImageReference& image,
                                                 const std::string& digest,
                                                 std::optional<std::uint64_t> size) const;

  /// GET of any path on the proxy with `credential` (none: anonymous).
  common::Result<common::HttpResponse, FetchError>
  get(const std::string& path, const std::optional<Credential>& credential) const;

  const Endpoint& endpoint() const { return endpoint_; }

private:
  common::HttpRequest request(const std::string& path,
                              const std::optional<Credential>& credential) const;

  common::HttpClient& http_;
  Endpoint endpoint_;
};

/// "Basic <base64(user:password)>".
std::string basicAuthorization(const Credential& credential);

/// The first code and message of an OCI error body ("MANIFEST_UNKNOWN: manifest unknown"), or
/// the start of any other body.
std::string errorSummary(const std::string& body);

} // namespace admin
