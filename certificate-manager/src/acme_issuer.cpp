#include "acme_issuer.hpp"

#include "common/logging.hpp"
#include "time_format.hpp"

namespace certmgr {
namespace {

// Answers go away when the order is done, whatever way it ends.
class CleanupGuard {
public:
  CleanupGuard(ChallengeSolver& solver, const std::vector<ChallengeTask>& tasks)
      : solver_(solver), tasks_(tasks) {}
  ~CleanupGuard() { solver_.cleanup(tasks_); }
  CleanupGuard(const CleanupGuard&) = delete;
  CleanupGuard& operator=(const CleanupGuard&) = delete;

private:
  ChallengeSolver& solver_;
  const std::vector<ChallengeTask>& tasks_;
};

} // namespace

std::string makeCsrDer(EVP_PKEY* key, const Identifiers& identifiers) {
  X509ReqPtr request(X509_REQ_new());
  if (!request || X509_REQ_set_version(request.get(), 0) != 1 ||
      X509_REQ_set_pubkey(request.get(), key) != 1) {
    throwOpensslError("cannot create certificate request");
  }
  // The CN is optional for ACME CAs; set it to the first DNS name when it fits (64 chars).
  if (!identifiers.dns_names.empty() && identifiers.dns_names.front().size() <= 64) {
    const auto& cn = identifiers.dns_names.front();
    if (X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(request.get()), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                   0) != 1) {
      throwOpensslError("cannot set request subject CN=" + cn);
    }
  }

  std::string san;
  for (const auto& name : identifiers.dns_names) {
    san += (san.empty() ? "DNS:" : ",DNS:") + name;
  }
  for (const auto& ip : identifiers.ip_addresses) {
    san += (san.empty() ? "IP:" : ",IP:") + ip;
  }
  X509ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str()));
  if (!ext) {
    throwOpensslError("cannot build subjectAltName " + san);
  }
  STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
  if (extensions == nullptr || sk_X509_EXTENSION_push(extensions, ext.get()) == 0) {
    sk_X509_EXTENSION_free(extensions);
    throwOpensslError("cannot collect request extensions");
  }
  const int added = X509_REQ_add_extensions(request.get(), extensions);
  sk_X509_EXTENSION_free(extensions); // the stack only; `ext` still owns the extension
  if (added != 1) {
    throwOpensslError("cannot add request extensions");
  }
  if (X509_REQ_sign(request.get(), key, EVP_sha256()) <= 0) {
    throwOpensslError("cannot sign certificate request");
  }
  return requestDer(request.get());
}

AcmeIssuer::AcmeIssuer(const AcmeConfig& config, std::unique_ptr<ChallengeSolver> solver,
                       const common::Clock& clock, AcmeClientOptions client_options)
    : config_(config), solver_(std::move(solver)), clock_(clock),
      client_options_(std::move(client_options)) {
  client_options_.directory_url = config_.directory_url;
  client_options_.ca_bundle = config_.ca_bundle;
}

AcmeClient& AcmeIssuer::client() {
  if (!client_) {
    account_key_ = std::make_unique<AccountKey>(AccountKey::loadOrCreate(config_.account_key_path));
    client_ = std::make_unique<AcmeClient>(http_, client_options_, *account_key_);
  }
  return *client_;
}

IssuedPair AcmeIssuer::issue(const Identifiers& identifiers, KeyType key_type,
                             const std::optional<std::string>& replaces) {
  try {
    return issueOnce(identifiers, key_type, replaces);
  } catch (...) {
    // Start the next attempt from scratch: a restarted CA may have forgotten the account, and
    // a stale directory or nonce must not fail it again.
    account_ready_ = false;
    client_.reset();
    throw;
  }
}

