#pragma once

#include "common/http_client.hpp"
#include "config.hpp"
#include "credentials.hpp"
#include "wait.hpp"
#include "warm_up.hpp"

#include <optional>
#include <string>
#include <vector>

namespace admin {

/// What the proxy's /status says, as far as admin-setup needs it.
struct ProxyStatus {
  bool ready = false;
  std::string version;
  /// The upstream registries clients may name ("docker.io", "ghcr.io").
  std::vector<std::string> upstreams;
};

/// Parses the /status document. The error says what is missing.
common::Result<ProxyStatus, std::string> parseStatus(const std::string& body);

/// After step 2: waits (bounded) until the proxy accepts the credentials just written: the pull
/// user on /v2/ and the admin user on /metrics. The proxy re-reads the files when they change,
/// which takes a moment. Throws StepError (69) when it keeps refusing them.
void checkCredentials(common::HttpClient& http, const Config& config,
                      const CredentialsResult& credentials, const Pacer& pacer,
                      std::chrono::milliseconds timeout);

/// Step 4: the whole path, end to end: a manifest and a blob of `image` through the proxy over
/// HTTP and, when TLS is on, over HTTPS verified with the published CA; digests checked.
/// Without an image only /v2/ is checked. Throws StepError on the first failure.
void verifyEndToEnd(common::HttpClient& http, const Config& config,
                    const CredentialsResult& credentials, const std::optional<WarmedImage>& image);

/// GET /status (with the admin credentials when there are any). Nothing when it fails; why is
/// logged.
std::optional<ProxyStatus> fetchStatus(common::HttpClient& http, const Config& config,
                                       const CredentialsResult& credentials);

} // namespace admin
