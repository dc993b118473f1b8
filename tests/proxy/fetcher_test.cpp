#include "common/digest_hasher.hpp"
#include "fetcher.hpp"
#include "fs_blob_store.hpp"
#include "temp_dir.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <future>

using proxy::BlobDownload;
using proxy::BlobWriter;
using proxy::Digest;
using proxy::FsBlobStore;

namespace {

// A growing upload whose size the test sets, and which tells when a reader first looked at it.
class GrowingUpload : public BlobWriter {
public:
  common::Result<std::uint64_t, proxy::StoreError> append(std::string_view data) override {
    written_ += data.size();
    return written_.load();
  }
  std::uint64_t written() const override {
    const std::uint64_t size = written_;
    if (!looked_.exchange(true)) {
      first_look_.set_value();
    }
    return size;
  }
  Digest digest() override { return Digest::sha256Of(""); }
  std::unique_ptr<common::DigestHasher> hashSoFar() const override {
    return std::make_unique<common::DigestHasher>("sha256");
  }
  ssize_t read(std::uint64_t, char*, std::size_t) override { return 0; }
  std::optional<int> fileDescriptor() const override { return std::nullopt; }

  std::future<void> firstLook() { return first_look_.get_future(); }

private:
  std::atomic<std::uint64_t> written_{0};
  mutable std::atomic<bool> looked_{false};
  mutable std::promise<void> first_look_;
};

} // namespace

TEST_CASE("BlobDownload: a waiting reader sees a piece smaller than a wake-up step",
          "[proxy][fetcher]") {
  auto upload = std::make_shared<GrowingUpload>();
  auto first_look = upload->firstLook();
  BlobDownload download(Digest::sha256Of("x"), upload);
  download.started(std::nullopt);
  const auto id = *download.attach();

  // The reader finds nothing and waits; then a small piece arrives, for which no wake-up is
  // due (a slow upstream). The reader must look again on its own, or this never returns.
  auto reader = std::async(std::launch::async, [&] { return download.waitReadable(id, 0); });
  first_look.wait();
  REQUIRE(upload->append("a small piece").ok());
  download.progressed();
  const auto readable = reader.get();
  REQUIRE(readable.ok());
  // All but the last byte, held back until the digest is verified.
  CHECK(readable->end == std::strlen("a small piece") - 1);
}

TEST_CASE("BlobDownload: the last byte waits for the commit", "[proxy][fetcher]") {
  testsupport::TempDir dir;
  FsBlobStore store(dir.path());
  const std::string bytes = "layer bytes";
  const auto digest = Digest::sha256Of(bytes);
  auto writer = store.create();
  REQUIRE(writer.ok());
  BlobDownload download(digest, std::shared_ptr<BlobWriter>(std::move(writer.value())));
  download.started(bytes.size());
  const auto id = *download.attach();
  REQUIRE(download.writer().append(bytes).ok());
  download.progressed();
  const auto readable = download.waitReadable(id, 0);
  REQUIRE(readable.ok());
  CHECK(readable->end == bytes.size() - 1);

  SECTION("committed: the whole blob is readable") {
    auto committed = store.commit(download.writer(), digest);
    REQUIRE(committed.ok());
    REQUIRE(committed.value());
    download.finished(BlobDownload::State::Committed);
    const auto end = download.waitReadable(id, bytes.size() - 1);
    REQUIRE(end.ok());
    CHECK(end->end == bytes.size());
  }
  SECTION("failed: readers get the failure, never the last byte") {
    download.finished(BlobDownload::State::Failed);
    CHECK_FALSE(download.waitReadable(id, bytes.size() - 1).ok());
  }
}
