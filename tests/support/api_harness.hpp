#pragma once

// The proxy's request path (store, metadata, fetcher, manifests, blobs, RegistryApi) on a
// temporary directory, in front of a FakeRegistry, for unit tests that go through the API.

#include "blobs.hpp"
#include "fake_registry.hpp"
#include "fetcher.hpp"
#include "fs_blob_store.hpp"
#include "manifests.hpp"
#include "metadata.hpp"
#include "registry_api.hpp"
#include "temp_dir.hpp"
#include "upstream.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>

namespace testsupport {

inline std::string randomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) {
    c = static_cast<char>(rng());
  }
  return out;
}

/// A filesystem store on a small disk: the free space it reports is what the test sets, and an
/// upload fails for want of space (a partial write, then ENOSPC) past `upload_limit` bytes, after
/// which the disk reports no space left, as a filesystem that filled up.
class SmallDiskStore : public proxy::FsBlobStore {
public:
  SmallDiskStore(std::filesystem::path root, std::uint64_t min_free, std::uint64_t upload_limit,
                 std::uint64_t available)
      : FsBlobStore(std::move(root), min_free), upload_limit_(upload_limit), available_(available) {
  }

  void setAvailable(std::uint64_t bytes) { available_ = bytes; }

  common::Result<std::unique_ptr<proxy::BlobWriter>, proxy::StoreError> create() override {
    auto inner = FsBlobStore::create();
    if (!inner.ok()) {
      return inner.error();
    }
    return std::unique_ptr<proxy::BlobWriter>(
        std::make_unique<Writer>(std::move(inner.value()), upload_limit_, available_));
  }

  common::Result<bool, proxy::StoreError> commit(proxy::BlobWriter& writer,
                                                 const proxy::Digest& expected) override {
    return FsBlobStore::commit(*dynamic_cast<Writer&>(writer).inner, expected);
  }

  std::optional<proxy::StorageSpace> space() override {
    return proxy::StorageSpace{upload_limit_ * 4, available_.load()};
  }

private:
  struct Writer : proxy::BlobWriter {
    Writer(std::unique_ptr<proxy::BlobWriter> writer, std::uint64_t limit,
           std::atomic<std::uint64_t>& available)
        : inner(std::move(writer)), limit(limit), available(available) {}

    common::Result<std::uint64_t, proxy::StoreError> append(std::string_view data) override {
      const auto room = limit - std::min(limit, inner->written());
      if (failed || data.size() > room) {
        if (!failed && room > 0) {
          auto stored = inner->append(data.substr(0, room));
          if (!stored.ok()) {
            return stored.error();
          }
        }
        failed = true;
        available = 0;
        return proxy::StoreError{"write: No space left on device (test disk)", true};
      }
      return inner->append(data);
    }
    std::uint64_t written() const override { return inner->written(); }
    proxy::Digest digest() override { return inner->digest(); }
    std::unique_ptr<common::DigestHasher> hashSoFar() const override { return inner->hashSoFar(); }
    ssize_t read(std::uint64_t offset, char* buffer, std::size_t length) override {
      return inner->read(offset, buffer, length);
    }
    std::optional<int> fileDescriptor() const override { return inner->fileDescriptor(); }

    std::unique_ptr<proxy::BlobWriter> inner;
    std::uint64_t limit;
    std::atomic<std::uint64_t>& available;
    bool failed = false;
  };

  std::uint64_t upload_limit_;
  std::atomic<std::uint64_t> available_;
};

struct HarnessOptions {
  std::uint64_t min_free_bytes = 0;
  std::chrono::milliseconds request_timeout = std::chrono::seconds(5);
  /// With a value, the store is a SmallDiskStore whose uploads fail past this many bytes.
  std::optional<std::uint64_t> upload_limit;
  /// The free space the SmallDiskStore reports.
  std::uint64_t available = 0;
};

