#include "htpasswd.hpp"

#include "common/logging.hpp"

#include <Poco/Base64Decoder.h>
#include <crypt.h>
#include <fstream>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sstream>
#include <sys/stat.h>

namespace proxy {
namespace {

constexpr auto kRecheckInterval = std::chrono::seconds(1);

std::string cacheKey(const std::string& user, const std::string& password) {
  // Never keep the password itself in memory longer than the request: keep its hash.
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const std::string material = user + '\0' + password;
  EVP_Digest(material.data(), material.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md), len);
}

} // namespace

bool verifyCryptHash(const std::string& password, const std::string& hash) {
  crypt_data data{};
  const char* computed = crypt_r(password.c_str(), hash.c_str(), &data);
  if (computed == nullptr || computed[0] == '*') {
    return false;
  }
  const std::string result(computed);
  return result.size() == hash.size() &&
         CRYPTO_memcmp(result.data(), hash.data(), hash.size()) == 0;
}

std::optional<std::pair<std::string, std::string>>
parseBasicAuthorization(const std::string& header) {
  constexpr std::string_view kScheme = "basic ";
  if (header.size() <= kScheme.size()) {
    return std::nullopt;
  }
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) {
      return std::nullopt;
    }
  }
  std::string decoded;
  try {
    std::istringstream in(header.substr(kScheme.size()));
    Poco::Base64Decoder decoder(in);
    std::ostringstream out;
    out << decoder.rdbuf();
    decoded = out.str();
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const auto colon = decoded.find(':');
  if (colon == std::string::npos || colon == 0) {
    return std::nullopt;
  }
  return std::make_pair(decoded.substr(0, colon), decoded.substr(colon + 1));
}

HtpasswdFile::HtpasswdFile(std::string path) : path_(std::move(path)) {}

void HtpasswdFile::reloadIfChanged() {
  const auto now = std::chrono::steady_clock::now();
  if (now - checked_ < kRecheckInterval && checked_ != std::chrono::steady_clock::time_point{}) {
    return;
  }
  checked_ = now;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    if (mtime_ || !hashes_.empty()) {
      common::logger("auth")->warn("htpasswd file gone, refusing its users: file={}", path_);
    }
    mtime_.reset();
    hashes_.clear();
    verified_.clear();
    return;
  }
  if (mtime_ && mtime_->tv_sec == st.st_mtim.tv_sec && mtime_->tv_nsec == st.st_mtim.tv_nsec) {
    return;
  }
  std::ifstream in(path_);
  std::map<std::string, std::string> hashes;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      continue;
    }
    hashes[line.substr(0, colon)] = line.substr(colon + 1);
  }
  hashes_ = std::move(hashes);
  verified_.clear();
  mtime_ = st.st_mtim;
  common::logger("auth")->info("htpasswd file loaded: file={} users={}", path_, hashes_.size());
}

bool HtpasswdFile::verify(const std::string& user, const std::string& password) {
  std::string hash;
  const auto key = cacheKey(user, password);
  {
    std::lock_guard lock(mutex_);
    reloadIfChanged();
    auto it = hashes_.find(user);
    if (it == hashes_.end()) {
      return false;
    }
    if (verified_.count(key) > 0) {
      return true;
    }
    hash = it->second;
  }
  if (!verifyCryptHash(password, hash)) {
    return false;
  }
  std::lock_guard lock(mutex_);
  verified_.insert(key);
  return true;
}

bool HtpasswdFile::loaded() {
  std::lock_guard lock(mutex_);
  reloadIfChanged();
  return !hashes_.empty();
}

} // namespace proxy
