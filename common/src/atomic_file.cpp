#include "common/atomic_file.hpp"

#include "common/errors.hpp"
#include "common/unique_fd.hpp"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace common {
namespace {

constexpr std::string_view kTemporaryMark = ".tmp-";

std::string randomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream out;
  out << std::hex << rng();
  return out.str();
}

} // namespace

bool isAtomicWriteLeftover(std::string_view file_name) {
  const auto mark = file_name.rfind(kTemporaryMark);
  if (file_name.size() < 2 || file_name.front() != '.' || mark == std::string_view::npos ||
      mark < 2) {
    return false;
  }
  const auto suffix = file_name.substr(mark + kTemporaryMark.size());
  return !suffix.empty() && suffix.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

void syncDirectory(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    throw SetupError(systemErrorMessage("cannot open directory " + dir.string(), errno));
  }
  if (::fsync(fd.get()) != 0) {
    throw SetupError(systemErrorMessage("cannot sync directory " + dir.string(), errno));
  }
}

void writeFileAtomically(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const auto tmp =
      dir / ("." + path.filename().string() + std::string(kTemporaryMark) + randomSuffix());

  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    throw SetupError(systemErrorMessage("cannot create " + tmp.string(), errno));
  }
  // open(2) applies the umask; the caller's mode (0600 for keys) must hold exactly.
  if (::fchmod(fd.get(), mode) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw SetupError(systemErrorMessage("cannot set mode of " + tmp.string(), err));
  }

  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd.get(), p, left);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      throw SetupError(systemErrorMessage("cannot write " + tmp.string(), err));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }

  if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw SetupError(systemErrorMessage("cannot sync " + tmp.string(), err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw SetupError(systemErrorMessage("cannot rename into " + path.string(), err));
  }
  syncDirectory(dir);
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw SetupError(systemErrorMessage("cannot read " + path.string(), errno));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace common
