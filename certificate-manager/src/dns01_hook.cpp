#include "dns01_hook.hpp"

#include "common/errors.hpp"
#include "common/logging.hpp"
#include "common/unique_fd.hpp"
#include "dns_lookup.hpp"
#include "openssl_util.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace certmgr {
namespace {

constexpr size_t kMaxOutput = 64 * 1024;

// The last lines of a hook's output, for an error message.
std::string outputTail(const std::string& output) {
  constexpr size_t kTail = 500;
  std::string tail = output.size() > kTail ? output.substr(output.size() - kTail) : output;
  std::replace(tail.begin(), tail.end(), '\n', ' ');
  return tail;
}

} // namespace

HookResult runHook(const std::string& command, const std::vector<std::string>& args,
                   std::chrono::milliseconds timeout) {
  HookResult result;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw common::SetupError(common::systemErrorMessage("cannot create pipe for dns hook", errno));
  }
  common::UniqueFd read_end(pipe_fds[0]);
  common::UniqueFd write_end(pipe_fds[1]);

  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  const std::string script = command + " \"$@\"";
  std::vector<std::string> argv_storage = {"sh", "-c", script, "sh"};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_storage) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    throw common::SetupError(common::systemErrorMessage("cannot fork dns hook", errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(write_end.get(), STDOUT_FILENO);
    ::dup2(write_end.get(), STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) {
      ::dup2(null_fd, STDIN_FILENO);
    }
    ::execv("/bin/sh", argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  write_end.reset();

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    pollfd pfd{read_end.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) {
      continue;
    }
    if (ready <= 0) {
      continue;
    }
    const ssize_t n = ::read(read_end.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break; // every writer closed: the hook (and its children) are done with the output
    }
    if (result.output.size() < kMaxOutput) {
      result.output.append(buffer, static_cast<size_t>(n));
    }
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::pair<std::string, std::string> dns01Record(const ChallengeTask& task) {
  return {"_acme-challenge." + task.identifier + ".", base64url(sha256(task.key_authorization))};
}

Dns01Hook::Dns01Hook(Dns01Options options) : options_(std::move(options)) {}

void Dns01Hook::present(const std::vector<ChallengeTask>& tasks) {
  auto log = common::logger("dns01");
  std::vector<std::pair<std::string, std::string>> records;
  for (const auto& task : tasks) {
    const auto [fqdn, value] = dns01Record(task);
    const auto result = runHook(options_.command, {"present", fqdn, value}, options_.hook_timeout);
    log->debug("dns hook output: action=present fqdn={} output={}", fqdn,
               outputTail(result.output));
    if (result.timed_out || result.exit_code != 0) {
      throw common::UnavailableError(
          "dns hook failed to present the TXT record: fqdn=" + fqdn +
          (result.timed_out ? " timed_out=true" : " exit=" + std::to_string(result.exit_code)) +
          " output=" + outputTail(result.output));
    }
    log->info("dns hook presented txt record: fqdn={}", fqdn);
    records.emplace_back(fqdn, value);
  }
  if (options_.skip_propagation) {
    log->info("dns propagation check skipped (CERTMGR_DNS01_SKIP_PROPAGATION)");
    return;
  }
  waitForPropagation(records);
}

void Dns01Hook::cleanup(const std::vector<ChallengeTask>& tasks) noexcept {
  auto log = common::logger("dns01");
  for (const auto& task : tasks) {
    try {
      const auto [fqdn, value] = dns01Record(task);
      const auto result =
          runHook(options_.command, {"cleanup", fqdn, value}, options_.hook_timeout);
      if (result.timed_out || result.exit_code != 0) {
        log->warn("dns hook failed to remove the TXT record, remove it by hand: fqdn={} exit={} "
                  "output={}",
                  fqdn, result.exit_code, outputTail(result.output));
      } else {
        log->info("dns hook removed txt record: fqdn={}", fqdn);
      }
    } catch (const std::exception& e) {
      log->warn("dns hook cleanup failed: identifier={} err={}", task.identifier, e.what());
    }
  }
}

void Dns01Hook::waitForPropagation(
    const std::vector<std::pair<std::string, std::string>>& records) {
  auto log = common::logger("dns01");
  const std::vector<std::string> resolvers =
      options_.resolvers.empty() ? std::vector<std::string>{""} : options_.resolvers;
  const auto deadline = std::chrono::steady_clock::now() + options_.propagation_timeout;
  while (true) {
    std::string missing;
    for (const auto& [fqdn, value] : records) {
      for (const auto& resolver : resolvers) {
        const auto answer = lookupTxt(fqdn, resolver, std::chrono::seconds(3));
        if (!answer || std::find(answer->begin(), answer->end(), value) == answer->end()) {
          missing = fqdn + " at " + (resolver.empty() ? "system resolver" : resolver) +
                    (answer ? "" : " (no answer)");
          break;
        }
      }
      if (!missing.empty()) {
        break;
      }
    }
    if (missing.empty()) {
      log->info("dns records visible at every resolver: records={}", records.size());
      return;
    }
    if (std::chrono::steady_clock::now() + options_.poll_interval > deadline) {
      throw common::UnavailableError(
          "dns record not visible before the propagation timeout: " + missing +
          " (set CERTMGR_DNS01_RESOLVERS to the authoritative servers, or "
          "CERTMGR_DNS01_SKIP_PROPAGATION=true)");
    }
    log->debug("waiting for dns propagation: missing={}", missing);
    std::this_thread::sleep_for(options_.poll_interval);
  }
}

} // namespace certmgr
