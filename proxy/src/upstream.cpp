#include "upstream.hpp"

#include "common/digest_hasher.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"
#include "upstream_auth.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <array>
#include <atomic>
#include <charconv>
#include <spdlog/spdlog.h>
#include <stdexcept>

namespace proxy {
namespace {

using namespace std::chrono_literals;
using Kind = UpstreamError::Kind;

// Redirect hops followed for one request: Docker Hub needs one (blob -> CDN).
constexpr int kMaxRedirects = 5;
// The distribution spec lets registries refuse manifests over 4 MiB; we refuse to buffer more.
constexpr size_t kManifestLimit = 4 * 1024 * 1024;
constexpr size_t kListLimit = 16 * 1024 * 1024;
// Enough of an error answer for its OCI error code and message.
constexpr size_t kErrorBodyLimit = 64 * 1024;
// Blob bodies are read in pieces this large: each piece costs a write to the store and a
// wake-up of every client reading along, so 16 KiB pieces cost several times the CPU.
constexpr size_t kBlobReceiveBuffer = 256 * 1024;

constexpr const char* kDefaultManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

std::string toLower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return {};
  }
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool isRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// "scheme://host:port" with the default port filled in: what decides whether an Authorization
// header may travel to a URL.
std::optional<std::string> urlOrigin(const std::string& url) {
  const auto host = urlHost(url);
  if (!host) {
    return std::nullopt;
  }
  const auto scheme_end = url.find("://");
  const auto scheme = toLower(std::string_view(url).substr(0, scheme_end));
  const auto start = scheme_end + 3;
  const auto end = url.find_first_of("/?#", start);
  auto authority =
      std::string_view(url).substr(start, end == std::string::npos ? end : end - start);
  authority.remove_prefix(
      authority.rfind('@') == std::string_view::npos ? 0 : authority.rfind('@') + 1);
  const auto bracket = authority.rfind(']');
  const auto colon = authority.rfind(':');
  std::string port = scheme == "https" ? "443" : "80";
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    port = std::string(authority.substr(colon + 1));
  }
  return scheme + "://" + *host + ":" + port;
}

// The path of a URL without its query: what the request log shows.
std::string urlPath(const std::string& url) {
  const auto scheme_end = url.find("://");
  const auto start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  if (start == std::string::npos) {
    return "/";
  }
  return url.substr(start, url.find_first_of("?#", start) - start);
}

// Location against the URL it came from (RFC 9110 section 10.2.2). Done by hand rather than by
// a URI class, so a CDN's signed query and path reach it byte for byte.
std::string resolveLocation(const std::string& current, const std::string& location) {
  if (location.find("://") != std::string::npos) {
    return location;
  }
  const auto scheme_end = current.find("://");
  if (location.rfind("//", 0) == 0) {
    return current.substr(0, scheme_end + 1) + location;
  }
  const auto path_start = current.find_first_of("/?#", scheme_end + 3);
  const auto origin = current.substr(0, path_start);
  if (!location.empty() && location.front() == '/') {
    return origin + location;
  }
  const auto path = urlPath(current);
  return origin + path.substr(0, path.rfind('/') + 1) + location;
}

std::optional<std::uint64_t> parseUnsigned(std::string_view text) {
  text = trim(text);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// Docker Hub's "100;w=21600": the number before the first ';'. Empty or odd values say nothing.
std::optional<long> parseRateLimitHeader(const std::optional<std::string>& value) {
  if (!value) {
    return std::nullopt;
  }
  const auto number = parseUnsigned(std::string_view(*value).substr(0, value->find(';')));
  if (!number) {
    return std::nullopt;
  }
  return static_cast<long>(*number);
}

// The media type of a Content-Type value: parameters and spaces dropped.
std::string mediaTypeOf(std::string_view content_type) {
  return std::string(trim(content_type.substr(0, content_type.find(';'))));
}

std::optional<Digest> digestOf(std::string_view algorithm, std::string_view bytes) {
  if (!common::DigestHasher::supports(algorithm)) {
    return std::nullopt;
  }
  return Digest::parse(common::digestOf(algorithm, bytes));
}

// "MANIFEST_UNKNOWN: manifest unknown" from an OCI error body, if it is one.
std::string ociErrorSummary(const std::string& body) {
  if (body.empty() || body.size() >= kErrorBodyLimit || body.front() != '{') {
    return {};
  }
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    auto errors = object ? object->getArray("errors") : nullptr;
    if (!errors || errors->size() == 0) {
      return {};
    }
    auto first = errors->getObject(0);
    if (!first) {
      return {};
    }
    std::string summary = first->optValue<std::string>("code", "");
    const auto message = first->optValue<std::string>("message", "");
    if (!message.empty()) {
      summary += summary.empty() ? message : ": " + message;
    }
    return summary.substr(0, 200);
  } catch (const Poco::Exception&) {
    return {};
  } catch (const std::exception&) {
    return {};
  }
}

