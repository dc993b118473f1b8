#pragma once

#include "acme_messages.hpp"
#include "common/http_client.hpp"
#include "jws.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace certmgr {

struct AcmeClientOptions {
  std::string directory_url;
  /// PEM bundle to verify the server with; empty: the system's trust store.
  std::string ca_bundle;
  /// How often a rejected nonce (badNonce, RFC 8555 §6.5) is retried with a fresh one.
  int bad_nonce_retries = 10;
  /// Poll interval when the server sends no Retry-After.
  std::chrono::milliseconds poll_interval = std::chrono::seconds(1);
  /// The longest Retry-After honoured while polling or on 503 (longer waits end the attempt).
  std::chrono::milliseconds max_retry_after = std::chrono::minutes(5);
  /// How to wait; tests pass one that does not sleep.
  std::function<void(std::chrono::milliseconds)> sleep;
};

/// The server's answer to one request.
struct AcmeResponse {
  int status = 0;
  common::HttpHeaders headers;
  std::string body;
  /// The Location header (RFC 8555: the URL of a created account or order).
  std::string location() const { return headers.get("Location").value_or(""); }
};

/// An order and its URL.
struct LocatedOrder {
  AcmeOrder order;
  std::string url;
};

/// Renewal information and when to ask again (RFC 9773 §4.3: Retry-After).
struct RenewalInfo {
  RenewalWindow window;
  std::chrono::seconds retry_after{6 * 3600};
};

/// The RFC 8555 protocol on libcurl: directory, nonces, JWS-signed requests with badNonce
/// retries, account, orders, authorizations, challenges, finalize and download, and RFC 9773
/// renewal information. Knows nothing of how challenges are answered. Throws AcmeError.
class AcmeClient {
public:
  AcmeClient(common::HttpClient& http, AcmeClientOptions options, const AccountKey& key);

  /// Fetches the directory on first use.
  const AcmeDirectory& directory();

  /// Registers the account, or finds it when the key is known (RFC 8555 §7.3), and remembers
  /// its URL for later requests. `eab_mac_key` is the raw (decoded) HMAC key, empty for none.
  std::string ensureAccount(const std::string& email, const std::string& eab_kid,
                            const std::string& eab_mac_key);

  LocatedOrder newOrder(const Identifiers& identifiers, const std::optional<std::string>& replaces);
  AcmeOrder getOrder(const std::string& url);
  AcmeAuthorization getAuthorization(const std::string& url);
  /// Tells the server the challenge is ready to be validated (RFC 8555 §7.5.1).
  void respondToChallenge(const std::string& url);
  /// Waits until the authorization left "pending", at most until `deadline`.
  AcmeAuthorization waitForAuthorization(const std::string& url,
                                         std::chrono::steady_clock::time_point deadline);
  /// Waits until the order is no longer in one of `transient` states.
  AcmeOrder waitForOrder(const std::string& url, const std::vector<std::string>& transient,
                         std::chrono::steady_clock::time_point deadline);
  AcmeOrder finalize(const std::string& finalize_url, const std::string& csr_der);
  /// The PEM chain, leaf first (RFC 8555 §7.4.2).
  std::string downloadCertificate(const std::string& url);

  /// Renewal information for an RFC 9773 certificate identifier; nothing when the directory
  /// offers none.
  std::optional<RenewalInfo> renewalInfo(const std::string& cert_id);

  /// Parses Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
  static std::optional<std::chrono::seconds> parseRetryAfter(const std::string& value);

private:
  AcmeResponse get(const std::string& url);
  AcmeResponse post(const std::string& url, const std::string& payload, bool with_jwk = false);
  AcmeResponse perform(common::HttpRequest request);
  std::string takeNonce();
  void keepNonce(const AcmeResponse& response);
  void expect(const AcmeResponse& response, std::initializer_list<int> statuses,
              const std::string& what) const;
  std::chrono::milliseconds pollDelay(const AcmeResponse& response) const;

  common::HttpClient& http_;
  AcmeClientOptions options_;
  const AccountKey& key_;
  std::optional<AcmeDirectory> directory_;
  std::vector<std::string> nonces_;
  std::string account_url_;
};

} // namespace certmgr
