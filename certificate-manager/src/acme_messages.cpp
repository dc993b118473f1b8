#include "acme_messages.hpp"

#include "time_format.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <sstream>

namespace certmgr {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

Object::Ptr parseObject(const std::string& json, const std::string& what) {
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(json).extract<Object::Ptr>();
    if (!object) {
      throw AcmeError("malformed acme " + what + ": not a JSON object");
    }
    return object;
  } catch (const Poco::Exception& e) {
    throw AcmeError("malformed acme " + what + ": " + e.displayText());
  }
}

std::string requiredString(const Object::Ptr& object, const std::string& key,
                           const std::string& what) {
  if (!object->has(key) || !object->get(key).isString()) {
    throw AcmeError("malformed acme " + what + ": field \"" + key + "\" missing");
  }
  return object->getValue<std::string>(key);
}

std::string optionalString(const Object::Ptr& object, const std::string& key) {
  if (!object->has(key) || !object->get(key).isString()) {
    return "";
  }
  return object->getValue<std::string>(key);
}

std::optional<AcmeProblem> problemField(const Object::Ptr& object) {
  const auto error = object->getObject("error");
  if (!error) {
    return std::nullopt;
  }
  std::ostringstream out;
  error->stringify(out);
  return parseProblem(out.str(), error->optValue<int>("status", 0));
}

AcmeIdentifier parseIdentifier(const Object::Ptr& object, const std::string& what) {
  if (!object) {
    throw AcmeError("malformed acme " + what + ": identifier missing");
  }
  return AcmeIdentifier{requiredString(object, "type", what),
                        requiredString(object, "value", what)};
}

} // namespace

std::string AcmeProblem::describe() const {
  std::string out = type.empty() ? "status " + std::to_string(status) : type;
  if (!detail.empty()) {
    out += ": " + detail;
  }
  return out;
}

AcmeDirectory parseDirectory(const std::string& json) {
  const auto root = parseObject(json, "directory");
  AcmeDirectory directory;
  directory.new_nonce = requiredString(root, "newNonce", "directory");
  directory.new_account = requiredString(root, "newAccount", "directory");
  directory.new_order = requiredString(root, "newOrder", "directory");
  directory.renewal_info = optionalString(root, "renewalInfo");
  if (const auto meta = root->getObject("meta")) {
    directory.terms_of_service = optionalString(meta, "termsOfService");
    directory.external_account_required = meta->optValue<bool>("externalAccountRequired", false);
  }
  return directory;
}

AcmeOrder parseOrder(const std::string& json) {
  const auto root = parseObject(json, "order");
  AcmeOrder order;
  order.status = requiredString(root, "status", "order");
  order.finalize = requiredString(root, "finalize", "order");
  order.certificate = optionalString(root, "certificate");
  if (const auto identifiers = root->getArray("identifiers")) {
    for (size_t i = 0; i < identifiers->size(); ++i) {
      order.identifiers.push_back(
          parseIdentifier(identifiers->getObject(static_cast<unsigned>(i)), "order"));
    }
  }
  const auto authorizations = root->getArray("authorizations");
  if (!authorizations) {
    throw AcmeError("malformed acme order: field \"authorizations\" missing");
  }
  for (size_t i = 0; i < authorizations->size(); ++i) {
    order.authorizations.push_back(
        authorizations->getElement<std::string>(static_cast<unsigned>(i)));
  }
  order.error = problemField(root);
  return order;
}

AcmeAuthorization parseAuthorization(const std::string& json) {
  const auto root = parseObject(json, "authorization");
  AcmeAuthorization authz;
  authz.status = requiredString(root, "status", "authorization");
  authz.identifier = parseIdentifier(root->getObject("identifier"), "authorization");
  authz.wildcard = root->optValue<bool>("wildcard", false);
  if (const auto challenges = root->getArray("challenges")) {
    for (size_t i = 0; i < challenges->size(); ++i) {
      const auto c = challenges->getObject(static_cast<unsigned>(i));
      if (!c) {
        continue;
      }
      AcmeChallenge challenge;
      challenge.type = requiredString(c, "type", "challenge");
      challenge.url = requiredString(c, "url", "challenge");
      challenge.status = optionalString(c, "status");
      challenge.token = optionalString(c, "token");
      challenge.error = problemField(c);
      authz.challenges.push_back(std::move(challenge));
    }
  }
  return authz;
}

AcmeProblem parseProblem(const std::string& json, int status) {
  AcmeProblem problem;
  problem.status = status;
  try {
    Poco::JSON::Parser parser;
    const auto root = parser.parse(json).extract<Object::Ptr>();
    if (!root) {
      return problem;
    }
    problem.type = optionalString(root, "type");
    problem.detail = optionalString(root, "detail");
    if (const auto subproblems = root->getArray("subproblems")) {
      for (size_t i = 0; i < subproblems->size(); ++i) {
        const auto sub = subproblems->getObject(static_cast<unsigned>(i));
        if (sub) {
          problem.detail += "; " + optionalString(sub, "detail");
        }
      }
    }
  } catch (const std::exception&) {
    // Not a problem document: the status alone must do.
  }
  return problem;
}

RenewalWindow parseRenewalInfo(const std::string& json) {
  const auto root = parseObject(json, "renewal info");
  const auto window = root->getObject("suggestedWindow");
  if (!window) {
    throw AcmeError("malformed acme renewal info: field \"suggestedWindow\" missing");
  }
  const auto start = parseTime(requiredString(window, "start", "renewal info"));
  const auto end = parseTime(requiredString(window, "end", "renewal info"));
  if (!start || !end || *end < *start) {
    throw AcmeError("malformed acme renewal info: window start and end must be RFC 3339 times, "
                    "start before end");
  }
  return RenewalWindow{*start, *end};
}

std::string newOrderPayload(const Identifiers& identifiers,
                            const std::optional<std::string>& replaces) {
  Array::Ptr list = new Array();
  for (const auto& name : identifiers.dns_names) {
    Object::Ptr id = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    id->set("type", "dns");
    id->set("value", name);
    list->add(id);
  }
  for (const auto& ip : identifiers.ip_addresses) {
    Object::Ptr id = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    id->set("type", "ip");
    id->set("value", ip);
    list->add(id);
  }
  Object payload(Poco::JSON_PRESERVE_KEY_ORDER);
  payload.set("identifiers", list);
  if (replaces) {
    payload.set("replaces", *replaces);
  }
  std::ostringstream out;
  payload.stringify(out);
  return out.str();
}

} // namespace certmgr
