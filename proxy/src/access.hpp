#pragma once

#include "cidr.hpp"
#include "config.hpp"
#include "htpasswd.hpp"

#include <memory>
#include <optional>
#include <string>

namespace proxy {

/// The outcome of an access check: allowed, or the status and message to refuse with.
struct AccessVerdict {
  bool allowed = true;
  /// 401 asks for credentials (with a Basic challenge), 403 refuses outright.
  int status = 200;
  std::string message;
  /// Whether valid credentials came with the request.
  bool authenticated = false;
};

/// Who may pull and who may read the protected endpoints. Docker daemons never send
/// credentials to a mirror, so anonymous pulls are allowed from listed networks; everyone
/// else needs a user from the htpasswd file.
class AccessControl {
public:
  explicit AccessControl(const AuthConfig& config);

  /// The client's address: the socket peer, or the last X-Forwarded-For hop when the peer is
  /// a trusted proxy.
  std::string clientAddress(const std::string& peer,
                            const std::optional<std::string>& forwarded_for) const;

  /// A pull from `client` through `upstream`.
  AccessVerdict checkPull(const std::string& client,
                          const std::optional<std::string>& authorization,
                          const UpstreamConfig* upstream);

  /// /metrics: admin credentials, or a client in metrics_networks.
  AccessVerdict checkMetrics(const std::string& client,
                             const std::optional<std::string>& authorization);

  /// Admin endpoints: admin credentials only.
  AccessVerdict checkAdmin(const std::optional<std::string>& authorization);

private:
  bool validPullUser(const std::optional<std::string>& authorization);

  std::vector<Network> anonymous_networks_;
  std::vector<Network> trusted_proxies_;
  std::vector<Network> metrics_networks_;
  std::unique_ptr<HtpasswdFile> pull_users_;
  std::unique_ptr<HtpasswdFile> admin_users_;
};

} // namespace proxy
