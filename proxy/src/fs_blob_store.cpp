#include "fs_blob_store.hpp"

#include "common/atomic_file.hpp"
#include "common/digest_hasher.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"
#include "common/unique_fd.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <random>
#include <sstream>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace proxy {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLayoutFile = "docker-cache-proxy.layout";
constexpr const char* kLayoutPrefix = "docker-cache-proxy cache layout ";
// An upload's pages are sent to disk every this many bytes while it grows, so the fsync before
// commit, which the held-back last byte waits for, has only the tail left to write.
constexpr std::uint64_t kWritebackStep = 8u << 20;

std::string randomName() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream out;
  out << std::hex << rng() << rng();
  return out.str();
}

// A metadata key is made of validated names; this refuses anything that could leave meta/.
bool isSafeKey(const std::string& key) {
  if (key.empty() || key.front() == '/' || key.find('\0') != std::string::npos) {
    return false;
  }
  size_t start = 0;
  while (start <= key.size()) {
    const auto slash = key.find('/', start);
    const auto part = key.substr(start, slash == std::string::npos ? slash : slash - start);
    if (part == "." || part == "..") {
      return false;
    }
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  return true;
}

class FileReadHandle : public BlobReadHandle {
public:
  explicit FileReadHandle(common::UniqueFd fd) : fd_(std::move(fd)) {}

  ssize_t read(std::uint64_t offset, char* buffer, std::size_t length) override {
    ssize_t n;
    do {
      n = ::pread(fd_.get(), buffer, length, static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    return n;
  }

  std::optional<int> fileDescriptor() const override { return fd_.get(); }

private:
  common::UniqueFd fd_;
};

class FileWriter : public BlobWriter {
public:
  FileWriter(common::UniqueFd fd, fs::path path) : fd_(std::move(fd)), path_(std::move(path)) {}

  ~FileWriter() override {
    if (!committed_) {
      ::unlink(path_.c_str());
    }
  }

  common::Result<std::uint64_t, StoreError> append(std::string_view data) override {
    if (failed_) {
      return StoreError{"upload already failed"};
    }
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      const ssize_t n = ::pwrite(fd_.get(), p, left, static_cast<off_t>(written_));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        const int err = errno;
        failed_ = true;
        // Nothing will be committed: free the name now; the descriptor keeps what was written
        // readable for the clients still behind, and the space goes with the last of them.
        ::unlink(path_.c_str());
        return StoreError{common::systemErrorMessage("write " + path_.string(), err),
                          err == ENOSPC || err == EDQUOT};
      }
      // Count the bytes only once they are in the file: readers of a growing upload may read
      // up to written().
      hasher_.update(std::string_view(p, static_cast<size_t>(n)));
      p += n;
      left -= static_cast<size_t>(n);
      written_ += static_cast<std::uint64_t>(n);
    }
    startWriteback();
    return written_.load();
  }

  std::uint64_t written() const override { return written_; }

  Digest digest() override {
    if (!final_digest_) {
      final_digest_ = Digest::parse(hasher_.finish());
    }
    return *final_digest_;
  }

  std::unique_ptr<common::DigestHasher> hashSoFar() const override { return hasher_.copy(); }

  ssize_t read(std::uint64_t offset, char* buffer, std::size_t length) override {
    ssize_t n;
    do {
      n = ::pread(fd_.get(), buffer, length, static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    return n;
  }

  std::optional<int> fileDescriptor() const override { return fd_.get(); }

  int fd() const { return fd_.get(); }
  const fs::path& path() const { return path_; }
  bool failed() const { return failed_; }
  void markCommitted() { committed_ = true; }

private:
  void startWriteback() {
    const std::uint64_t end = written_;
    if (!writeback_ || end - writeback_from_ < kWritebackStep) {
      return;
    }
    // Only a hint (no waiting): should the file system refuse it, the fsync does it all.
    if (::sync_file_range(fd_.get(), static_cast<off_t>(writeback_from_),
                          static_cast<off_t>(end - writeback_from_), SYNC_FILE_RANGE_WRITE) != 0) {
      writeback_ = false;
    }
    writeback_from_ = end;
  }

  common::UniqueFd fd_;
  fs::path path_;
  common::DigestHasher hasher_{"sha256"};
  std::uint64_t writeback_from_ = 0;
  bool writeback_ = true;
  std::atomic<std::uint64_t> written_{0};
  std::optional<Digest> final_digest_;
  bool failed_ = false;
  bool committed_ = false;
};

} // namespace

FsBlobStore::FsBlobStore(fs::path root, std::uint64_t min_free_bytes)
    : root_(std::move(root)), min_free_bytes_(min_free_bytes) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) {
    throw common::SetupError("storage root " + root_.string() + " cannot be created: " +
                             ec.message() + "; expected a writable directory (storage.root)");
  }
  checkLayout();
  for (const char* dir : {"blobs", "meta", "tmp"}) {
    fs::create_directories(root_ / dir, ec);
    if (ec) {
      throw common::SetupError("cannot create " + (root_ / dir).string() + ": " + ec.message());
    }
  }
  sweepTemporaryFiles();
}