// An IMF-fixdate, the HTTP-date form senders must use (RFC 9110 section 5.6.7):
// "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::chrono::sys_seconds> parseHttpDate(std::string_view text) {
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT" ||
      text[7] != ' ' || text[11] != ' ' || text[16] != ' ' || text[19] != ':' || text[22] != ':') {
    return std::nullopt;
  }
  const auto month = kMonths.find(text.substr(8, 3));
  const auto day = parseUnsigned(text.substr(5, 2));
  const auto year = parseUnsigned(text.substr(12, 4));
  const auto hour = parseUnsigned(text.substr(17, 2));
  const auto minute = parseUnsigned(text.substr(20, 2));
  const auto second = parseUnsigned(text.substr(23, 2));
  if (month == std::string_view::npos || month % 3 != 0 || !day || !year || !hour || !minute ||
      !second || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(static_cast<int>(*year)),
                                         std::chrono::month(static_cast<unsigned>(month / 3 + 1)),
                                         std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) {
    return std::nullopt;
  }
  return std::chrono::sys_days(date) + std::chrono::hours(*hour) + std::chrono::minutes(*minute) +
         std::chrono::seconds(*second);
}

UpstreamError makeError(Kind kind, int status, std::string message) {
  UpstreamError error{kind, status, std::move(message), std::nullopt};
  return error;
}

} // namespace

struct Upstream::Impl {
  // What one logical request needs, kept across redirect hops and the retry after a challenge.
  struct Call {
    std::string method = "GET";
    /// /v2/<repository>/..., no query.
    std::string path;
    std::string query;
    std::vector<std::pair<std::string, std::string>> headers;
    /// The token scope: "repository:<name>:pull".
    std::string scope;
    /// A blob download: no overall limit, stall timeout instead.
    bool blob = false;
    size_t body_limit = kListLimit;
    /// Streaming: called with the headers of a 200 before its body; false aborts.
    std::function<bool(const common::HttpResponse&)> on_start;
    /// Streaming: each piece of a 200's body; false aborts.
    std::function<bool(std::string_view)> on_data;
  };

  // The final answer to a Call, after redirects and authentication.
  struct Answer {
    int status = 0;
    common::HttpHeaders headers;
    /// Buffered body (not for a streamed 200; truncated for errors).
    std::string body;
    /// Bytes passed to Call::on_data.
    std::uint64_t streamed = 0;
    /// Whether the answer came from the upstream itself rather than a redirect target.
    bool from_upstream = true;
  };

  Impl(const UpstreamConfig& config_in, common::HttpClient& http_in, const common::Clock& clock_in)
      : config(config_in), http(http_in), clock(clock_in), tokens(clock_in),
        log(common::logger("upstream")) {
    base_url = config.url;
    while (!base_url.empty() && base_url.back() == '/') {
      base_url.pop_back();
    }
    const auto host_in = urlHost(base_url);
    const auto origin_in = urlOrigin(base_url);
    if (!host_in || !origin_in) {
      throw common::ConfigError("upstream " + config.name + ": url \"" +
                                common::redactUrl(config.url) +
                                "\" is not an http(s) URL; expected e.g. https://registry.example");
    }
    host = *host_in;
    origin = *origin_in;
    if (config.insecure_skip_verify) {
      log->warn("tls verification disabled for upstream: upstream={}", config.name);
    }
  }

