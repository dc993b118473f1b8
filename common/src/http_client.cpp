#include "common/http_client.hpp"

#include "common/errors.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <curl/curl.h>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace common {
namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// curl_global_init is not thread-safe and must run once before any other curl call.
void initCurlOnce() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    throw SetupError(std::string("curl_global_init failed: ") + curl_easy_strerror(result));
  }
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using UniqueSlist = std::unique_ptr<curl_slist, SlistDeleter>;

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using UniqueEasy = std::unique_ptr<CURL, EasyDeleter>;

struct ShareDeleter {
  void operator()(CURLSH* share) const { curl_share_cleanup(share); }
};
using UniqueShare = std::unique_ptr<CURLSH, ShareDeleter>;

// The long options curl takes in whole seconds; a stall limit under a second would become "never".
long wholeSecondsAtLeastOne(std::chrono::milliseconds d) {
  return std::max<long>(1, static_cast<long>((d.count() + 999) / 1000));
}

// What the header and write callbacks of one transfer share.
struct Transfer {
  const HttpRequest* request = nullptr;
  HttpResponse response;
  // The status line of the header block being read; headers reset with each new one.
  int block_status = 0;
  bool headers_delivered = false;
  bool aborted = false;
  bool stalled = false;
  // When the last header or body byte arrived, for the stall limit.
  std::chrono::steady_clock::time_point last_byte_at = std::chrono::steady_clock::now();
  std::exception_ptr failure;

  // A block is the final answer unless it is informational (1xx) or a redirect curl follows.
  bool blockIsFinal() const {
    if (block_status < 200) {
      return false;
    }
    const bool redirect = block_status == 301 || block_status == 302 || block_status == 303 ||
                          block_status == 307 || block_status == 308;
    return !(request->follow_redirects && redirect && response.headers.get("location"));
  }

  bool deliverHeaders() {
    headers_delivered = true;
    response.status = block_status;
    if (request->on_headers && !request->on_headers(response)) {
      aborted = true;
      return false;
    }
    return true;
  }
};

size_t onHeaderLine(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t length = size * count;
  const std::string_view line(data, length);
  transfer->last_byte_at = std::chrono::steady_clock::now();
  try {
    if (line.rfind("HTTP/", 0) == 0) {
      // A new response: an interim 1xx, a followed redirect, or the final one.
      transfer->response.headers.clear();
      transfer->block_status = 0;
      const auto space = line.find(' ');
      if (space != std::string_view::npos) {
        transfer->block_status = std::atoi(std::string(line.substr(space + 1, 3)).c_str());
      }
      return length;
    }
    if (transfer->headers_delivered) {
      // Trailers after the body; the caller has seen the headers already.
      return length;
    }
    if (trim(line).empty()) {
      if (transfer->blockIsFinal() && !transfer->deliverHeaders()) {
        return 0;
      }
      return length;
    }
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      transfer->response.headers.add(std::string(trim(line.substr(0, colon))),
                                     std::string(trim(line.substr(colon + 1))));
    }
    return length;
  } catch (...) {
    transfer->failure = std::current_exception();
    return 0;
  }
}

size_t onBodyPiece(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t length = size * count;
  transfer->last_byte_at = std::chrono::steady_clock::now();
  try {
    // Only for answers without a header block end (HTTP/0.9); normally already done.
    if (!transfer->headers_delivered && !transfer->deliverHeaders()) {
      return 0;
    }
    if (transfer->request->on_body) {
      if (!transfer->request->on_body(std::string_view(data, length))) {
        transfer->aborted = true;
        return 0;
      }
      // A sink that took its time (a relay waiting for its slowest client) is no upstream stall.
      transfer->last_byte_at = std::chrono::steady_clock::now();
      return length;
    }
    transfer->response.body.append(data, length);
    return length;
  } catch (...) {
    transfer->failure = std::current_exception();
    return 0;
  }
}

// curl's own low-speed check averages over a window of about five seconds, so a burst of bytes
// hides a stall behind it for that long; this ends a transfer once no byte came for the limit.
// curl calls it at least about once a second, also while nothing arrives, so a cancel from
// another thread is noticed that soon.
int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(user);
  const auto* request = transfer->request;
  if (request->cancel && request->cancel->load()) {
    transfer->aborted = true;
    return 1;
  }
  if (request->stall_timeout.count() > 0 &&
      std::chrono::steady_clock::now() - transfer->last_byte_at >= request->stall_timeout) {
    transfer->stalled = true;
    return 1;
  }
  return 0;
}

} // namespace

void HttpHeaders::add(std::string name, std::string value) {
  entries_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
  for (const auto& [key, value] : entries_) {
    if (equalsIgnoreCase(key, name)) {
      return value;
    }
  }
  return std::nullopt;
}

std::vector<std::string> HttpHeaders::getAll(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [key, value] : entries_) {
    if (equalsIgnoreCase(key, name)) {
      values.push_back(value);
    }
  }
  return values;
}

