#include "common/manifest.hpp"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

namespace common {
namespace {

constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

std::string stringField(const Poco::JSON::Object::Ptr& object, const std::string& name) {
  if (!object || !object->has(name) || object->isNull(name)) {
    return "";
  }
  const auto value = object->get(name);
  return value.isString() ? value.extract<std::string>() : "";
}

common::Result<Descriptor, std::string> descriptor(const Poco::JSON::Object::Ptr& object,
                                                   const std::string& where) {
  if (!object) {
    return where + " is not an object";
  }
  Descriptor d;
  d.media_type = stringField(object, "mediaType");
  d.digest = stringField(object, "digest");
  if (!isSupportedDigest(d.digest)) {
    return where + " has no sha256 digest";
  }
  if (object->has("size")) {
    try {
      const auto size = object->get("size").convert<Poco::Int64>();
      if (size < 0) {
        return where + " has a negative size";
      }
      d.size = static_cast<std::uint64_t>(size);
    } catch (const Poco::Exception&) {
      return where + " has a size that is not a number";
    }
  }
  if (const auto platform = object->getObject("platform")) {
    Platform p{stringField(platform, "os"), stringField(platform, "architecture"),
               stringField(platform, "variant")};
    if (!p.os.empty() && !p.architecture.empty()) {
      d.platform = p;
    }
  }
  return d;
}

std::string baseType(const std::string& content_type) {
  const auto semicolon = content_type.find(';');
  auto type = content_type.substr(0, semicolon);
  while (!type.empty() && type.back() == ' ') {
    type.pop_back();
  }
  return type;
}

} // namespace

const char* const kManifestAccept = "application/vnd.oci.image.index.v1+json, "
                                    "application/vnd.docker.distribution.manifest.list.v2+json, "
                                    "application/vnd.oci.image.manifest.v1+json, "
                                    "application/vnd.docker.distribution.manifest.v2+json";

common::Result<ParsedManifest, std::string> parseManifest(const std::string& body,
                                                          const std::string& content_type) {
  Poco::JSON::Object::Ptr root;
  try {
    Poco::JSON::Parser parser;
    root = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return std::string("manifest is not a JSON object: ") + e.displayText();
  } catch (const std::exception& e) {
    return std::string("manifest is not a JSON object: ") + e.what();
  }
  if (!root) {
    return std::string("manifest is not a JSON object");
  }

  ParsedManifest parsed;
  parsed.media_type = baseType(content_type);
  const auto own_type = stringField(root, "mediaType");
  const bool known = parsed.media_type == kOciIndex || parsed.media_type == kDockerList ||
                     parsed.media_type == kOciManifest || parsed.media_type == kDockerManifest;
  if (!known) {
    parsed.media_type = own_type;
  }
  if (parsed.media_type.empty()) {
    // An OCI manifest may leave mediaType out (image-spec 1.0): its shape tells.
    parsed.media_type = root->has("manifests") ? kOciIndex : kOciManifest;
  }
  int schema_version = 2;
  try {
    if (root->has("schemaVersion")) {
      schema_version = root->get("schemaVersion").convert<int>();
    }
  } catch (const Poco::Exception&) {
    return std::string("manifest has a schemaVersion that is not a number");
  }
  if (parsed.media_type.rfind("application/vnd.docker.distribution.manifest.v1", 0) == 0 ||
      schema_version == 1) {
    return std::string("Docker schema 1 manifests are not supported (deprecated since 2017)");
  }
  parsed.index = parsed.media_type == kOciIndex || parsed.media_type == kDockerList;

  if (parsed.index) {
    const auto entries = root->getArray("manifests");
    if (!entries) {
      return std::string("image index has no manifests list");
    }
    for (unsigned i = 0; i < entries->size(); ++i) {
      auto d = descriptor(entries->getObject(i), "manifests[" + std::to_string(i) + "]");
      if (!d) {
        return d.error();
      }
      parsed.manifests.push_back(std::move(d.value()));
    }
    return parsed;
  }

  if (root->has("config")) {
    auto config = descriptor(root->getObject("config"), "config");
    if (!config) {
      return config.error();
    }
    parsed.blobs.push_back(std::move(config.value()));
  }
  if (const auto layers = root->getArray("layers")) {
    for (unsigned i = 0; i < layers->size(); ++i) {
      auto d = descriptor(layers->getObject(i), "layers[" + std::to_string(i) + "]");
      if (!d) {
        return d.error();
      }
      parsed.blobs.push_back(std::move(d.value()));
    }
  }
  if (parsed.blobs.empty()) {
    return std::string("image manifest has neither config nor layers");
  }
  return parsed;
}

} // namespace common
