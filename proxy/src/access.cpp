#include "access.hpp"

#include "common/logging.hpp"

namespace proxy {
namespace {

std::vector<Network> parseAll(const std::vector<std::string>& texts) {
  std::vector<Network> out;
  for (const auto& text : texts) {
    if (auto network = Network::parse(text)) {
      out.push_back(*network);
    }
  }
  return out;
}

AccessVerdict refuse(int status, std::string message) {
  return AccessVerdict{false, status, std::move(message), false};
}

bool checkUser(HtpasswdFile* file, const std::optional<std::string>& authorization) {
  if (!file || !authorization) {
    return false;
  }
  const auto credentials = parseBasicAuthorization(*authorization);
  return credentials && file->verify(credentials->first, credentials->second);
}

} // namespace

AccessControl::AccessControl(const AuthConfig& config)
    : anonymous_networks_(parseAll(config.anonymous_networks)),
      trusted_proxies_(parseAll(config.trusted_proxies)),
      metrics_networks_(parseAll(config.metrics_networks)) {
  if (!config.htpasswd.empty()) {
    pull_users_ = std::make_unique<HtpasswdFile>(config.htpasswd);
  }
  if (!config.admin_htpasswd.empty()) {
    admin_users_ = std::make_unique<HtpasswdFile>(config.admin_htpasswd);
  }
}

std::string AccessControl::clientAddress(const std::string& peer,
                                         const std::optional<std::string>& forwarded_for) const {
  if (!forwarded_for || !inAny(trusted_proxies_, peer)) {
    return peer;
  }
  // The proxy in front appends the address it saw last; earlier entries are the client's word.
  auto hop = forwarded_for->substr(forwarded_for->rfind(',') + 1);
  hop.erase(0, hop.find_first_not_of(' '));
  hop.erase(hop.find_last_not_of(' ') + 1);
  return parseAddress(hop) ? hop : peer;
}

bool AccessControl::validPullUser(const std::optional<std::string>& authorization) {
  return checkUser(pull_users_.get(), authorization);
}

AccessVerdict AccessControl::checkPull(const std::string& client,
                                       const std::optional<std::string>& authorization,
                                       const UpstreamConfig* upstream) {
  if (authorization && pull_users_) {
    if (validPullUser(authorization)) {
      return AccessVerdict{true, 200, "", true};
    }
    return refuse(401, "wrong user name or password");
  }
  if (!inAny(anonymous_networks_, client)) {
    if (pull_users_) {
      return refuse(401, "authentication required: anonymous pulls are allowed only from "
                         "auth.anonymous_networks");
    }
    return refuse(403, "pulls from " + client +
                           " are not allowed: anonymous pulls are limited to "
                           "auth.anonymous_networks");
  }
  if (upstream && !upstream->anonymous_pull) {
    if (pull_users_) {
      return refuse(401, "authentication required: " + upstream->name +
                             " is pulled with the proxy's credentials");
    }
    return refuse(403, upstream->name +
                           " is pulled with the proxy's credentials and anonymous_pull is off");
  }
  return AccessVerdict{};
}

AccessVerdict AccessControl::checkMetrics(const std::string& client,
                                          const std::optional<std::string>& authorization) {
  if (inAny(metrics_networks_, client)) {
    return AccessVerdict{};
  }
  return checkAdmin(authorization);
}

AccessVerdict AccessControl::checkAdmin(const std::optional<std::string>& authorization) {
  if (!admin_users_) {
    return refuse(401, "no admin users: auth.admin_htpasswd is not configured");
  }
  if (!admin_users_->loaded()) {
    common::logger("auth")->warn("protected endpoint refused, admin users not provisioned yet: "
                                 "file={}",
                                 admin_users_->path());
    return refuse(401, "admin users are not provisioned yet");
  }
  if (checkUser(admin_users_.get(), authorization)) {
    return AccessVerdict{true, 200, "", true};
  }
  return refuse(401, "admin credentials required");
}

} // namespace proxy