IssuedPair AcmeIssuer::issueOnce(const Identifiers& identifiers, KeyType key_type,
                                 const std::optional<std::string>& replaces) {
  auto log = common::logger("acme");
  auto& acme = client();
  const auto deadline = std::chrono::steady_clock::now() + config_.order_timeout;
  log->info("acme order starting: directory={} names={} challenge={}",
            common::redactUrl(config_.directory_url), identifiers.describe(), solver_->type());

  if (!account_ready_) {
    std::string mac_key;
    if (!config_.eab_kid.empty()) {
      mac_key = base64urlDecode(config_.eab_hmac_key).value_or("");
    }
    acme.ensureAccount(config_.email, config_.eab_kid, mac_key);
    account_ready_ = true;
  }

  // RFC 9773 §5: name the certificate being replaced, only where the CA knows the field.
  std::optional<std::string> replacing;
  if (replaces && !acme.directory().renewal_info.empty()) {
    replacing = replaces;
  }
  auto [order, order_url] = acme.newOrder(identifiers, replacing);
  log->info("acme order created: order={} status={} authorizations={}", order_url, order.status,
            order.authorizations.size());

  std::vector<ChallengeTask> tasks;
  std::vector<std::string> challenge_urls;
  std::vector<std::string> pending_authorizations;
  for (const auto& url : order.authorizations) {
    const auto authz = acme.getAuthorization(url);
    if (authz.status == "valid") {
      log->info("authorization already valid: identifier={}", authz.identifier.value);
      continue;
    }
    if (authz.status != "pending") {
      throw AcmeError("authorization is " + authz.status +
                      ": identifier=" + authz.identifier.value);
    }
    const auto challenge =
        std::find_if(authz.challenges.begin(), authz.challenges.end(),
                     [&](const AcmeChallenge& c) { return c.type == solver_->type(); });
    if (challenge == authz.challenges.end()) {
      throw AcmeError("the ca offers no " + solver_->type() +
                      " challenge for identifier=" + authz.identifier.value +
                      (authz.wildcard ? " (wildcard names need dns-01)" : ""));
    }
    tasks.push_back(ChallengeTask{authz.identifier.value, challenge->token,
                                  keyAuthorization(challenge->token, *account_key_)});
    challenge_urls.push_back(challenge->url);
    pending_authorizations.push_back(url);
  }

  if (!tasks.empty()) {
    CleanupGuard cleanup(*solver_, tasks);
    solver_->present(tasks);
    for (const auto& url : challenge_urls) {
      acme.respondToChallenge(url);
    }
    for (const auto& url : pending_authorizations) {
      const auto authz = acme.waitForAuthorization(url, deadline);
      if (authz.status != "valid") {
        std::string why = "authorization " + authz.status;
        for (const auto& c : authz.challenges) {
          if (c.error) {
            why += ": " + c.error->describe();
          }
        }
        throw AcmeError(why + " identifier=" + authz.identifier.value);
      }
      log->info("authorization valid: identifier={}", authz.identifier.value);
    }
  }

  order = acme.waitForOrder(order_url, {"pending"}, deadline);
  if (order.status != "ready" && order.status != "valid") {
    throw AcmeError("order is " + order.status + " instead of ready" +
                    (order.error ? ": " + order.error->describe() : ""));
  }

  auto key = generateKey(key_type);
  if (order.status == "ready") {
    order = acme.finalize(order.finalize, makeCsrDer(key.get(), identifiers));
    if (order.status == "processing") {
      order = acme.waitForOrder(order_url, {"processing"}, deadline);
    }
  }
  if (order.status != "valid" || order.certificate.empty()) {
    throw AcmeError("order is " + order.status + " after finalize" +
                    (order.error ? ": " + order.error->describe() : ""));
  }
  std::string chain = acme.downloadCertificate(order.certificate);
  log->info("acme certificate downloaded: order={} bytes={}", order_url, chain.size());
  return IssuedPair{privateKeyPem(key.get()), std::move(chain)};
}

std::optional<RenewalWindow> AcmeIssuer::renewalWindow(const CertificateInfo& info) {
  if (!info.ari_cert_id) {
    return std::nullopt;
  }
  const auto now = clock_.now();
  const auto cached = windows_.find(*info.ari_cert_id);
  if (cached != windows_.end() && now < cached->second.fetch_after) {
    return cached->second.window;
  }
  try {
    const auto fetched = client().renewalInfo(*info.ari_cert_id);
    if (!fetched) {
      return std::nullopt;
    }
    windows_[*info.ari_cert_id] = CachedWindow{fetched->window, now + fetched->retry_after};
    common::logger("acme")->info("renewal info: cert_id={} window_start={} window_end={}",
                                 *info.ari_cert_id, formatTime(fetched->window.start),
                                 formatTime(fetched->window.end));
    return fetched->window;
  } catch (const std::exception& e) {
    // RFC 9773 §4.3.3: without an answer, keep the last window or fall back to the lifetime rule.
    common::logger("acme")->warn("renewal info unavailable, using the last known window or the "
                                 "2/3 rule: err={}",
                                 e.what());
    if (cached != windows_.end()) {
      return cached->second.window;
    }
    return std::nullopt;
  }
}

} // namespace certmgr
