#include "certificate_writer.hpp"

#include "common/atomic_file.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"
#include "common/unique_fd.hpp"

#include <cerrno>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace certmgr {
namespace {

namespace fs = std::filesystem;

// A file written and fsynced under a temporary name, removed again unless committed.
class StagedFile {
public:
  StagedFile(const fs::path& target, std::string_view data, mode_t mode) : target_(target) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    temp_ = target.parent_path() /
            ("." + target.filename().string() + ".new-" + std::to_string(rng() % 1'000'000'000));
    common::UniqueFd fd(::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd.valid()) {
      throw common::SetupError(
          common::systemErrorMessage("cannot create " + temp_.string(), errno));
    }
    staged_ = true;
    // The umask must not widen or narrow what we ask for: keys are exactly 0600.
    if (::fchmod(fd.get(), mode) != 0) {
      fail("cannot set mode of", errno);
    }
    while (!data.empty()) {
      const ssize_t n = ::write(fd.get(), data.data(), data.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        fail("cannot write", errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    if (::fsync(fd.get()) != 0) {
      fail("cannot sync", errno);
    }
    if (::close(fd.release()) != 0) {
      fail("cannot close", errno);
    }
  }

  ~StagedFile() {
    if (staged_) {
      ::unlink(temp_.c_str());
    }
  }

  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  void commit() {
    if (::rename(temp_.c_str(), target_.c_str()) != 0) {
      fail("cannot rename into place", errno);
    }
    staged_ = false;
  }

private:
  [[noreturn]] void fail(const std::string& what, int err) {
    throw common::SetupError(common::systemErrorMessage(what + " " + temp_.string(), err));
  }

  fs::path target_;
  fs::path temp_;
  bool staged_ = false;
};

// Points `backup` at the inode `current` names now, replacing any older backup atomically.
void keepPrevious(const fs::path& current, const fs::path& backup) {
  const fs::path temp = backup.parent_path() / ("." + backup.filename().string() + ".link");
  ::unlink(temp.c_str());
  if (::link(current.c_str(), temp.c_str()) != 0) {
    if (errno == ENOENT) {
      return;
    }
    throw common::SetupError(common::systemErrorMessage("cannot link " + current.string(), errno));
  }
  if (::rename(temp.c_str(), backup.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    throw common::SetupError(
        common::systemErrorMessage("cannot rename into " + backup.string(), err));
  }
}

std::optional<std::string> readIfPresent(const fs::path& path, std::string& problem) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    problem = path.filename().string() + " missing";
    return std::nullopt;
  }
  try {
    return common::readFile(path);
  } catch (const common::Error& e) {
    problem = e.what();
    return std::nullopt;
  }
}

} // namespace

CertificateWriter::CertificateWriter(fs::path dir) : dir_(std::move(dir)) {}

CurrentPair CertificateWriter::readCurrent() const {
  CurrentPair current;
  std::string problem;
  const auto chain_pem = readIfPresent(certificatePath(), problem);
  const auto key_pem = chain_pem ? readIfPresent(keyPath(), problem) : std::nullopt;
  if (!chain_pem || !key_pem) {
    current.state = problem.find("missing") != std::string::npos ? CurrentPair::State::Missing
                                                                 : CurrentPair::State::Unreadable;
    current.detail = problem;
    return current;
  }

  PkeyPtr key;
  try {
    auto chain = parseCertificatesPem(*chain_pem);
    current.leaf = std::move(chain.front());
    current.info = inspectCertificate(current.leaf.get());
  } catch (const CryptoError& e) {
    current.state = CurrentPair::State::Unreadable;
    current.detail = "tls.crt: " + std::string(e.what());
    return current;
  }
  try {
    key = parsePrivateKeyPem(*key_pem);
  } catch (const CryptoError& e) {
    current.state = CurrentPair::State::Unreadable;
    current.detail = "tls.key: " + std::string(e.what());
    return current;
  }

  if (!keyMatchesCertificate(key.get(), current.leaf.get())) {
    current.state = CurrentPair::State::KeyMismatch;
    current.detail = "tls.key does not match tls.crt";
    return current;
  }
  current.state = CurrentPair::State::Valid;
  return current;
}

void CertificateWriter::write(const IssuedPair& pair) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    throw common::SetupError("cannot create output directory " + dir_.string() + ": " +
                             ec.message());
  }

  // Both new files complete and durable before anything visible changes.
  StagedFile cert(certificatePath(), pair.chain_pem, 0644);
  StagedFile key(keyPath(), pair.key_pem, 0600);

  keepPrevious(keyPath(), dir_ / "tls.key.prev");
  keepPrevious(certificatePath(), dir_ / "tls.crt.prev");

  // Certificate first: a key never appears without its certificate (see the class comment).
  cert.commit();
  key.commit();
  common::syncDirectory(dir_);
  common::logger("writer")->info("certificate written: dir={} files=tls.crt,tls.key",
                                 dir_.string());
}

} // namespace certmgr
