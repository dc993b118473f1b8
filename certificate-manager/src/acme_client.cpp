#include "acme_client.hpp"

#include "common/logging.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <algorithm>
#include <ctime>
#include <sstream>
#include <thread>

namespace certmgr {
namespace {

constexpr const char* kJoseJson = "application/jose+json";

bool isProblem(const AcmeResponse& response, const std::string& type) {
  return response.status >= 400 && parseProblem(response.body, response.status).type == type;
}

} // namespace

AcmeClient::AcmeClient(common::HttpClient& http, AcmeClientOptions options, const AccountKey& key)
    : http_(http), options_(std::move(options)), key_(key) {
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  }
}

std::optional<std::chrono::seconds> AcmeClient::parseRetryAfter(const std::string& value) {
  if (!value.empty() && std::all_of(value.begin(), value.end(), ::isdigit)) {
    try {
      return std::chrono::seconds(std::stoll(value));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  std::tm tm{};
  const char* end = ::strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') {
    return std::nullopt;
  }
  const auto at = std::chrono::system_clock::from_time_t(::timegm(&tm));
  const auto left =
      std::chrono::duration_cast<std::chrono::seconds>(at - std::chrono::system_clock::now());
  return std::max(left, std::chrono::seconds(0));
}

AcmeResponse AcmeClient::perform(common::HttpRequest request) {
  request.ca_file = options_.ca_bundle;
  request.timeout = std::chrono::seconds(60);
  request.headers.emplace_back("User-Agent", "docker-cache-proxy-certificate-manager/0.1");
  auto result = http_.perform(request);
  if (!result.ok()) {
    throw AcmeError("acme server unreachable: url=" + common::redactUrl(request.url) +
                    " err=" + result.error().message);
  }
  AcmeResponse response;
  response.status = result->status;
  response.headers = std::move(result->headers);
  response.body = std::move(result->body);
  return response;
}

AcmeResponse AcmeClient::get(const std::string& url) {
  common::HttpRequest request;
  request.url = url;
  return perform(std::move(request));
}

const AcmeDirectory& AcmeClient::directory() {
  if (!directory_) {
    const auto response = get(options_.directory_url);
    expect(response, {200}, "directory " + common::redactUrl(options_.directory_url));
    directory_ = parseDirectory(response.body);
  }
  return *directory_;
}

void AcmeClient::keepNonce(const AcmeResponse& response) {
  if (const auto nonce = response.headers.get("Replay-Nonce")) {
    nonces_.push_back(*nonce);
  }
}

std::string AcmeClient::takeNonce() {
  if (nonces_.empty()) {
    common::HttpRequest request;
    request.method = "HEAD";
    request.url = directory().new_nonce;
    const auto response = perform(std::move(request));
    keepNonce(response);
    if (nonces_.empty()) {
      throw AcmeError("acme server sent no Replay-Nonce: status=" +
                      std::to_string(response.status));
    }
  }
  std::string nonce = std::move(nonces_.back());
  nonces_.pop_back();
  return nonce;
}

AcmeResponse AcmeClient::post(const std::string& url, const std::string& payload, bool with_jwk) {
  auto log = common::logger("acme");
  for (int attempt = 0;; ++attempt) {
    Poco::JSON::Object header(Poco::JSON_PRESERVE_KEY_ORDER);
    header.set("alg", "ES256");
    if (with_jwk) {
      Poco::JSON::Parser parser;
      header.set("jwk", parser.parse(key_.jwk()).extract<Poco::JSON::Object::Ptr>());
    } else {
      header.set("kid", account_url_);
    }
    header.set("nonce", takeNonce());
    header.set("url", url);
    std::ostringstream header_json;
    header.stringify(header_json);

    common::HttpRequest request;
    request.method = "POST";
    request.url = url;
    request.headers.emplace_back("Content-Type", kJoseJson);
    request.body = signJws(key_, header_json.str(), payload);
    auto response = perform(std::move(request));
    keepNonce(response);

    // RFC 8555 §6.5: a rejected nonce is retried with the fresh one the error carried.
    if (isProblem(response, "urn:ietf:params:acme:error:badNonce") &&
        attempt < options_.bad_nonce_retries) {
      log->debug("nonce rejected, retrying: url={} attempt={}", common::redactUrl(url),
                 attempt + 1);
      continue;
    }
    // A busy server says when to come back; a short wait is worth it, a long one is not.
    if (response.status == 503 && attempt < 3) {
      const auto after = parseRetryAfter(response.headers.get("Retry-After").value_or(""));
      if (after && *after <= options_.max_retry_after) {
        log->info("acme server busy, retrying: url={} retry_after_s={}", common::redactUrl(url),
                  after->count());
        options_.sleep(*after);
        continue;
      }
    }
    return response;
  }
}

void AcmeClient::expect(const AcmeResponse& response, std::initializer_list<int> statuses,
                        const std::string& what) const {
  if (std::find(statuses.begin(), statuses.end(), response.status) != statuses.end()) {
    return;
  }
  std::string message =
      what + " failed: " + parseProblem(response.body, response.status).describe();
  if (response.status == 429 || response.status == 503) {
    if (const auto after = response.headers.get("Retry-After")) {
      message += " (retry after " + *after + ")";
    }
  }
  throw AcmeError(message);
}

std::string AcmeClient::ensureAccount(const std::string& email, const std::string& eab_kid,
                                      const std::string& eab_mac_key) {
  const auto& dir = directory();
  Poco::JSON::Object payload(Poco::JSON_PRESERVE_KEY_ORDER);
  payload.set("termsOfServiceAgreed", true);
  if (!email.empty()) {
    Poco::JSON::Array::Ptr contact = new Poco::JSON::Array();
    contact->add("mailto:" + email);
    payload.set("contact", contact);
  }
  if (!eab_kid.empty()) {
    Poco::JSON::Parser parser;
    payload.set("externalAccountBinding",
                parser.parse(externalAccountBinding(key_, eab_kid, eab_mac_key, dir.new_account))
                    .extract<Poco::JSON::Object::Ptr>());
  } else if (dir.external_account_required) {
    throw AcmeError("the acme server requires external account binding: set "
                    "CERTMGR_ACME_EAB_KID and CERTMGR_ACME_EAB_HMAC_KEY");
  }
  std::ostringstream body;
  payload.stringify(body);

  const auto response = post(dir.new_account, body.str(), true);
  expect(response, {200, 201}, "account registration");
  account_url_ = response.location();
  if (account_url_.empty()) {
    throw AcmeError("account registration answered without a Location header");
  }
  common::logger("acme")->info("acme account {}: account={}",
                               response.status == 201 ? "created" : "found", account_url_);
  return account_url_;
}

LocatedOrder AcmeClient::newOrder(const Identifiers& identifiers,
                                  const std::optional<std::string>& replaces) {
  const auto response = post(directory().new_order, newOrderPayload(identifiers, replaces));
  expect(response, {201}, "new order");
  LocatedOrder located{parseOrder(response.body), response.location()};
  if (located.url.empty()) {
    throw AcmeError("new order answered without a Location header");
  }
  return located;
}

AcmeOrder AcmeClient::getOrder(const std::string& url) {
  const auto response = post(url, "");
  expect(response, {200}, "order " + url);
  return parseOrder(response.body);
}

AcmeAuthorization AcmeClient::getAuthorization(const std::string& url) {
  const auto response = post(url, "");
  expect(response, {200}, "authorization " + url);
  return parseAuthorization(response.body);
}

void AcmeClient::respondToChallenge(const std::string& url) {
  const auto response = post(url, "{}");
  expect(response, {200}, "challenge response " + url);
}

std::chrono::milliseconds AcmeClient::pollDelay(const AcmeResponse& response) const {
  const auto after = parseRetryAfter(response.headers.get("Retry-After").value_or(""));
  if (!after) {
    return options_.poll_interval;
  }
  return std::min<std::chrono::milliseconds>(*after, options_.max_retry_after);
}

AcmeAuthorization AcmeClient::waitForAuthorization(const std::string& url,
                                                   std::chrono::steady_clock::time_point deadline) {
  while (true) {
    const auto response = post(url, "");
    expect(response, {200}, "authorization " + url);
    auto authz = parseAuthorization(response.body);
    if (authz.status != "pending") {
      return authz;
    }
    if (std::chrono::steady_clock::now() + pollDelay(response) > deadline) {
      throw AcmeError("authorization still pending at the deadline: identifier=" +
                      authz.identifier.value);
    }
    options_.sleep(pollDelay(response));
  }
}

AcmeOrder AcmeClient::waitForOrder(const std::string& url,
                                   const std::vector<std::string>& transient,
                                   std::chrono::steady_clock::time_point deadline) {
  while (true) {
    const auto response = post(url, "");
    expect(response, {200}, "order " + url);
    auto order = parseOrder(response.body);
    if (std::find(transient.begin(), transient.end(), order.status) == transient.end()) {
      return order;
    }
    if (std::chrono::steady_clock::now() + pollDelay(response) > deadline) {
      throw AcmeError("order still " + order.status + " at the deadline: order=" + url);
    }
    options_.sleep(pollDelay(response));
  }
}

AcmeOrder AcmeClient::finalize(const std::string& finalize_url, const std::string& csr_der) {
  Poco::JSON::Object payload;
  payload.set("csr", base64url(csr_der));
  std::ostringstream body;
  payload.stringify(body);
  const auto response = post(finalize_url, body.str());
  expect(response, {200}, "finalize");
  return parseOrder(response.body);
}

std::string AcmeClient::downloadCertificate(const std::string& url) {
  const auto response = post(url, "");
  expect(response, {200}, "certificate download");
  return response.body;
}

std::optional<RenewalInfo> AcmeClient::renewalInfo(const std::string& cert_id) {
  const auto& base = directory().renewal_info;
  if (base.empty()) {
    return std::nullopt;
  }
  const auto response = get(base + (base.back() == '/' ? "" : "/") + cert_id);
  expect(response, {200}, "renewal info");
  RenewalInfo info{parseRenewalInfo(response.body)};
  if (const auto after = parseRetryAfter(response.headers.get("Retry-After").value_or(""))) {
    info.retry_after = *after;
  }
  return info;
}

} // namespace certmgr
