#pragma once

#include "common/errors.hpp"
#include "issuer.hpp"

#include <optional>
#include <string>
#include <vector>

namespace certmgr {

/// An ACME request failed; retrying later may succeed (exit code 75 with --once).
class AcmeError : public common::UnavailableError {
public:
  using common::UnavailableError::UnavailableError;
};

/// An RFC 7807 problem document as ACME servers send them (RFC 8555 §6.7).
struct AcmeProblem {
  std::string type;
  std::string detail;
  int status = 0;
  /// "type: detail", with subproblems appended.
  std::string describe() const;
};

/// RFC 8555 §7.1.1, plus renewalInfo from RFC 9773 §3.
struct AcmeDirectory {
  std::string new_nonce;
  std::string new_account;
  std::string new_order;
  std::string renewal_info;
  std::string terms_of_service;
  bool external_account_required = false;
};

struct AcmeIdentifier {
  /// "dns" or "ip" (RFC 8738).
  std::string type;
  std::string value;
};

/// RFC 8555 §7.1.3.
struct AcmeOrder {
  std::string status;
  std::vector<AcmeIdentifier> identifiers;
  std::vector<std::string> authorizations;
  std::string finalize;
  std::string certificate;
  std::optional<AcmeProblem> error;
};

/// RFC 8555 §7.1.5.
struct AcmeChallenge {
  std::string type;
  std::string url;
  std::string token;
  std::string status;
  std::optional<AcmeProblem> error;
};

/// RFC 8555 §7.1.4.
struct AcmeAuthorization {
  std::string status;
  AcmeIdentifier identifier;
  bool wildcard = false;
  std::vector<AcmeChallenge> challenges;
};

/// Parsers of the server's JSON. Each throws AcmeError naming what is wrong or missing.
AcmeDirectory parseDirectory(const std::string& json);
AcmeOrder parseOrder(const std::string& json);
AcmeAuthorization parseAuthorization(const std::string& json);
/// A problem document; a body that is not one becomes a problem with the HTTP status only.
AcmeProblem parseProblem(const std::string& json, int status);
/// RFC 9773 §4.2 renewal information: the suggested window.
RenewalWindow parseRenewalInfo(const std::string& json);

/// The newOrder payload for these identifiers (`replaces`: RFC 9773 §5).
std::string newOrderPayload(const Identifiers& identifiers,
                            const std::optional<std::string>& replaces);

} // namespace certmgr
