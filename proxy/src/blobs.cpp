#include "blobs.hpp"

#include "common/logging.hpp"

namespace proxy {

BlobService::BlobService(BlobStore& store, Metadata& metadata, BlobFetcher& fetcher)
    : store_(store), metadata_(metadata), fetcher_(fetcher) {}

std::optional<BlobAnswer> BlobService::fromStore(const Digest& digest, bool want_body) {
  const auto stat = store_.stat(digest);
  if (!stat) {
    return std::nullopt;
  }
  BlobAnswer answer;
  answer.size = stat->size;
  if (want_body) {
    answer.file = store_.open(digest);
    if (!answer.file) {
      return std::nullopt;
    }
  }
  metadata_.recordUse(digest);
  return answer;
}

common::Result<BlobAnswer, UpstreamError> BlobService::resolve(Upstream& upstream,
                                                               const RepositoryName& repository,
                                                               const Digest& digest,
                                                               bool want_body) {
  const auto& name = upstream.config().name;
  bool confirmed = metadata_.linked(name, repository, digest);

  if (store_.stat(digest)) {
    if (!confirmed) {
      // Cached for another repository. Knowing a digest is not enough to read it: the upstream
      // must confirm this repository has it (a HEAD, no download).
      auto head = upstream.headBlob(repository, digest);
      if (!head.ok()) {
        return head.error();
      }
      metadata_.link(name, repository, digest);
    }
    if (auto answer = fromStore(digest, want_body)) {
      return *answer;
    }
  }

  if (!want_body) {
    auto head = upstream.headBlob(repository, digest);
    if (!head.ok()) {
      return head.error();
    }
    BlobAnswer answer;
    answer.size = head->size;
    answer.source = Source::Upstream;
    return answer;
  }

  // A repository that neither fetched nor references this digest must not ride on another
  // repository's download either.
  if (!confirmed) {
    auto head = upstream.headBlob(repository, digest);
    if (!head.ok()) {
      return head.error();
    }
    metadata_.link(name, repository, digest);
  }

  for (int attempt = 0; attempt < 2; ++attempt) {
    auto joined = fetcher_.join(upstream, repository, digest);
    if (!joined.ok()) {
      common::logger("blobs")->warn("cache cannot store, passing through: digest={} err={}",
                                    digest.str(), joined.error().message);
      BlobAnswer answer;
      answer.pass_through = true;
      answer.source = Source::Upstream;
      return answer;
    }
    auto reader = joined.value();
    if (!reader) {
      if (auto answer = fromStore(digest, want_body)) {
        return *answer;
      }
      continue;
    }
    auto started = reader->download().waitStarted();
    if (!started.ok()) {
      if (reader->download().noSpace()) {
        BlobAnswer answer;
        answer.pass_through = true;
        answer.source = Source::Upstream;
        return answer;
      }
      return started.error();
    }
    BlobAnswer answer;
    answer.size = started.value();
    answer.download = std::move(reader);
    answer.source = Source::Upstream;
    return answer;
  }
  return UpstreamError{UpstreamError::Kind::Unavailable, 0, "blob vanished while being cached"};
}

} // namespace proxy
