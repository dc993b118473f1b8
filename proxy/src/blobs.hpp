#pragma once

#include "fetcher.hpp"
#include "manifests.hpp"

#include <memory>
#include <optional>

namespace proxy {

/// How a blob will be sent: from the store, from a download in flight, or (when the cache
/// cannot store it) straight from the upstream.
struct BlobAnswer {
  std::optional<std::uint64_t> size;
  std::shared_ptr<BlobReadHandle> file;
  std::shared_ptr<DownloadReader> download;
  bool pass_through = false;
  Source source = Source::Cache;
};

/// Blobs: served from the store when this repository may read them, else downloaded once
/// however many clients ask (BlobFetcher), HEADs answered with an upstream HEAD.
class BlobService {
public:
  BlobService(BlobStore& store, Metadata& metadata, BlobFetcher& fetcher);

  common::Result<BlobAnswer, UpstreamError> resolve(Upstream& upstream,
                                                    const RepositoryName& repository,
                                                    const Digest& digest, bool want_body);

private:
  std::optional<BlobAnswer> fromStore(const Digest& digest, bool want_body);

  BlobStore& store_;
  Metadata& metadata_;
  BlobFetcher& fetcher_;
};

} // namespace proxy
