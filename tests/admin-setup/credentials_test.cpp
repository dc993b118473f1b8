#include "credentials.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>
#include <crypt.h>
#include <fstream>
#include <sys/stat.h>

namespace {

// Checks a hash with crypt(3) directly, independently of verifyPassword.
bool cryptAccepts(const std::string& password, const std::string& hash) {
  crypt_data data{};
  const char* out = crypt_r(password.c_str(), hash.c_str(), &data);
  return out != nullptr && hash == out;
}

std::string fileText(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

mode_t fileMode(const std::filesystem::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::filesystem::file_time_type mtime(const std::filesystem::path& path) {
  return std::filesystem::last_write_time(path);
}

} // namespace

TEST_CASE("hashPassword: a bcrypt hash that crypt(3) verifies", "[admin][credentials]") {
  const auto hash = admin::hashPassword("s3cret pass", 4);

  CHECK(hash.rfind("$2y$04$", 0) == 0);
  CHECK(hash.size() == 60);
  CHECK(cryptAccepts("s3cret pass", hash));
  CHECK_FALSE(cryptAccepts("s3cret pasS", hash));
  CHECK(admin::verifyPassword("s3cret pass", hash));
  CHECK(admin::bcryptCost(hash) == 4);

  SECTION("a fresh salt every time") {
    const auto again = admin::hashPassword("s3cret pass", 4);
    CHECK(again != hash);
    CHECK(cryptAccepts("s3cret pass", again));
  }
  SECTION("a wrong password, a foreign scheme and garbage do not verify") {
    CHECK_FALSE(admin::verifyPassword("other", hash));
    CHECK_FALSE(admin::verifyPassword("s3cret pass", ""));
    CHECK_FALSE(admin::verifyPassword("s3cret pass", "plain-text"));
    CHECK_FALSE(admin::bcryptCost("$6$salt$abc").has_value());
  }
  SECTION("a hash written by Apache's htpasswd -B ($2y$) verifies too") {
    // htpasswd -nbB -C 4 alice wonderland
    const std::string apache = "$2y$04$hv7iy1FQinPKvQGKXDtGw.o/j/pjTDQg/WD/fzr5i9wwiPG3wYKme";
    CHECK(admin::verifyPassword("wonderland", apache));
  }
}

TEST_CASE("renderHtpasswd: the same users give the same bytes", "[admin][credentials]") {
  const std::vector<admin::Credential> users = {{"alice", "pw-alice"}, {"bob", "pw-bob"}};
  const auto first = admin::renderHtpasswd(users, "", 4);

  REQUIRE(first.rfind("alice:$2y$04$", 0) == 0);
  REQUIRE(first.find("\nbob:$2y$04$") != std::string::npos);
  CHECK(admin::renderHtpasswd(users, first, 4) == first);

  SECTION("a changed password gets a new hash, the other line stays") {
    const auto changed = admin::renderHtpasswd({{"alice", "new"}, {"bob", "pw-bob"}}, first, 4);
    CHECK(changed.substr(0, changed.find('\n')) != first.substr(0, first.find('\n')));
    CHECK(changed.substr(changed.find('\n')) == first.substr(first.find('\n')));
    CHECK(admin::verifyPassword("new", changed.substr(6, 60)));
  }
  SECTION("a user no longer configured is dropped") {
    const auto only_bob = admin::renderHtpasswd({{"bob", "pw-bob"}}, first, 4);
    CHECK(only_bob == first.substr(first.find('\n') + 1));
  }
  SECTION("a different cost rehashes") {
    const auto costlier = admin::renderHtpasswd(users, first, 5);
    CHECK(costlier.rfind("alice:$2y$05$", 0) == 0);
  }
}

TEST_CASE("writeIfChanged: only a change touches the file", "[admin][credentials]") {
  testsupport::TempDir dir;
  const auto path = dir.path() / "sub" / "file";

  CHECK(admin::writeIfChanged(path, "one\n", 0640) == admin::FileChange::Created);
  CHECK(fileText(path) == "one\n");
  CHECK(fileMode(path) == 0640);
  const auto written_at = mtime(path);

  SECTION("the same content: unchanged, not rewritten") {
    CHECK(admin::writeIfChanged(path, "one\n", 0640) == admin::FileChange::Unchanged);
    CHECK(mtime(path) == written_at);
  }
  SECTION("the same content with another mode: only the mode is fixed") {
    REQUIRE(::chmod(path.c_str(), 0666) == 0);
    CHECK(admin::writeIfChanged(path, "one\n", 0640) == admin::FileChange::Unchanged);
    CHECK(fileMode(path) == 0640);
  }
  SECTION("new content: updated") {
    CHECK(admin::writeIfChanged(path, "two\n", 0640) == admin::FileChange::Updated);
    CHECK(fileText(path) == "two\n");
  }
}

TEST_CASE("writeCredentials: files the proxy reads, the same on a second run",
          "[admin][credentials]") {
  testsupport::TempDir dir;
  admin::Config config;
  config.bcrypt_cost = 4;
  config.pull_htpasswd = dir.path() / "htpasswd";
  config.pull_users = {{"alice", "pw-alice"}, {"bob", "pw-bob"}};
  config.admin_htpasswd = dir.path() / "admin.htpasswd";

  const auto first = admin::writeCredentials(config);

  CHECK(first.pull_file == admin::FileChange::Created);
  CHECK(first.admin_file == admin::FileChange::Created);
  REQUIRE(first.admin);
  CHECK(first.admin->user == "admin");
  CHECK(first.admin_password_generated);
  CHECK(first.admin->password.size() == 24);
  CHECK(fileText(config.adminPasswordFile()) == first.admin->password + "\n");
  CHECK(fileMode(config.adminPasswordFile()) == 0600);
  CHECK(fileMode(config.admin_htpasswd) == 0640);
  const auto admin_line = fileText(config.admin_htpasswd);
  CHECK(cryptAccepts(first.admin->password, admin_line.substr(6, 60)));
  REQUIRE(first.pull_user);
  CHECK(first.pull_user->user == "alice");

  SECTION("a second run changes nothing") {
    const auto pull_text = fileText(config.pull_htpasswd);
    const auto pull_time = mtime(config.pull_htpasswd);
    const auto admin_time = mtime(config.admin_htpasswd);
    const auto second = admin::writeCredentials(config);
    CHECK(second.pull_file == admin::FileChange::Unchanged);
    CHECK(second.admin_file == admin::FileChange::Unchanged);
    CHECK_FALSE(second.admin_password_generated);
    CHECK(second.admin->password == first.admin->password);
    CHECK(fileText(config.pull_htpasswd) == pull_text);
    CHECK(mtime(config.pull_htpasswd) == pull_time);
    CHECK(mtime(config.admin_htpasswd) == admin_time);
  }
  SECTION("a configured admin password replaces the generated one") {
    config.admin_password = "chosen-password";
    const auto second = admin::writeCredentials(config);
    CHECK(second.admin_file == admin::FileChange::Updated);
    CHECK_FALSE(second.admin_password_generated);
    CHECK(cryptAccepts("chosen-password", fileText(config.admin_htpasswd).substr(6, 60)));
  }
  SECTION("client authentication off: no pull file, no pull user") {
    testsupport::TempDir other;
    config.pull_htpasswd.clear();
    config.pull_users.clear();
    config.admin_htpasswd = other.path() / "admin.htpasswd";
    const auto result = admin::writeCredentials(config);
    CHECK_FALSE(result.pull_user);
    CHECK_FALSE(std::filesystem::exists(other.path() / "htpasswd"));
    CHECK(result.admin);
  }
}

TEST_CASE("randomPassword: the requested length from a URL-safe alphabet", "[admin][credentials]") {
  const auto password = admin::randomPassword(40);
  CHECK(password.size() == 40);
  CHECK(password.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
        std::string::npos);
  CHECK(admin::randomPassword(40) != password);
}