void FsBlobStore::checkLayout() {
  const auto layout = root_ / kLayoutFile;
  const std::string expected = kLayoutPrefix + std::to_string(kLayoutVersion) + "\n";
  std::error_code ec;
  if (fs::exists(layout, ec)) {
    const auto text = common::readFile(layout);
    if (text != expected) {
      throw common::SetupError("storage root " + root_.string() +
                               " holds a cache of another layout (" + kLayoutFile + " says \"" +
                               text.substr(0, text.find('\n')) + "\"); this release reads layout " +
                               std::to_string(kLayoutVersion) +
                               " and leaves it untouched: use the release that wrote "
                               "it, or another storage.root");
    }
    return;
  }
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(std::string(".") + kLayoutFile, 0) == 0 && common::isAtomicWriteLeftover(name)) {
      // The layout file of a first start that crashed while writing it.
      std::error_code remove_ec;
      fs::remove(entry.path(), remove_ec);
      continue;
    }
    if (name != "lost+found" && name != "blobs" && name != "meta" && name != "tmp") {
      throw common::SetupError("storage root " + root_.string() + " is not empty and is not a " +
                               "docker-cache-proxy cache (found \"" + name +
                               "\"); expected an empty directory or an existing cache");
    }
  }
  try {
    common::writeFileAtomically(layout, expected);
  } catch (const common::Error& e) {
    throw common::SetupError(std::string("storage root is not writable: ") + e.what());
  }
}

void FsBlobStore::sweepTemporaryFiles() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_ / "tmp", ec)) {
    fs::remove_all(entry.path(), ec);
    ++swept_;
  }
  // A metadata write cut short by a crash leaves its temporary file beside the key; listMeta
  // never shows it, so nothing else would ever remove it.
  std::vector<fs::path> leftovers;
  for (auto it = fs::recursive_directory_iterator(root_ / "meta", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) &&
        common::isAtomicWriteLeftover(it->path().filename().string())) {
      leftovers.push_back(it->path());
    }
  }
  for (const auto& path : leftovers) {
    if (fs::remove(path, ec)) {
      ++swept_;
    }
  }
  if (swept_ > 0) {
    common::logger("storage")->info("swept temporary files left by an earlier run: count={}",
                                    swept_);
  }
}

fs::path FsBlobStore::blobPath(const Digest& digest) const {
  const auto encoded = std::string(digest.encoded());
  return root_ / "blobs" / std::string(digest.algorithm()) / encoded.substr(0, 2) / encoded;
}

fs::path FsBlobStore::metaPath(const std::string& key) const {
  return root_ / "meta" / key;
}

std::optional<BlobStat> FsBlobStore::stat(const Digest& digest) {
  struct stat st {};
  if (::stat(blobPath(digest).c_str(), &st) != 0) {
    return std::nullopt;
  }
  BlobStat out;
  out.size = static_cast<std::uint64_t>(st.st_size);
  out.last_used =
      common::Clock::TimePoint(std::chrono::duration_cast<common::Clock::TimePoint::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  return out;
}

std::unique_ptr<BlobReadHandle> FsBlobStore::open(const Digest& digest) {
  common::UniqueFd fd(::open(blobPath(digest).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return nullptr;
  }
  return std::make_unique<FileReadHandle>(std::move(fd));
}

common::Result<std::unique_ptr<BlobWriter>, StoreError> FsBlobStore::create() {
  const auto path = root_ / "tmp" / randomName();
  common::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    const int err = errno;
    return StoreError{common::systemErrorMessage("create " + path.string(), err),
                      err == ENOSPC || err == EDQUOT};
  }
  return std::unique_ptr<BlobWriter>(std::make_unique<FileWriter>(std::move(fd), path));
}

common::Result<bool, StoreError> FsBlobStore::commit(BlobWriter& writer, const Digest& expected) {
  auto& file = dynamic_cast<FileWriter&>(writer);
  if (file.failed()) {
    return StoreError{"upload failed before commit"};
  }
  if (file.digest() != expected) {
    ::unlink(file.path().c_str());
    return false;
  }
  if (::fsync(file.fd()) != 0) {
    const int err = errno;
    return StoreError{common::systemErrorMessage("fsync " + file.path().string(), err),
                      err == ENOSPC};
  }
  const auto target = blobPath(expected);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) {
    return StoreError{"create " + target.parent_path().string() + ": " + ec.message(),
                      ec == std::errc::no_space_on_device};
  }
  if (::rename(file.path().c_str(), target.c_str()) != 0) {
    const int err = errno;
    return StoreError{common::systemErrorMessage("rename into " + target.string(), err)};
  }
  file.markCommitted();
  try {
    common::syncDirectory(target.parent_path());
  } catch (const common::Error& e) {
    common::logger("storage")->warn("directory sync failed: err={}", e.what());
  }
  return true;
}

void FsBlobStore::remove(const Digest& digest) {
  ::unlink(blobPath(digest).c_str());
}

