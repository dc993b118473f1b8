#include "manifests.hpp"

#include "common/logging.hpp"

#include <algorithm>

namespace proxy {
namespace {

const char* kAllManifestTypes = "application/vnd.oci.image.index.v1+json, "
                                "application/vnd.oci.image.manifest.v1+json, "
                                "application/vnd.docker.distribution.manifest.list.v2+json, "
                                "application/vnd.docker.distribution.manifest.v2+json, "
                                "application/vnd.docker.distribution.manifest.v1+prettyjws";

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return "";
  }
  const auto last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

} // namespace

const char* toString(Source source) {
  switch (source) {
  case Source::Cache:
    return "cache";
  case Source::Upstream:
    return "upstream";
  case Source::Stale:
    return "stale";
  }
  return "unknown";
}

AcceptList::AcceptList(std::string_view header) {
  size_t start = 0;
  while (start <= header.size()) {
    const auto comma = header.find(',', start);
    auto item = header.substr(start, comma == std::string_view::npos ? comma : comma - start);
    item = item.substr(0, item.find(';'));
    if (auto type = trim(item); !type.empty()) {
      types_.push_back(std::move(type));
    }
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  // A client that names no manifest type (none, or only "*/*" as curl sends) takes any: ask
  // the upstream for every type, as some (distribution 2.8) refuse OCI manifests to "*/*".
  const bool names_a_type = std::any_of(types_.begin(), types_.end(), [](const auto& type) {
    return type.find('*') == std::string::npos;
  });
  upstream_header_ = names_a_type ? std::string(header) : kAllManifestTypes;
}

bool AcceptList::allows(std::string_view media_type) const {
  if (types_.empty()) {
    return true;
  }
  for (const auto& type : types_) {
    if (type == media_type || type == "*/*" || type == "application/*") {
      return true;
    }
  }
  return false;
}

bool isOutage(const UpstreamError& error) {
  using Kind = UpstreamError::Kind;
  return error.kind == Kind::Unavailable || error.kind == Kind::Timeout ||
         error.kind == Kind::TooManyRequests;
}

ManifestService::ManifestService(Metadata& metadata, const common::Clock& clock)
    : metadata_(metadata), clock_(clock) {}

common::Result<ManifestAnswer, UpstreamError>
ManifestService::resolve(Upstream& upstream, const RepositoryName& repository,
                         const Reference& reference, const AcceptList& accept, bool want_body,
                         bool revalidate) {
  if (const auto* tag = std::get_if<Tag>(&reference)) {
    return byTag(upstream, repository, *tag, accept, want_body, revalidate);
  }
  return byDigest(upstream, repository, std::get<Digest>(reference), accept, want_body);
}

std::optional<ManifestAnswer> ManifestService::fromCache(const Digest& digest, bool want_body,
                                                         Source source) {
  auto cached = metadata_.manifest(digest);
  if (!cached) {
    return std::nullopt;
  }
  metadata_.recordUse(digest);
  ManifestAnswer answer{digest, cached->media_type, cached->body.size(), std::nullopt, source};
  if (want_body) {
    answer.body = std::move(cached->body);
  }
  return answer;
}

common::Result<ManifestAnswer, UpstreamError>
ManifestService::fetch(Upstream& upstream, const RepositoryName& repository,
                       const Reference& reference, const AcceptList& accept,
                       const std::optional<Tag>& tag) {
  auto fetched = upstream.getManifest(repository, reference, accept.upstreamHeader());
  if (!fetched.ok()) {
    return fetched.error();
  }
  auto& data = fetched.value();
  CachedManifest manifest{data.digest, data.media_type, std::move(data.body)};
  metadata_.putManifest(upstream.config().name, repository, manifest);
  if (tag) {
    metadata_.putTag(
        upstream.config().name, repository, *tag,
        TagRecord{manifest.digest, manifest.media_type, manifest.body.size(), clock_.now()});
  }
  return ManifestAnswer{manifest.digest, manifest.media_type, manifest.body.size(),
                        std::move(manifest.body), Source::Upstream};
}

common::Result<ManifestAnswer, UpstreamError>
ManifestService::byTag(Upstream& upstream, const RepositoryName& repository, const Tag& tag,
                       const AcceptList& accept, bool want_body, bool revalidate) {
  auto log = common::logger("manifests");
  const auto& name = upstream.config().name;
  const auto record = metadata_.tag(name, repository, tag);
  const bool usable = record && accept.allows(record->media_type);

  // Fresh: no upstream request at all.
  if (usable && !revalidate && clock_.now() - record->validated_at < upstream.config().tag_ttl) {
    if (auto answer = fromCache(record->digest, want_body, Source::Cache)) {
      return *answer;
    }
    if (!want_body) {
      return ManifestAnswer{record->digest, record->media_type, record->size, std::nullopt,
                            Source::Cache};
    }
  }

  if (!usable) {
    // Nothing we could serve for this client: ask the upstream. A HEAD costs Docker Hub nothing
    // and is all a HEAD needs; a GET by tag gives the bytes in one round trip.
    if (!want_body) {
      auto head = upstream.headManifest(repository, tag, accept.upstreamHeader());
      if (!head.ok()) {
        return head.error();
      }
      if (!record) {
        metadata_.putTag(name, repository, tag,
                         TagRecord{head->digest, head->media_type, head->size, clock_.now()});
      }
      return ManifestAnswer{head->digest, head->media_type, head->size, std::nullopt,
                            Source::Upstream};
    }
    return fetch(upstream, repository, tag, accept, record ? std::nullopt : std::optional(tag));
  }

  // Stale: revalidate with HEAD.
  auto head = upstream.headManifest(repository, tag, accept.upstreamHeader());
  if (!head.ok()) {
    if (isOutage(head.error())) {
      if (auto answer = fromCache(record->digest, want_body, Source::Stale)) {
        log->warn("upstream unavailable, serving cached manifest: upstream={} repo={} tag={} "
                  "err={}",
                  name, repository.str(), tag.str(), head.error().message);
        return *answer;
      }
    }
    if (head.error().kind == UpstreamError::Kind::NotFound) {
      metadata_.removeTag(name, repository, tag);
    }
    return head.error();
  }
  if (head->digest == record->digest) {
    auto refreshed = *record;
    refreshed.validated_at = clock_.now();
    metadata_.putTag(name, repository, tag, refreshed);
    if (auto answer = fromCache(record->digest, want_body, Source::Cache)) {
      return *answer;
    }
  }
  log->debug("tag moved upstream: upstream={} repo={} tag={} from={} to={}", name, repository.str(),
             tag.str(), record->digest.str(), head->digest.str());
  if (!want_body) {
    metadata_.putTag(name, repository, tag,
                     TagRecord{head->digest, head->media_type, head->size, clock_.now()});
    return ManifestAnswer{head->digest, head->media_type, head->size, std::nullopt,
                          Source::Upstream};
  }
  auto fetched = fetch(upstream, repository, head->digest, accept, std::nullopt);
  if (fetched.ok()) {
    metadata_.putTag(name, repository, tag,
                     TagRecord{fetched->digest, fetched->media_type, fetched->size, clock_.now()});
  }
  return fetched;
}

common::Result<ManifestAnswer, UpstreamError>
ManifestService::byDigest(Upstream& upstream, const RepositoryName& repository,
                          const Digest& digest, const AcceptList& accept, bool want_body) {
  const auto& name = upstream.config().name;
  if (metadata_.linked(name, repository, digest)) {
    if (auto answer = fromCache(digest, want_body, Source::Cache)) {
      return *answer;
    }
  } else if (metadata_.manifestRecord(digest)) {
    // Cached for another repository: the upstream must confirm this one may read it.
    auto head = upstream.headManifest(repository, digest, accept.upstreamHeader());
    if (!head.ok()) {
      return head.error();
    }
    metadata_.link(name, repository, digest);
    if (auto answer = fromCache(digest, want_body, Source::Cache)) {
      return *answer;
    }
  }
  if (!want_body) {
    auto head = upstream.headManifest(repository, digest, accept.upstreamHeader());
    if (!head.ok()) {
      return head.error();
    }
    return ManifestAnswer{digest, head->media_type, head->size, std::nullopt, Source::Upstream};
  }
  return fetch(upstream, repository, digest, accept, std::nullopt);
}

} // namespace proxy
