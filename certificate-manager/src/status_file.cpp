#include "status_file.hpp"

#include "common/atomic_file.hpp"
#include "common/errors.hpp"
#include "time_format.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <sstream>

namespace certmgr {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

common::Clock::TimePoint timeField(const Object::Ptr& object, const std::string& key) {
  const auto parsed = parseTime(object->getValue<std::string>(key));
  if (!parsed) {
    throw std::runtime_error("field " + key + " is not an RFC 3339 time");
  }
  return *parsed;
}

std::optional<common::Clock::TimePoint> optionalTimeField(const Object::Ptr& object,
                                                          const std::string& key) {
  if (!object->has(key) || object->isNull(key)) {
    return std::nullopt;
  }
  return timeField(object, key);
}

} // namespace

void writeStatus(const std::filesystem::path& path, const Status& status) {
  Object::Ptr root = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  root->set("mode", status.mode);
  root->set("result", status.result);
  root->set("message", status.message);
  root->set("checked_at", formatTime(status.checked_at));
  if (status.last_success_at) {
    root->set("last_success_at", formatTime(*status.last_success_at));
  }
  if (status.last_renewal_at) {
    root->set("last_renewal_at", formatTime(*status.last_renewal_at));
  }
  root->set("next_check_at", formatTime(status.next_check_at));
  root->set("stale_after", formatTime(status.stale_after));
  root->set("consecutive_failures", status.consecutive_failures);
  if (status.certificate) {
    const auto& cert = *status.certificate;
    Object::Ptr c = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    c->set("serial", cert.serial);
    c->set("sha256_fingerprint", cert.sha256_fingerprint);
    c->set("not_before", formatTime(cert.not_before));
    c->set("not_after", formatTime(cert.not_after));
    c->set("renew_at", formatTime(cert.renew_at));
    Array::Ptr names = new Array();
    for (const auto& name : cert.names) {
      names->add(name);
    }
    c->set("names", names);
    root->set("certificate", c);
  }

  std::ostringstream out;
  root->stringify(out, 2);
  out << '\n';
  common::writeFileAtomically(path, out.str(), 0644);
}

std::optional<Status> readStatus(const std::filesystem::path& path, std::string& error) {
  try {
    const std::string text = common::readFile(path);
    Poco::JSON::Parser parser;
    const auto root = parser.parse(text).extract<Object::Ptr>();
    Status status;
    status.mode = root->getValue<std::string>("mode");
    status.result = root->getValue<std::string>("result");
    status.message = root->optValue<std::string>("message", "");
    status.checked_at = timeField(root, "checked_at");
    status.last_success_at = optionalTimeField(root, "last_success_at");
    status.last_renewal_at = optionalTimeField(root, "last_renewal_at");
    status.next_check_at = timeField(root, "next_check_at");
    status.stale_after = timeField(root, "stale_after");
    status.consecutive_failures = root->optValue<int>("consecutive_failures", 0);
    if (const auto c = root->getObject("certificate")) {
      StatusCertificate cert;
      cert.serial = c->getValue<std::string>("serial");
      cert.sha256_fingerprint = c->optValue<std::string>("sha256_fingerprint", "");
      cert.not_before = timeField(c, "not_before");
      cert.not_after = timeField(c, "not_after");
      cert.renew_at = timeField(c, "renew_at");
      if (const auto names = c->getArray("names")) {
        for (size_t i = 0; i < names->size(); ++i) {
          cert.names.push_back(names->getElement<std::string>(static_cast<unsigned>(i)));
        }
      }
      status.certificate = cert;
    }
    return status;
  } catch (const common::Error& e) {
    error = e.what();
  } catch (const Poco::Exception& e) {
    error = "malformed status file " + path.string() + ": " + e.displayText();
  } catch (const std::exception& e) {
    error = "malformed status file " + path.string() + ": " + e.what();
  }
  return std::nullopt;
}

HealthVerdict evaluateHealth(const Status& status, common::Clock::TimePoint now) {
  if (status.stale_after < now) {
    return {false, "status is stale since " + formatTime(status.stale_after) +
                       ": the checking loop is not running"};
  }
  if (!status.certificate) {
    return {false, "no certificate yet: " + status.message};
  }
  if (status.certificate->not_after <= now) {
    return {false, "certificate expired at " + formatTime(status.certificate->not_after)};
  }
  if (status.result != "ok") {
    return {false, "last check failed (" + std::to_string(status.consecutive_failures) +
                       " in a row): " + status.message};
  }
  return {true, "certificate valid until " + formatTime(status.certificate->not_after) +
                    ", renewal at " + formatTime(status.certificate->renew_at)};
}

} // namespace certmgr