struct HttpClient::Impl {
  // Idle easy handles kept for reuse; more than this many idle at once are freed.
  static constexpr size_t kMaxIdleHandles = 32;

  // Declared before `share`: curl_share_cleanup still takes these locks.
  std::array<std::mutex, CURL_LOCK_DATA_LAST> share_locks;
  UniqueShare share;
  std::mutex idle_mutex;
  std::vector<UniqueEasy> idle;

  static void lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    auto* impl = static_cast<Impl*>(user);
    if (data >= 0 && data < CURL_LOCK_DATA_LAST) {
      impl->share_locks[data].lock();
    }
  }

  static void unlock(CURL*, curl_lock_data data, void* user) {
    auto* impl = static_cast<Impl*>(user);
    if (data >= 0 && data < CURL_LOCK_DATA_LAST) {
      impl->share_locks[data].unlock();
    }
  }

  UniqueEasy acquire() {
    {
      std::lock_guard lock(idle_mutex);
      if (!idle.empty()) {
        auto handle = std::move(idle.back());
        idle.pop_back();
        return handle;
      }
    }
    UniqueEasy handle(curl_easy_init());
    if (!handle) {
      throw SetupError("curl_easy_init failed");
    }
    return handle;
  }

  // Returns an easy handle to the pool whatever way perform() leaves.
  class Lease {
  public:
    explicit Lease(Impl& impl) : impl_(impl), handle_(impl.acquire()) {}
    ~Lease() { impl_.release(std::move(handle_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    CURL* get() const { return handle_.get(); }

  private:
    Impl& impl_;
    UniqueEasy handle_;
  };

  void release(UniqueEasy handle) {
    // Forget this request's options (callbacks point into a finished stack frame) but keep
    // the handle's live connections for the next call.
    curl_easy_reset(handle.get());
    std::lock_guard lock(idle_mutex);
    if (idle.size() < kMaxIdleHandles) {
      idle.push_back(std::move(handle));
    }
  }
};

namespace {

// Sets options in order and remembers the first failure, so perform() checks once.
class Options {
public:
  explicit Options(CURL* handle) : handle_(handle) {}

  template <typename T> Options& set(CURLoption option, const char* name, T value) {
    if (code_ == CURLE_OK) {
      code_ = curl_easy_setopt(handle_, option, value);
      if (code_ != CURLE_OK) {
        failed_ = name;
      }
    }
    return *this;
  }

  std::optional<HttpError> error() const {
    if (code_ == CURLE_OK) {
      return std::nullopt;
    }
    return HttpError{std::string("curl_easy_setopt(") + failed_ +
                     ") failed: " + curl_easy_strerror(code_)};
  }

private:
  CURL* handle_;
  CURLcode code_ = CURLE_OK;
  const char* failed_ = "";
};

#define DCP_OPT(option) option, #option

} // namespace

HttpClient::HttpClient() : impl_(nullptr) {
  initCurlOnce();
  auto impl = std::make_unique<Impl>();
  impl->share.reset(curl_share_init());
  if (!impl->share) {
    throw SetupError("curl_share_init failed");
  }
  CURLSH* share = impl->share.get();
  auto check = [](CURLSHcode code, const char* what) {
    if (code != CURLSHE_OK) {
      throw SetupError(std::string("curl_share_setopt(") + what +
                       ") failed: " + curl_share_strerror(code));
    }
  };
  check(curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &Impl::lock), "CURLSHOPT_LOCKFUNC");
  check(curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &Impl::unlock), "CURLSHOPT_UNLOCKFUNC");
  check(curl_share_setopt(share, CURLSHOPT_USERDATA, impl.get()), "CURLSHOPT_USERDATA");
  // Connections are deliberately not shared: libcurl does not support a connection cache used
  // by concurrent threads (CURLSHOPT_SHARE(3), KNOWN_BUGS "A shared connection cache is not
  // thread-safe"). Each pooled easy handle keeps its own connections instead, and the pool hands
  // the most recently used handle out first, so its warm connections serve the next call.
  check(curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS), "DNS");
  check(curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION), "SSL_SESSION");
  impl_ = impl.release();
}

HttpClient::~HttpClient() {
  // Easy handles first: the share refuses cleanup while handles are attached to it.
  impl_->idle.clear();
  delete impl_;
}

