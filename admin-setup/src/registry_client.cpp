#include "registry_client.hpp"

#include "common/digest_hasher.hpp"
#include "common/manifest.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <openssl/evp.h>

namespace admin {
namespace {

// distribution refuses manifests over 4 MiB; so do we.
constexpr std::size_t kMaxManifestSize = 4 << 20;
constexpr std::size_t kMaxErrorBody = 4096;

std::string percentEncodeQuery(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
    }
  }
  return out;
}

std::string describeStatus(const std::string& what, const common::HttpResponse& response) {
  std::string message = what + " answered " + std::to_string(response.status);
  const auto summary = errorSummary(response.body);
  return summary.empty() ? message : message + ": " + summary;
}

// "sha512" of "sha512:<hex>"; the caller validated the digest with isSupportedDigest.
std::string_view algorithmOf(std::string_view digest) {
  return digest.substr(0, digest.find(':'));
}

} // namespace

std::string basicAuthorization(const Credential& credential) {
  const std::string plain = credential.user + ":" + credential.password;
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                     reinterpret_cast<const unsigned char*>(plain.data()),
                                     static_cast<int>(plain.size()));
  encoded.resize(static_cast<std::size_t>(length));
  return "Basic " + encoded;
}

std::string errorSummary(const std::string& body) {
  if (body.empty()) {
    return "";
  }
  try {
    Poco::JSON::Parser parser;
    const auto root = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    const auto errors = root ? root->getArray("errors") : nullptr;
    if (errors && errors->size() > 0) {
      const auto first = errors->getObject(0);
      const auto code = first->optValue<std::string>("code", "");
      const auto message = first->optValue<std::string>("message", "");
      return code + (message.empty() ? "" : ": " + message);
    }
  } catch (const Poco::Exception&) {
    // Not an OCI error body: show its start.
  } catch (const std::exception&) {
  }
  auto text = body.substr(0, 200);
  for (auto& c : text) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  while (!text.empty() && text.back() == ' ') {
    text.pop_back();
  }
  return text;
}

RegistryClient::RegistryClient(common::HttpClient& http, Endpoint endpoint)
    : http_(http), endpoint_(std::move(endpoint)) {}

common::HttpRequest RegistryClient::request(const std::string& path,
                                            const std::optional<Credential>& credential) const {
  common::HttpRequest request;
  request.url = endpoint_.base_url + path;
  request.ca_file = endpoint_.ca_file;
  request.connect_timeout = std::chrono::seconds(10);
  request.timeout = std::chrono::seconds(120);
  if (credential) {
    request.headers.emplace_back("Authorization", basicAuthorization(*credential));
  }
  return request;
}

common::Result<common::HttpResponse, FetchError>
RegistryClient::get(const std::string& path, const std::optional<Credential>& credential) const {
  auto result = http_.perform(request(path, credential));
  if (!result) {
    return FetchError{FetchError::Kind::Unreachable, 0,
                      "GET " + endpoint_.base_url + path + ": " + result.error().message};
  }
  return std::move(result.value());
}

common::Result<FetchedManifest, FetchError>
RegistryClient::manifest(const common::ImageReference& image, const std::string& reference) const {
  const std::string path = "/v2/" + image.repository + "/manifests/" + reference +
                           "?ns=" + percentEncodeQuery(image.registry);
  const std::string what = "manifest " + image.registry + "/" + image.repository + "@" + reference;
  auto req = request(path, endpoint_.credential);
  req.headers.emplace_back("Accept", common::kManifestAccept);
  std::size_t received = 0;
  std::string body;
  bool too_big = false;
  req.on_body = [&](std::string_view piece) {
    received += piece.size();
    if (received > kMaxManifestSize) {
      too_big = true;
      return false;
    }
    body.append(piece);
    return true;
  };
  auto result = http_.perform(req);
  if (too_big) {
    return FetchError{FetchError::Kind::Content, 0, what + " is larger than 4 MiB"};
  }
  if (!result) {
    return FetchError{FetchError::Kind::Unreachable, 0,
                      what + ": no answer from " + endpoint_.base_url + ": " +
                          result.error().message};
  }
  result->body = std::move(body);
  if (result->status != 200) {
    return FetchError{FetchError::Kind::Status, result->status,
                      describeStatus(what, result.value())};
  }

  FetchedManifest fetched;
  fetched.digest = common::digestOf("sha256", result->body);
  fetched.media_type = result->headers.get("Content-Type").value_or("");
  const auto announced = result->headers.get("Docker-Content-Digest");
  const bool by_digest = common::isSupportedDigest(reference);
  if (by_digest && reference.rfind("sha256:", 0) != 0) {
    fetched.digest = common::digestOf(algorithmOf(reference), result->body);
  }
  if (by_digest && fetched.digest != reference) {
    return FetchError{FetchError::Kind::Digest, 200,
                      what + ": the body hashes to " + fetched.digest + ", not to its digest"};
  }
  if (announced && !announced->empty() && *announced != fetched.digest &&
      announced->rfind("sha256:", 0) == 0) {
    return FetchError{FetchError::Kind::Digest, 200,
                      what + ": the body hashes to " + fetched.digest +
                          " but Docker-Content-Digest says " + *announced};
  }
  fetched.body = std::move(result->body);
  return fetched;
}

common::Result<std::uint64_t, FetchError>
RegistryClient::blob(const common::ImageReference& image, const std::string& digest,
                     std::optional<std::uint64_t> size) const {
  const std::string path =
      "/v2/" + image.repository + "/blobs/" + digest + "?ns=" + percentEncodeQuery(image.registry);
  const std::string what = "blob " + digest + " of " + image.registry + "/" + image.repository;
  auto req = request(path, endpoint_.credential);
  // A blob may be large and slow: no limit on the whole, only on silence.
  req.timeout = std::chrono::milliseconds(0);
  req.stall_timeout = std::chrono::seconds(60);
  req.follow_redirects = true;
  common::DigestHasher hasher(algorithmOf(digest));
  std::uint64_t received = 0;
  int status = 0;
  std::string error_body;
  req.on_headers = [&](const common::HttpResponse& response) {
    status = response.status;
    return true;
  };
  req.on_body = [&](std::string_view piece) {
    if (status != 200) {
      if (error_body.size() < kMaxErrorBody) {
        error_body.append(piece.substr(0, kMaxErrorBody - error_body.size()));
      }
      return true;
    }
    received += piece.size();
    hasher.update(piece);
    return !(size && received > *size);
  };
  auto result = http_.perform(req);
  if (size && received > *size) {
    return FetchError{FetchError::Kind::Digest, 200,
                      what + ": more than the " + std::to_string(*size) + " bytes it should have"};
  }
  if (!result) {
    return FetchError{FetchError::Kind::Unreachable, 0,
                      what + ": no complete answer from " + endpoint_.base_url + " after " +
                          std::to_string(received) + " bytes: " + result.error().message};
  }
  if (result->status != 200) {
    result->body = error_body;
    return FetchError{FetchError::Kind::Status, result->status,
                      describeStatus(what, result.value())};
  }
  const auto got = hasher.finish();
  if (got != digest) {
    return FetchError{FetchError::Kind::Digest, 200,
                      what + ": the " + std::to_string(received) + " bytes hash to " + got};
  }
  if (size && received != *size) {
    return FetchError{FetchError::Kind::Digest, 200,
                      what + ": " + std::to_string(received) + " bytes, expected " +
                          std::to_string(*size)};
  }
  return received;
}

} // namespace admin