void FsBlobStore::touch(const Digest& digest, common::Clock::TimePoint when) {
  const auto since_epoch = when.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto nsecs = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs);
  struct timespec times[2];
  times[0].tv_sec = secs.count();
  times[0].tv_nsec = nsecs.count();
  times[1] = times[0];
  ::utimensat(AT_FDCWD, blobPath(digest).c_str(), times, 0);
}

std::vector<Digest> FsBlobStore::list() {
  std::vector<Digest> out;
  std::error_code ec;
  for (const auto& algorithm : fs::directory_iterator(root_ / "blobs", ec)) {
    for (const auto& shard : fs::directory_iterator(algorithm.path(), ec)) {
      for (const auto& file : fs::directory_iterator(shard.path(), ec)) {
        const auto text =
            algorithm.path().filename().string() + ":" + file.path().filename().string();
        if (auto digest = Digest::parse(text)) {
          out.push_back(*digest);
        }
      }
    }
  }
  return out;
}

std::optional<std::string> FsBlobStore::getMeta(const std::string& key) {
  if (!isSafeKey(key)) {
    return std::nullopt;
  }
  common::UniqueFd fd(::open(metaPath(key).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return std::nullopt;
  }
  std::string out;
  char buffer[8192];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return std::nullopt;
    }
    if (n == 0) {
      break;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

bool FsBlobStore::putMeta(const std::string& key, std::string_view value) {
  if (!isSafeKey(key)) {
    return false;
  }
  const auto path = metaPath(key);
  // Twice: a cleanup may prune the directory between its creation and the write.
  for (int attempt = 0;; ++attempt) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    try {
      common::writeFileAtomically(path, value);
      return true;
    } catch (const common::Error& e) {
      if (attempt == 0 && fs::exists(root_ / "meta", ec) && !fs::exists(path.parent_path(), ec)) {
        continue;
      }
      common::logger("storage")->warn("metadata write failed: key={} err={}", key, e.what());
      return false;
    }
  }
}

void FsBlobStore::removeMeta(const std::string& key) {
  if (isSafeKey(key) && ::unlink(metaPath(key).c_str()) == 0) {
    pruneEmptyParents(metaPath(key));
  }
}

void FsBlobStore::pruneEmptyParents(const fs::path& path) {
  // rmdir refuses a directory that is not empty, so this stops at the first one still in use;
  // a repository whose last tag and link went disappears from the catalog.
  const auto meta = (root_ / "meta").string();
  for (auto dir = path.parent_path(); dir.string().size() > meta.size(); dir = dir.parent_path()) {
    if (::rmdir(dir.c_str()) != 0) {
      break;
    }
  }
}

void FsBlobStore::removeMetaTree(const std::string& prefix) {
  if (!isSafeKey(prefix)) {
    return;
  }
  std::error_code ec;
  fs::remove_all(metaPath(prefix), ec);
  if (ec) {
    common::logger("storage")->warn("metadata removal failed: prefix={} err={}", prefix,
                                    ec.message());
  }
  pruneEmptyParents(metaPath(prefix));
}

bool FsBlobStore::hasMeta(const std::string& key) {
  struct stat st {};
  return isSafeKey(key) && ::stat(metaPath(key).c_str(), &st) == 0;
}

std::vector<std::string> FsBlobStore::listMeta(const std::string& prefix) {
  std::vector<std::string> out;
  if (!prefix.empty() && !isSafeKey(prefix)) {
    return out;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(metaPath(prefix), ec)) {
    const auto name = entry.path().filename().string();
    if (!name.empty() && name.front() != '.') {
      out.push_back(name);
    }
  }
  return out;
}

bool FsBlobStore::hasRoomFor(std::uint64_t bytes) {
  const auto free_space = space();
  if (!free_space || shortage() > 0) {
    return false;
  }
  return free_space->available >= bytes + min_free_bytes_;
}

void FsBlobStore::noteNoSpace(std::uint64_t bytes) {
  bytes = std::max<std::uint64_t>(bytes, 1);
  auto current = shortage_.load();
  while (current < bytes && !shortage_.compare_exchange_weak(current, bytes)) {
  }
}

std::uint64_t FsBlobStore::shortage() {
  auto wanted = shortage_.load();
  if (wanted == 0) {
    return 0;
  }
  const auto free_space = space();
  if (!free_space || free_space->available < wanted + min_free_bytes_) {
    return wanted;
  }
  if (shortage_.compare_exchange_strong(wanted, 0)) {
    common::logger("storage")->info("storage has room again after a full disk: available={}",
                                    free_space->available);
  }
  return 0;
}

std::optional<StorageSpace> FsBlobStore::space() {
  struct statvfs st {};
  if (::statvfs(root_.c_str(), &st) != 0) {
    return std::nullopt;
  }
  return StorageSpace{static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize,
                      static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize};
}

bool FsBlobStore::writable() {
  auto writer = create();
  if (!writer.ok()) {
    return false;
  }
  return (*writer)->append("probe").ok();
}

} // namespace proxy
