#include "verify.hpp"

#include "common/logging.hpp"
#include "step_error.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <filesystem>

namespace admin {
namespace {

Endpoint httpEndpoint(const Config& config, const CredentialsResult& credentials) {
  return Endpoint{config.proxy_url, "", credentials.pull_user};
}

Endpoint httpsEndpoint(const Config& config, const CredentialsResult& credentials) {
  std::error_code ec;
  const bool have_ca = std::filesystem::exists(config.ca_file, ec);
  return Endpoint{config.tls_url, have_ca ? config.ca_file.string() : "", credentials.pull_user};
}

void verifyOver(const RegistryClient& client, const std::optional<WarmedImage>& image) {
  auto log = common::logger("verify");
  const auto& base = client.endpoint().base_url;
  auto api = client.get("/v2/", client.endpoint().credential);
  if (!api) {
    throw StepError("end-to-end check failed: " + api.error().message, exitCodeFor(api.error()));
  }
  if (api->status != 200) {
    throw StepError("end-to-end check failed: GET " + base + "/v2/ answered " +
                        std::to_string(api->status) + " " + errorSummary(api->body),
                    common::kExitUnavailable);
  }
  if (!image) {
    log->info("registry api answers, no image to check: url={}", base);
    return;
  }
  const auto manifest = client.manifest(image->image, image->manifest_digest);
  if (!manifest) {
    throw StepError("end-to-end check failed: " + manifest.error().message,
                    exitCodeFor(manifest.error()));
  }
  const auto blob = client.blob(image->image, image->blob_digest, image->blob_size);
  if (!blob) {
    throw StepError("end-to-end check failed: " + blob.error().message, exitCodeFor(blob.error()));
  }
  log->info("end-to-end check passed: url={} image={} manifest={} blob={} bytes={}", base,
            image->image.str(), image->manifest_digest, image->blob_digest, blob.value());
}

} // namespace

common::Result<ProxyStatus, std::string> parseStatus(const std::string& body) {
  Poco::JSON::Object::Ptr root;
  try {
    Poco::JSON::Parser parser;
    root = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
  } catch (const std::exception& e) {
    return std::string("not a JSON object: ") + e.what();
  }
  if (!root) {
    return std::string("not a JSON object");
  }
  ProxyStatus status;
  try {
    status.ready =
        root->has("ready") && root->get("ready").isBoolean() && root->getValue<bool>("ready");
    status.version = root->optValue<std::string>("version", "");
    if (const auto upstreams = root->getArray("upstreams")) {
      for (unsigned i = 0; i < upstreams->size(); ++i) {
        const auto entry = upstreams->getObject(i);
        const auto name = entry ? entry->optValue<std::string>("name", "") : "";
        if (!name.empty()) {
          status.upstreams.push_back(name);
        }
      }
    }
  } catch (const Poco::Exception& e) {
    return "unexpected field type: " + e.displayText();
  }
  return status;
}

std::optional<ProxyStatus> fetchStatus(common::HttpClient& http, const Config& config,
                                       const CredentialsResult& credentials) {
  auto log = common::logger("verify");
  const RegistryClient client(http, httpEndpoint(config, credentials));
  const auto answer = client.get("/status", credentials.admin);
  if (!answer) {
    log->warn("proxy status unavailable: err={}", answer.error().message);
    return std::nullopt;
  }
  if (answer->status != 200) {
    log->warn("proxy status unavailable: url={}/status status={}", config.proxy_url,
              answer->status);
    return std::nullopt;
  }
  auto status = parseStatus(answer->body);
  if (!status) {
    log->warn("proxy status unreadable: url={}/status err={}", config.proxy_url, status.error());
    return std::nullopt;
  }
  return status.value();
}

void checkCredentials(common::HttpClient& http, const Config& config,
                      const CredentialsResult& credentials, const Pacer& pacer,
                      std::chrono::milliseconds timeout) {
  auto log = common::logger("verify");
  const RegistryClient client(http, httpEndpoint(config, credentials));
  struct Check {
    const char* what;
    const char* path;
    std::optional<Credential> credential;
  };
  std::vector<Check> checks;
  if (credentials.pull_user) {
    checks.push_back({"pull user", "/v2/", credentials.pull_user});
  }
  if (credentials.admin) {
    checks.push_back({"admin user", "/metrics", credentials.admin});
  }
  for (const auto& check : checks) {
    const std::string what = std::string("the proxy to accept the ") + check.what;
    const auto failure = pollUntil(pacer, timeout, what, [&]() -> std::optional<std::string> {
      const auto answer = client.get(check.path, check.credential);
      if (!answer) {
        return answer.error().message;
      }
      if (answer->status != 200) {
        return "GET " + std::string(check.path) + " answered " + std::to_string(answer->status);
      }
      return std::nullopt;
    });
    if (failure) {
      throw StepError("the proxy does not accept the " + std::string(check.what) + " \"" +
                          check.credential->user + "\" that was just written: " + *failure +
                          " (does the proxy read the same file? check DCP_AUTH_HTPASSWD and "
                          "DCP_ADMIN_HTPASSWD of both containers)",
                      common::kExitUnavailable);
    }
    log->info("credentials accepted: user={} path={}", check.credential->user, check.path);
  }
  if (credentials.admin) {
    // The point of the admin user: without it, the protected endpoints stay closed.
    const auto anonymous = client.get("/metrics", std::nullopt);
    if (anonymous && anonymous->status == 200) {
      log->warn("metrics answer without credentials from here: url={}/metrics (an address in "
                "DCP_METRICS_NETWORKS?)",
                config.proxy_url);
    }
  }
}

void verifyEndToEnd(common::HttpClient& http, const Config& config,
                    const CredentialsResult& credentials, const std::optional<WarmedImage>& image) {
  verifyOver(RegistryClient(http, httpEndpoint(config, credentials)), image);
  if (config.tlsEnabled()) {
    verifyOver(RegistryClient(http, httpsEndpoint(config, credentials)), image);
  }
}

} // namespace admin
