#pragma once

#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace proxy {

/// An htpasswd file of bcrypt hashes, re-read when it changes on disk (admin-setup rewrites
/// it). Verified credentials are remembered until the file changes, since bcrypt is slow by
/// design and a pull sends them with every request. Thread-safe.
class HtpasswdFile {
public:
  explicit HtpasswdFile(std::string path);

  /// Whether `user` with `password` is in the file. False while the file is missing.
  bool verify(const std::string& user, const std::string& password);

  /// Whether the file exists and has at least one user (else protected endpoints refuse all).
  bool loaded();

  const std::string& path() const { return path_; }

private:
  void reloadIfChanged();

  std::string path_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point checked_{};
  std::optional<std::timespec> mtime_;
  std::map<std::string, std::string> hashes_;
  std::set<std::string> verified_;
};

/// Checks `password` against a crypt(3) hash ($2b$, $2y$, $5$, $6$...), in constant time.
bool verifyCryptHash(const std::string& password, const std::string& hash);

/// Decodes an `Authorization: Basic ...` header into user and password.
std::optional<std::pair<std::string, std::string>>
parseBasicAuthorization(const std::string& header);

} // namespace proxy