/// The proxy's parts on a temporary directory, in front of a FakeRegistry.
struct Harness {
  explicit Harness(std::uint64_t min_free_bytes = 0)
      : Harness(HarnessOptions{min_free_bytes, std::chrono::seconds(5), std::nullopt, 0}) {}

  explicit Harness(const HarnessOptions& options)
      : store_owner(makeStore(dir, options)), store(*store_owner), metadata(store, clock),
        fetcher(store, metadata), manifests(metadata, clock), blobs(store, metadata, fetcher) {
    config.upstreams.push_back({});
    config.upstreams.back().name = "docker.io";
    config.upstreams.back().url = registry.url();
    config.upstreams.back().tag_ttl = std::chrono::minutes(5);
    config.upstreams.back().request_timeout = options.request_timeout;
    config.upstreams.back().stall_timeout = std::chrono::seconds(5);
    config.default_upstream = "docker.io";
    upstreams = std::make_unique<proxy::Upstreams>(config, http, clock);
    api = std::make_unique<proxy::RegistryApi>(*upstreams, metadata, manifests, blobs);
  }

  proxy::ApiResponse get(const std::string& target, std::optional<std::string> range = {},
                         const std::string& method = "GET") {
    return api->handle(proxy::ApiRequest{method, target, std::nullopt, std::move(range)});
  }

  proxy::ApiResponse getAccepting(const std::string& target, const std::string& accept,
                                  const std::string& method = "GET") {
    return api->handle(proxy::ApiRequest{method, target, accept, std::nullopt});
  }

  static std::unique_ptr<proxy::FsBlobStore> makeStore(const TempDir& dir,
                                                       const HarnessOptions& options) {
    if (options.upload_limit) {
      return std::make_unique<SmallDiskStore>(dir.path(), options.min_free_bytes,
                                              *options.upload_limit, options.available);
    }
    return std::make_unique<proxy::FsBlobStore>(dir.path(), options.min_free_bytes);
  }

  FakeRegistry registry;
  TempDir dir;
  common::FakeClock clock;
  common::HttpClient http;
  proxy::ProxyConfig config;
  std::unique_ptr<proxy::FsBlobStore> store_owner;
  proxy::FsBlobStore& store;
  proxy::Metadata metadata;
  proxy::BlobFetcher fetcher;
  proxy::ManifestService manifests;
  proxy::BlobService blobs;
  std::unique_ptr<proxy::Upstreams> upstreams;
  std::unique_ptr<proxy::RegistryApi> api;
};

/// Reads a whole answer body the way the server sends it (stored, in flight, relayed or passed
/// through); nothing when the body was cut.
inline std::optional<std::string> body(proxy::ApiResponse& response) {
  if (response.stream) {
    std::string out;
    const bool complete = response.stream([&](std::string_view data) {
      out.append(data);
      return true;
    });
    return complete ? std::optional(out) : std::nullopt;
  }
  if (!response.blob) {
    return response.body;
  }
  auto& blob = *response.blob;
  proxy::BlobReadHandle& handle = blob.download ? *blob.download : *blob.file;
  std::string out;
  std::uint64_t position = blob.offset;
  const auto end = blob.length ? blob.offset + *blob.length : UINT64_MAX;
  while (position < end) {
    std::uint64_t available = end;
    if (blob.download) {
      auto readable = blob.download->waitReadable(position);
      if (!readable.ok()) {
        return std::nullopt;
      }
      if (readable->end <= position) {
        break;
      }
      available = std::min(end, readable->end);
    }
    std::string chunk(available - position, '\0');
    const auto n = handle.read(position, chunk.data(), chunk.size());
    if (n <= 0) {
      return std::nullopt;
    }
    out.append(chunk.data(), static_cast<size_t>(n));
    position += static_cast<std::uint64_t>(n);
  }
  return out;
}

/// The last value of a header of an answer, "" when absent.
inline std::string header(const proxy::ApiResponse& response, const std::string& name) {
  std::string value;
  for (const auto& [key, text] : response.headers) {
    if (key == name) {
      value = text;
    }
  }
  return value;
}

} // namespace testsupport