  UpstreamConfig config;
  common::HttpClient& http;
  const common::Clock& clock;
  TokenCache tokens;
  std::shared_ptr<spdlog::logger> log;
  std::string base_url;
  std::string host;
  std::string origin;
  // Set once the upstream asked for Basic: later requests send it without a 401 round trip.
  std::atomic<bool> basic_challenged{false};
  std::atomic<bool> warned_foreign_realm{false};
  // One token fetch at a time, so concurrent misses of one scope share the token.
  std::mutex auth_mutex;
  mutable std::mutex rate_mutex;
  RateLimitStatus rate;
  mutable std::mutex health_mutex;
  UpstreamHealth health;

  bool hasCredentials() const { return config.username.has_value() && config.password.has_value(); }

  static std::string scopeOf(const RepositoryName& repository) {
    return "repository:" + repository.str() + ":pull";
  }

  // The CA file and verification are this upstream's, also for hosts of its own domain (a token
  // realm); a CDN on another domain is checked against the system's trust store.
  void applyTls(common::HttpRequest& request, const std::string& url) const {
    const auto target = urlHost(url);
    const bool own = target && sameRegistrableDomain(host, *target);
    if (own) {
      request.ca_file = config.ca_file;
    }
    request.verify_tls = !(own && config.insecure_skip_verify);
  }

  UpstreamError transportError(const common::HttpError& error, const std::string& what) const {
    if (error.timeout) {
      return makeError(Kind::Timeout, 0, what + " timed out: " + error.message);
    }
    return makeError(Kind::Unavailable, 0, what + " failed: " + error.message);
  }

  std::optional<long> retryAfter(const common::HttpHeaders& headers) const {
    const auto value = headers.get("retry-after");
    if (!value) {
      return std::nullopt;
    }
    if (auto seconds = parseUnsigned(*value)) {
      return static_cast<long>(*seconds);
    }
    const auto at = parseHttpDate(trim(*value));
    if (!at) {
      return std::nullopt;
    }
    const auto wait = std::chrono::duration_cast<std::chrono::seconds>(*at - clock.now());
    return std::max<long>(0, static_cast<long>(wait.count()));
  }

  // The mapping of an unwanted status to an error kind; `what` names the request for the message.
  UpstreamError statusError(const Answer& answer, const std::string& what) const {
    Kind kind = Kind::BadResponse;
    switch (answer.status) {
    case 401:
      kind = Kind::Unauthorized;
      break;
    case 403:
      kind = Kind::Denied;
      break;
    case 404:
      kind = Kind::NotFound;
      break;
    case 429:
      kind = Kind::TooManyRequests;
      break;
    default:
      if (answer.status >= 500 && answer.status <= 599) {
        kind = Kind::Unavailable;
      }
    }
    std::string message = what + ": upstream answered " + std::to_string(answer.status);
    if (const auto summary = ociErrorSummary(answer.body); !summary.empty()) {
      message += " (" + summary + ")";
    }
    auto error = makeError(kind, answer.status, std::move(message));
    if (answer.status == 429 || answer.status == 503) {
      error.retry_after = retryAfter(answer.headers);
    }
    return error;
  }

  void logRequest(const std::string& method, const std::string& url, int status,
                  std::chrono::steady_clock::time_point started) const {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    if (urlOrigin(url) == origin) {
      log->debug("upstream request: upstream={} method={} path={} status={} ms={}", config.name,
                 method, urlPath(url), status, ms);
    } else {
      log->debug("upstream request: upstream={} method={} url={} status={} ms={}", config.name,
                 method, common::redactUrl(url), status, ms);
    }
  }

