#include "credentials.hpp"

#include "common/atomic_file.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"

#include <cerrno>
#include <crypt.h>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <openssl/rand.h>
#include <sstream>
#include <sys/stat.h>

namespace admin {
namespace {

constexpr mode_t kHtpasswdMode = 0640;
constexpr mode_t kSecretMode = 0600;

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

// Reads a file that may be missing: nothing when it does not exist.
std::optional<std::string> readIfPresent(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) {
      throw common::SetupError("cannot check " + path.string() + ": " + ec.message());
    }
    return std::nullopt;
  }
  return common::readFile(path);
}

// user -> hash of every well-formed `user:hash` line.
std::map<std::string, std::string> parseHtpasswd(std::string_view text) {
  std::map<std::string, std::string> entries;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    const auto colon = line.find(':');
    if (line.empty() || line.front() == '#' || colon == std::string::npos) {
      continue;
    }
    entries.emplace(line.substr(0, colon), line.substr(colon + 1));
  }
  return entries;
}

} // namespace

const char* describe(FileChange change) {
  switch (change) {
  case FileChange::Unchanged:
    return "unchanged";
  case FileChange::Created:
    return "created";
  case FileChange::Updated:
    return "updated";
  }
  return "unknown";
}

std::string hashPassword(std::string_view password, int cost) {
  // crypt_gensalt_ra with a null entropy source asks libxcrypt to read the kernel's random
  // bytes itself (CRYPT_GENSALT_IMPLEMENTS_AUTO_ENTROPY).
  errno = 0;
  std::unique_ptr<char, FreeDeleter> salt(crypt_gensalt_ra("$2y$", cost, nullptr, 0));
  if (!salt || salt.get()[0] == '*') {
    throw common::Error(common::systemErrorMessage(
        "crypt_gensalt(\"$2y$\", " + std::to_string(cost) + ") failed", errno));
  }
  crypt_data data{};
  const std::string text(password);
  errno = 0;
  const char* hash = crypt_r(text.c_str(), salt.get(), &data);
  if (hash == nullptr || hash[0] == '*') {
    throw common::Error(common::systemErrorMessage("crypt(3) with a bcrypt salt failed", errno));
  }
  return hash;
}

bool verifyPassword(std::string_view password, const std::string& hash) {
  if (hash.empty() || hash[0] != '$') {
    return false;
  }
  crypt_data data{};
  const std::string text(password);
  const char* computed = crypt_r(text.c_str(), hash.c_str(), &data);
  if (computed == nullptr || computed[0] == '*') {
    return false;
  }
  const std::string_view result(computed);
  // Compare every byte whatever the first difference, so timing tells nothing.
  if (result.size() != hash.size()) {
    return false;
  }
  unsigned char diff = 0;
  for (size_t i = 0; i < hash.size(); ++i) {
    diff |= static_cast<unsigned char>(result[i] ^ hash[i]);
  }
  return diff == 0;
}

std::optional<int> bcryptCost(const std::string& hash) {
  // $2a$, $2b$, $2y$ then two digits and '$'.
  if (hash.size() < 7 || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' || hash[6] != '$' ||
      !std::isdigit(static_cast<unsigned char>(hash[4])) ||
      !std::isdigit(static_cast<unsigned char>(hash[5]))) {
    return std::nullopt;
  }
  return (hash[4] - '0') * 10 + (hash[5] - '0');
}

std::string renderHtpasswd(const std::vector<Credential>& users, std::string_view existing,
                           int cost) {
  const auto old = parseHtpasswd(existing);
  std::string text;
  for (const auto& user : users) {
    std::string hash;
    if (const auto it = old.find(user.user); it != old.end() && bcryptCost(it->second) == cost &&
                                             verifyPassword(user.password, it->second)) {
      hash = it->second;
    } else {
      hash = hashPassword(user.password, cost);
    }
    text += user.user + ":" + hash + "\n";
  }
  return text;
}

FileChange writeIfChanged(const std::filesystem::path& path, std::string_view content,
                          mode_t mode) {
  const auto current = readIfPresent(path);
  if (current && *current == content) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      throw common::SetupError(common::systemErrorMessage("stat " + path.string(), errno));
    }
    if ((st.st_mode & 07777) != mode && ::chmod(path.c_str(), mode) != 0) {
      throw common::SetupError(common::systemErrorMessage("chmod " + path.string(), errno));
    }
    return FileChange::Unchanged;
  }
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) {
    throw common::SetupError("cannot create directory " + path.parent_path().string() + ": " +
                             ec.message());
  }
  common::writeFileAtomically(path, content, mode);
  return current ? FileChange::Updated : FileChange::Created;
}

std::string randomPassword(std::size_t length) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string password;
  unsigned char bytes[64];
  while (password.size() < length) {
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
      throw common::Error("RAND_bytes failed: cannot make a password");
    }
    for (unsigned char b : bytes) {
      if (password.size() < length) {
        password += kAlphabet[b & 0x3f];
      }
    }
  }
  return password;
}

CredentialsResult writeCredentials(const Config& config) {
  auto log = common::logger("credentials");
  CredentialsResult result;

  if (config.clientAuthEnabled()) {
    const auto existing = readIfPresent(config.pull_htpasswd).value_or("");
    const auto text = renderHtpasswd(config.pull_users, existing, config.bcrypt_cost);
    result.pull_file = writeIfChanged(config.pull_htpasswd, text, kHtpasswdMode);
    result.pull_user = config.pull_users.front();
    log->info("pull users written: file={} users={} change={}", config.pull_htpasswd.string(),
              config.pull_users.size(), describe(result.pull_file));
  } else {
    log->info("client authentication off, no pull users written: DCP_AUTH_HTPASSWD is unset");
  }

  if (config.admin_htpasswd.empty()) {
    log->warn("admin credentials not managed: DCP_ADMIN_HTPASSWD is unset");
    return result;
  }
  Credential admin{config.admin_user, config.admin_password.value_or("")};
  if (!config.admin_password) {
    // Made once, then read back, so that later runs keep the same password.
    const auto path = config.adminPasswordFile();
    std::string stored;
    if (const auto text = readIfPresent(path)) {
      stored = *text;
      while (!stored.empty() && (stored.back() == '\n' || stored.back() == '\r')) {
        stored.pop_back();
      }
    }
    if (stored.empty()) {
      stored = randomPassword();
      writeIfChanged(path, stored + "\n", kSecretMode);
      result.admin_password_generated = true;
      log->info("admin password generated, DCP_ADMIN_PASSWORD is unset: file={}", path.string());
    }
    admin.password = stored;
  }
  const auto existing = readIfPresent(config.admin_htpasswd).value_or("");
  result.admin_file = writeIfChanged(
      config.admin_htpasswd, renderHtpasswd({admin}, existing, config.bcrypt_cost), kHtpasswdMode);
  log->info("admin user written: file={} user={} change={}", config.admin_htpasswd.string(),
            admin.user, describe(result.admin_file));
  result.admin = std::move(admin);
  return result;
}

} // namespace admin