Result<HttpResponse, HttpError> HttpClient::perform(const HttpRequest& request) {
  Impl::Lease lease(*impl_);
  CURL* handle = lease.get();
  Transfer transfer;
  transfer.request = &request;
  std::array<char, CURL_ERROR_SIZE> error_buffer{};

  UniqueSlist headers;
  for (const auto& [name, value] : request.headers) {
    // "Name;" is how curl is told to send a header with an empty value.
    const std::string line = value.empty() ? name + ";" : name + ": " + value;
    curl_slist* appended = curl_slist_append(headers.get(), line.c_str());
    if (!appended) {
      return HttpError{"curl_slist_append failed"};
    }
    headers.release();
    headers.reset(appended);
  }

  Options options(handle);
  options.set(DCP_OPT(CURLOPT_URL), request.url.c_str())
      .set(DCP_OPT(CURLOPT_SHARE), impl_->share.get())
      .set(DCP_OPT(CURLOPT_NOSIGNAL), 1L)
      .set(DCP_OPT(CURLOPT_ERRORBUFFER), error_buffer.data())
      .set(DCP_OPT(CURLOPT_PROTOCOLS_STR), "http,https")
      .set(DCP_OPT(CURLOPT_REDIR_PROTOCOLS_STR), "http,https")
      .set(DCP_OPT(CURLOPT_SUPPRESS_CONNECT_HEADERS), 1L)
      .set(DCP_OPT(CURLOPT_HTTPHEADER), headers.get())
      .set(DCP_OPT(CURLOPT_HEADERFUNCTION), &onHeaderLine)
      .set(DCP_OPT(CURLOPT_HEADERDATA), &transfer)
      .set(DCP_OPT(CURLOPT_WRITEFUNCTION), &onBodyPiece)
      .set(DCP_OPT(CURLOPT_WRITEDATA), &transfer)
      .set(DCP_OPT(CURLOPT_CONNECTTIMEOUT_MS), static_cast<long>(request.connect_timeout.count()))
      .set(DCP_OPT(CURLOPT_TIMEOUT_MS), static_cast<long>(request.timeout.count()))
      .set(DCP_OPT(CURLOPT_FOLLOWLOCATION), request.follow_redirects ? 1L : 0L)
      .set(DCP_OPT(CURLOPT_MAXREDIRS), 10L)
      .set(DCP_OPT(CURLOPT_SSL_VERIFYPEER), request.verify_tls ? 1L : 0L)
      .set(DCP_OPT(CURLOPT_SSL_VERIFYHOST), request.verify_tls ? 2L : 0L);
  if (request.stall_timeout.count() > 0) {
    // The low-speed check also catches a trickle of under a byte per second; the progress
    // callback catches silence on time.
    options.set(DCP_OPT(CURLOPT_LOW_SPEED_LIMIT), 1L)
        .set(DCP_OPT(CURLOPT_LOW_SPEED_TIME), wholeSecondsAtLeastOne(request.stall_timeout));
  }
  if (request.stall_timeout.count() > 0 || request.cancel) {
    options.set(DCP_OPT(CURLOPT_XFERINFOFUNCTION), &onProgress)
        .set(DCP_OPT(CURLOPT_XFERINFODATA), &transfer)
        .set(DCP_OPT(CURLOPT_NOPROGRESS), 0L);
  }
  if (request.receive_buffer > 0) {
    options.set(DCP_OPT(CURLOPT_BUFFERSIZE), static_cast<long>(request.receive_buffer));
  }
  if (!request.ca_file.empty()) {
    options.set(DCP_OPT(CURLOPT_CAINFO), request.ca_file.c_str());
  }
  if (request.method == "HEAD") {
    options.set(DCP_OPT(CURLOPT_NOBODY), 1L);
  } else if (request.method == "GET") {
    options.set(DCP_OPT(CURLOPT_HTTPGET), 1L);
  } else {
    // POSTFIELDS makes it a POST; CUSTOMREQUEST renames it for PUT, PATCH, DELETE.
    options.set(DCP_OPT(CURLOPT_POSTFIELDS), request.body.data())
        .set(DCP_OPT(CURLOPT_POSTFIELDSIZE_LARGE), static_cast<curl_off_t>(request.body.size()));
    if (request.method != "POST") {
      options.set(DCP_OPT(CURLOPT_CUSTOMREQUEST), request.method.c_str());
    }
  }
  if (auto error = options.error()) {
    return *error;
  }

  const CURLcode code = curl_easy_perform(handle);
  if (transfer.failure) {
    std::rethrow_exception(transfer.failure);
  }
  if (code != CURLE_OK) {
    HttpError error;
    error.message = error_buffer[0] != '\0' ? error_buffer.data() : curl_easy_strerror(code);
    error.timeout = code == CURLE_OPERATION_TIMEDOUT || transfer.stalled;
    error.aborted = transfer.aborted;
    if (transfer.stalled) {
      error.message =
          "no data received for " + std::to_string(request.stall_timeout.count()) + " ms";
    } else if (transfer.aborted && request.cancel && request.cancel->load()) {
      error.message = "cancelled";
    }
    return error;
  }

  long status = 0;
  const CURLcode info = curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  if (info != CURLE_OK) {
    return HttpError{std::string("curl_easy_getinfo(CURLINFO_RESPONSE_CODE) failed: ") +
                     curl_easy_strerror(info)};
  }
  transfer.block_status = static_cast<int>(status);
  if (!transfer.headers_delivered && !transfer.deliverHeaders()) {
    return HttpError{"aborted by the response handler", false, true};
  }
  transfer.response.status = static_cast<int>(status);
  return std::move(transfer.response);
}

} // namespace common