  // One attempt of a call, following redirects; `authorization` goes only to the upstream's
  // own origin, never to a redirect target elsewhere (a CDN gets a signed URL instead).
  UpstreamResult<Answer> sendFollowingRedirects(const Call& call,
                                                const std::optional<std::string>& authorization) {
    std::string url = base_url + call.path + (call.query.empty() ? "" : "?" + call.query);
    std::string method = call.method;
    for (int hop = 0;; ++hop) {
      const bool own_origin = urlOrigin(url) == origin;
      common::HttpRequest request;
      request.method = method;
      request.url = url;
      request.headers = call.headers;
      if (authorization && own_origin) {
        request.headers.emplace_back("Authorization", *authorization);
      }
      request.connect_timeout = config.connect_timeout;
      request.timeout = call.blob ? 0ms : config.request_timeout;
      request.stall_timeout = call.blob ? config.stall_timeout : 0ms;
      request.receive_buffer = call.blob ? kBlobReceiveBuffer : 0;
      applyTls(request, url);

      Answer answer;
      answer.from_upstream = own_origin;
      bool streaming = false;
      bool caller_aborted = false;
      bool too_large = false;
      request.on_headers = [&](const common::HttpResponse& response) {
        answer.status = response.status;
        if (response.status != 200 || !call.on_data) {
          return true;
        }
        streaming = true;
        if (call.on_start && !call.on_start(response)) {
          caller_aborted = true;
          return false;
        }
        return true;
      };
      request.on_body = [&](std::string_view piece) {
        if (streaming) {
          if (!call.on_data(piece)) {
            caller_aborted = true;
            return false;
          }
          answer.streamed += piece.size();
          return true;
        }
        const bool success = answer.status >= 200 && answer.status < 300;
        const size_t limit = success ? call.body_limit : kErrorBodyLimit;
        if (answer.body.size() + piece.size() > limit) {
          if (success) {
            too_large = true;
            return false;
          }
          answer.body.append(piece.substr(0, limit - answer.body.size()));
          return true;
        }
        answer.body.append(piece);
        return true;
      };

      const auto started = std::chrono::steady_clock::now();
      auto result = http.perform(request);
      if (!result) {
        const auto& error = result.error();
        log->debug("upstream request failed: upstream={} method={} path={} err={}", config.name,
                   method, own_origin ? urlPath(url) : common::redactUrl(url), error.message);
        const std::string what = method + " " + (own_origin ? urlPath(url) : "redirect target");
        if (caller_aborted) {
          return makeError(Kind::Aborted, answer.status, what + ": aborted by the receiver");
        }
        if (too_large) {
          return makeError(Kind::BadResponse, answer.status,
                           what + ": answer larger than " + std::to_string(call.body_limit) +
                               " bytes");
        }
        return transportError(error, what);
      }
      logRequest(method, url, result->status, started);
      answer.status = result->status;
      answer.headers = std::move(result->headers);

      const auto location = answer.headers.get("location");
      if (!isRedirect(answer.status) || !location) {
        return answer;
      }
      if (hop == kMaxRedirects) {
        return makeError(Kind::BadResponse, answer.status,
                         call.method + " " + call.path + ": more than " +
                             std::to_string(kMaxRedirects) + " redirects");
      }
      const auto next = resolveLocation(url, *location);
      if (!urlOrigin(next)) {
        return makeError(Kind::BadResponse, answer.status,
                         method + " " + urlPath(url) + ": redirect to a non-http(s) location");
      }
      // 303 turns the request into a GET (RFC 9110 section 15.4.4).
      if (answer.status == 303 && method != "HEAD") {
        method = "GET";
      }
      url = next;
    }
  }

  // The Authorization to try first: a cached token for the scope, or Basic once asked for.
  std::optional<std::string> knownAuthorization(const std::string& scope) const {
    if (auto token = tokens.get(scope)) {
      return "Bearer " + *token;
    }
    if (basic_challenged && hasCredentials()) {
      return basicAuthorization(*config.username, *config.password);
    }
    return std::nullopt;
  }

