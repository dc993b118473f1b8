#pragma once

#include "metadata.hpp"
#include "upstream.hpp"

#include <optional>
#include <string>

namespace proxy {

/// Where an answer's bytes came from, for the access log and metrics.
enum class Source { Cache, Upstream, Stale };

const char* toString(Source source);

/// A manifest answer: always digest, type and size; the bytes unless only a HEAD was needed.
struct ManifestAnswer {
  Digest digest;
  std::string media_type;
  std::uint64_t size = 0;
  std::optional<std::string> body;
  Source source = Source::Cache;
};

/// The media types a client's Accept header allows. Parameters (";q=0.5") are ignored.
class AcceptList {
public:
  explicit AcceptList(std::string_view header);
  /// True when the client did not restrict types, or listed `media_type` or a wildcard.
  bool allows(std::string_view media_type) const;
  /// What to send upstream: the client's header, or every manifest type when it sent none.
  const std::string& upstreamHeader() const { return upstream_header_; }

private:
  std::vector<std::string> types_;
  std::string upstream_header_;
};

/// Manifests: tags answered from the cache while fresh (no upstream request at all), then
/// revalidated with HEAD only (Docker Hub counts GETs as pulls); manifests by digest stored once;
/// cached content served stale when the upstream fails.
class ManifestService {
public:
  ManifestService(Metadata& metadata, const common::Clock& clock);

  /// GET (want_body) or HEAD of `reference` in `repository` at `upstream`. `revalidate` asks
  /// the upstream about a tag even inside its lifetime (the warm list's refresh).
  common::Result<ManifestAnswer, UpstreamError>
  resolve(Upstream& upstream, const RepositoryName& repository, const Reference& reference,
          const AcceptList& accept, bool want_body, bool revalidate = false);

private:
  common::Result<ManifestAnswer, UpstreamError> byTag(Upstream& upstream,
                                                      const RepositoryName& repository,
                                                      const Tag& tag, const AcceptList& accept,
                                                      bool want_body, bool revalidate);
  common::Result<ManifestAnswer, UpstreamError> byDigest(Upstream& upstream,
                                                         const RepositoryName& repository,
                                                         const Digest& digest,
                                                         const AcceptList& accept, bool want_body);
  std::optional<ManifestAnswer> fromCache(const Digest& digest, bool want_body, Source source);
  common::Result<ManifestAnswer, UpstreamError>
  fetch(Upstream& upstream, const RepositoryName& repository, const Reference& reference,
        const AcceptList& accept, const std::optional<Tag>& tag);

  Metadata& metadata_;
  const common::Clock& clock_;
};

/// True for errors where cached content should be served instead: the upstream is down, slow,
/// overloaded or rate-limiting.
bool isOutage(const UpstreamError& error);

} // namespace proxy