  UpstreamResult<std::string> fetchToken(const AuthChallenge& challenge, const std::string& scope) {
    const auto realm = challenge.param("realm");
    const auto realm_host = urlHost(realm);
    if (!realm_host) {
      return makeError(Kind::BadResponse, 401,
                       "bearer challenge realm is not an http(s) URL: " + common::redactUrl(realm));
    }
    std::vector<std::string> scopes{scope};
    // The upstream may name a scope of its own; ask for it as well so the token satisfies it.
    const auto challenge_scope = challenge.param("scope");
    if (!challenge_scope.empty() && challenge_scope != scope) {
      scopes.push_back(challenge_scope);
    }

    common::HttpRequest request;
    request.url = tokenRequestUrl(realm, challenge.param("service"), scopes);
    request.connect_timeout = config.connect_timeout;
    request.timeout = config.request_timeout;
    applyTls(request, request.url);
    if (hasCredentials()) {
      // Configured credentials go only to a realm of the upstream's own registrable domain.
      if (sameRegistrableDomain(host, *realm_host)) {
        request.headers.emplace_back("Authorization",
                                     basicAuthorization(*config.username, *config.password));
      } else if (!warned_foreign_realm.exchange(true)) {
        log->warn("credentials withheld from a token realm on another domain, asking "
                  "anonymously: upstream={} realm={}",
                  config.name, common::redactUrl(realm));
      }
    }

    const auto started = std::chrono::steady_clock::now();
    auto result = http.perform(request);
    if (!result) {
      log->debug("upstream token request failed: upstream={} realm={} scope={} err={}", config.name,
                 common::redactUrl(realm), scope, result.error().message);
      return transportError(result.error(), "token request");
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    log->debug("upstream token request: upstream={} realm={} scope={} status={} ms={}", config.name,
               common::redactUrl(realm), scope, result->status, ms);
    if (result->status != 200) {
      Answer answer;
      answer.status = result->status;
      answer.headers = std::move(result->headers);
      answer.body = result->body.substr(0, kErrorBodyLimit);
      auto error = statusError(answer, "token request");
      if (error.kind == Kind::NotFound) {
        // A realm that does not exist is the upstream's fault, not a missing image.
        error.kind = Kind::BadResponse;
      }
      return error;
    }
    auto token = parseTokenResponse(result->body, clock.now());
    if (!token) {
      return makeError(Kind::BadResponse, result->status, "token request: " + token.error());
    }
    const std::string value = token->value;
    tokens.put(scope, std::move(*token));
    return "Bearer " + value;
  }

  // Answers a 401's challenge: the Authorization for the retry, or why there is none.
  UpstreamResult<std::string> authenticate(const Answer& refused, const std::string& scope,
                                           const std::optional<std::string>& tried) {
    const auto challenge = selectChallenge(refused.headers.getAll("www-authenticate"));
    if (!challenge) {
      return makeError(Kind::Unauthorized, 401,
                       "upstream answered 401 without a Bearer or Basic challenge");
    }
    if (challenge->isBasic()) {
      if (!hasCredentials()) {
        return makeError(Kind::Unauthorized, 401,
                         "upstream asks for Basic credentials and none are configured");
      }
      basic_challenged = true;
      return basicAuthorization(*config.username, *config.password);
    }

    std::lock_guard lock(auth_mutex);
    if (tried && tried->rfind("Bearer ", 0) == 0) {
      // The upstream refused this token: never offer it again.
      if (auto cached = tokens.get(scope); cached && "Bearer " + *cached == *tried) {
        tokens.drop(scope);
      }
    }
    // Another thread may have fetched a token for this scope while this one waited.
    if (auto cached = tokens.get(scope); cached && "Bearer " + *cached != tried) {
      return "Bearer " + *cached;
    }
    return fetchToken(*challenge, scope);
  }

  // A call with authentication, its outcome counted for /status and /metrics.
  UpstreamResult<Answer> send(const Call& call) {
    auto answer = sendAuthenticated(call);
    recordHealth(call, answer);
    return answer;
  }

  // Whether the upstream is there for its clients: no answer, a timeout, 429 or a 5xx say it is
  // not (the cases where cached content is served stale); any other answer, a 404 included,
  // says it is.
  void recordHealth(const Call& call, const UpstreamResult<Answer>& answer) {
    std::string failure;
    if (!answer) {
      const auto kind = answer.error().kind;
      if (kind == Kind::Timeout || kind == Kind::Unavailable || kind == Kind::TooManyRequests) {
        failure = answer.error().message;
      }
    } else if (answer->status == 429 || (answer->status >= 500 && answer->status <= 599)) {
      failure = statusError(*answer, call.method + " " + call.path).message;
    }
    std::lock_guard lock(health_mutex);
    ++health.requests;
    health.reachable = failure.empty();
    if (!failure.empty()) {
      ++health.errors;
      health.last_error = std::move(failure);
    }
  }

  // A call with authentication: the known Authorization first, then, on a 401 from the
  // upstream itself, the challenge answered and the call retried once.
  UpstreamResult<Answer> sendAuthenticated(const Call& call) {
    const auto tried = knownAuthorization(call.scope);
    auto answer = sendFollowingRedirects(call, tried);
    if (!answer || answer->status != 401 || !answer->from_upstream) {
      return answer;
    }
    auto authorization = authenticate(*answer, call.scope, tried);
    if (!authorization) {
      return authorization.error();
    }
    if (*authorization == tried) {
      // Nothing new to offer (Basic credentials refused): the 401 stands.
      return answer;
    }
    return sendFollowingRedirects(call, *authorization);
  }

  void recordRateLimit(const common::HttpHeaders& headers) {
    const auto limit = headers.get("ratelimit-limit");
    const auto remaining = headers.get("ratelimit-remaining");
    if (!limit && !remaining) {
      // Absent for unlimited accounts and on answers that never reached the registry; keep
      // what was last said.
      return;
    }
    std::lock_guard lock(rate_mutex);
    rate.limit = parseRateLimitHeader(limit);
    rate.remaining = parseRateLimitHeader(remaining);
  }

  Call manifestCall(const std::string& method, const RepositoryName& repository,
                    const Reference& reference, const std::string& accept) const {
    Call call;
    call.method = method;
    call.path = "/v2/" + repository.str() + "/manifests/" + toString(reference);
    call.headers.emplace_back("Accept", accept.empty() ? kDefaultManifestAccept : accept);
    call.scope = scopeOf(repository);
    call.body_limit = kManifestLimit;
    return call;
  }

  UpstreamResult<Answer> sendManifestCall(const Call& call) {
    auto answer = send(call);
    if (answer && answer->status != 401) {
      recordRateLimit(answer->headers);
    }
    return answer;
  }
};

Upstream::Upstream(UpstreamConfig config, common::HttpClient& http, const common::Clock& clock)
    : config_(std::move(config)), impl_(std::make_shared<Impl>(config_, http, clock)) {}

UpstreamResult<ManifestInfo> Upstream::headManifest(const RepositoryName& repository,
                                                    const Reference& reference,
                                                    const std::string& accept) {
  const auto call = impl_->manifestCall("HEAD", repository, reference, accept);
  const std::string what = "HEAD " + call.path;
  auto answer = impl_->sendManifestCall(call);
  if (!answer) {
    return answer.error();
  }
  if (answer->status != 200) {
    return impl_->statusError(*answer, what);
  }

  const auto header_digest = answer->headers.get("docker-content-digest");
  std::optional<Digest> digest;
  if (header_digest) {
    digest = Digest::parse(trim(*header_digest));
    if (!digest) {
      return makeError(Kind::BadResponse, 200, what + ": invalid Docker-Content-Digest");
    }
  }
  if (const auto* by_digest = std::get_if<Digest>(&reference)) {
    if (digest && *digest != *by_digest) {
      return makeError(Kind::BadResponse, 200,
                       what + ": Docker-Content-Digest " + digest->str() + " is not the reference");
    }
    digest = *by_digest;
  } else if (!digest) {
    return makeError(Kind::BadResponse, 200, what + ": no Docker-Content-Digest for a tag");
  }
  const auto length = answer->headers.get("content-length");
  const auto size = length ? parseUnsigned(*length) : std::nullopt;
  if (!size) {
    return makeError(Kind::BadResponse, 200, what + ": no valid Content-Length");
  }
  const auto content_type = answer->headers.get("content-type");
  if (!content_type || mediaTypeOf(*content_type).empty()) {
    return makeError(Kind::BadResponse, 200, what + ": no Content-Type");
  }
  return ManifestInfo{*digest, mediaTypeOf(*content_type), *size};
}

UpstreamResult<ManifestData> Upstream::getManifest(const RepositoryName& repository,
                                                   const Reference& reference,
                                                   const std::string& accept) {
  const auto call = impl_->manifestCall("GET", repository, reference, accept);
  const std::string what = "GET " + call.path;
  auto answer = impl_->sendManifestCall(call);
  if (!answer) {
    return answer.error();
  }
  if (answer->status != 200) {
    return impl_->statusError(*answer, what);
  }

  // The digest is of the exact bytes received (distribution spec, "Pulling manifests"); they
  // are kept as they are, never parsed and written again.
  const auto& body = answer->body;
  Digest digest = Digest::sha256Of(body);
  if (const auto* by_digest = std::get_if<Digest>(&reference)) {
    const auto computed = digestOf(by_digest->algorithm(), body);
    if (!computed || *computed != *by_digest) {
      return makeError(Kind::BadResponse, 200,
                       what + ": body does not match the digest it was asked by");
    }
    digest = *by_digest;
  }
  if (const auto header = answer->headers.get("docker-content-digest")) {
    const auto announced = Digest::parse(trim(*header));
    if (!announced) {
      return makeError(Kind::BadResponse, 200, what + ": invalid Docker-Content-Digest");
    }
    const auto computed = digestOf(announced->algorithm(), body);
    if (!computed || *computed != *announced) {
      return makeError(Kind::BadResponse, 200,
                       what + ": body does not match Docker-Content-Digest " + announced->str());
    }
  }
  const auto content_type = answer->headers.get("content-type");
  if (!content_type || mediaTypeOf(*content_type).empty()) {
    return makeError(Kind::BadResponse, 200, what + ": no Content-Type");
  }
  return ManifestData{std::move(digest), mediaTypeOf(*content_type), std::move(answer->body)};
}

UpstreamResult<BlobInfo> Upstream::headBlob(const RepositoryName& repository,
                                            const Digest& digest) {
  Impl::Call call;
  call.method = "HEAD";
  call.path = "/v2/" + repository.str() + "/blobs/" + digest.str();
  call.scope = Impl::scopeOf(repository);
  const std::string what = "HEAD " + call.path;
  auto answer = impl_->send(call);
  if (!answer) {
    return answer.error();
  }
  if (answer->status != 200) {
    return impl_->statusError(*answer, what);
  }

  const auto length = answer->headers.get("content-length");
  const auto size = length ? parseUnsigned(*length) : std::nullopt;
  if (!size) {
    return makeError(Kind::BadResponse, 200, what + ": no valid Content-Length");
  }
  return BlobInfo{*size};
}

UpstreamResult<std::uint64_t>
Upstream::getBlob(const RepositoryName& repository, const Digest& digest,
                  const std::function<bool(std::optional<std::uint64_t>)>& on_start,
                  const std::function<bool(std::string_view)>& on_data) {
  Impl::Call call;
  call.path = "/v2/" + repository.str() + "/blobs/" + digest.str();
  call.scope = Impl::scopeOf(repository);
  call.blob = true;
  call.on_start = [&on_start](const common::HttpResponse& response) {
    const auto length = response.headers.get("content-length");
    return !on_start || on_start(length ? parseUnsigned(*length) : std::nullopt);
  };
  call.on_data = [&on_data](std::string_view piece) { return !on_data || on_data(piece); };
  const std::string what = "GET " + call.path;
  auto answer = impl_->send(call);
  if (!answer) {
    return answer.error();
  }
  if (answer->status != 200) {
    return impl_->statusError(*answer, what);
  }
  return answer->streamed;
}

UpstreamResult<ListPage> Upstream::tagsList(const RepositoryName& repository,
                                            const std::string& query) {
  Impl::Call call;
  call.path = "/v2/" + repository.str() + "/tags/list";
  call.query = query.rfind('?', 0) == 0 ? query.substr(1) : query;
  call.headers.emplace_back("Accept", "application/json");
  call.scope = Impl::scopeOf(repository);
  const std::string what = "GET " + call.path;
  auto answer = impl_->send(call);
  if (!answer) {
    return answer.error();
  }
  if (answer->status != 200) {
    return impl_->statusError(*answer, what);
  }
  return ListPage{std::move(answer->body), answer->headers.get("content-type").value_or(""),
                  answer->headers.get("link"), std::nullopt};
}

UpstreamResult<ListPage> Upstream::referrers(const RepositoryName& repository, const Digest& digest,
                                             const std::string& query) {
  Impl::Call call;
  call.path = "/v2/" + repository.str() + "/referrers/" + digest.str();
  call.query = query.rfind('?', 0) == 0 ? query.substr(1) : query;
  call.headers.emplace_back("Accept", "application/vnd.oci.image.index.v1+json");
  call.scope = Impl::scopeOf(repository);
  const std::string what = "GET " + call.path;
  auto answer = impl_->send(call);
  if (!answer) {
    return answer.error();
  }
  if (answer->status != 200) {
    return impl_->statusError(*answer, what);
  }
  return ListPage{std::move(answer->body), answer->headers.get("content-type").value_or(""),
                  answer->headers.get("link"), answer->headers.get("oci-filters-applied")};
}

RateLimitStatus Upstream::rateLimit() const {
  std::lock_guard lock(impl_->rate_mutex);
  return impl_->rate;
}

UpstreamHealth Upstream::health() const {
  std::lock_guard lock(impl_->health_mutex);
  return impl_->health;
}

} // namespace proxy
