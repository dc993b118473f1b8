#include "certificate.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace certmgr {
namespace {

template <typename T> void sortUnique(std::vector<T>& items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
}

std::string lowerCase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string ipFromOctets(const ASN1_OCTET_STRING* octets) {
  char text[INET6_ADDRSTRLEN] = {};
  const int length = ASN1_STRING_length(octets);
  const unsigned char* data = ASN1_STRING_get0_data(octets);
  if (length == 4) {
    ::inet_ntop(AF_INET, data, text, sizeof(text));
  } else if (length == 16) {
    ::inet_ntop(AF_INET6, data, text, sizeof(text));
  }
  return text;
}

// RFC 9773 §4.1: base64url(keyIdentifier of the AKI) "." base64url(serial number DER content).
std::optional<std::string> ariCertId(X509* cert) {
  const ASN1_OCTET_STRING* key_id = X509_get0_authority_key_id(cert);
  if (key_id == nullptr) {
    return std::nullopt;
  }
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  unsigned char* der = nullptr;
  const int size = i2d_ASN1_INTEGER(serial, &der);
  if (size < 3) {
    OPENSSL_free(der);
    return std::nullopt;
  }
  // Serial numbers are at most 20 bytes, so the length is in short form: tag, length, content.
  const std::string content(reinterpret_cast<char*>(der) + 2, static_cast<size_t>(size - 2));
  OPENSSL_free(der);
  const std::string aki(reinterpret_cast<const char*>(ASN1_STRING_get0_data(key_id)),
                        static_cast<size_t>(ASN1_STRING_length(key_id)));
  return base64url(aki) + "." + base64url(content);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : ",") + item;
  }
  return out;
}

} // namespace

void Identifiers::normalize() {
  for (auto& name : dns_names) {
    name = lowerCase(name);
    if (!name.empty() && name.back() == '.') {
      name.pop_back();
    }
  }
  for (auto& ip : ip_addresses) {
    if (auto canonical = canonicalIp(ip)) {
      ip = *canonical;
    }
  }
  sortUnique(dns_names);
  sortUnique(ip_addresses);
}

std::string Identifiers::describe() const {
  std::vector<std::string> all = dns_names;
  all.insert(all.end(), ip_addresses.begin(), ip_addresses.end());
  return joined(all);
}

std::optional<std::string> canonicalIp(std::string_view text) {
  const std::string input(text);
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN] = {};
  if (::inet_pton(AF_INET, input.c_str(), bytes) == 1) {
    ::inet_ntop(AF_INET, bytes, out, sizeof(out));
    return std::string(out);
  }
  if (::inet_pton(AF_INET6, input.c_str(), bytes) == 1) {
    ::inet_ntop(AF_INET6, bytes, out, sizeof(out));
    return std::string(out);
  }
  return std::nullopt;
}

bool isValidDnsName(std::string_view name) {
  if (name.substr(0, 2) == "*.") {
    name.remove_prefix(2);
  }
  if (name.empty() || name.size() > 253) {
    return false;
  }
  size_t label_length = 0;
  char previous = '.';
  for (const char c : name) {
    if (c == '.') {
      if (label_length == 0 || previous == '-') {
        return false;
      }
      label_length = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') {
      if (label_length == 0 && c == '-') {
        return false;
      }
      if (++label_length > 63) {
        return false;
      }
    } else {
      return false;
    }
    previous = c;
  }
  return label_length > 0 && previous != '-';
}

CertificateInfo inspectCertificate(X509* cert) {
  CertificateInfo info;
  info.not_before = asn1TimeToTimePoint(X509_get0_notBefore(cert));
  info.not_after = asn1TimeToTimePoint(X509_get0_notAfter(cert));

  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      info.identifiers.dns_names.emplace_back(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
          static_cast<size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      info.identifiers.ip_addresses.push_back(ipFromOctets(name->d.iPAddress));
    }
  }
  info.identifiers.normalize();

  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!serial) {
    throwOpensslError("cannot read serial number");
  }
  char* hex = BN_bn2hex(serial.get());
  if (hex == nullptr) {
    throwOpensslError("cannot format serial number");
  }
  info.serial = std::string(hex);
  OPENSSL_free(hex);
  std::transform(info.serial.begin(), info.serial.end(), info.serial.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });

  info.sha256_fingerprint = toHex(sha256(certificateDer(cert)));
  info.ari_cert_id = ariCertId(cert);
  return info;
}

bool keyMatchesCertificate(EVP_PKEY* key, X509* cert) {
  const bool match = X509_check_private_key(cert, key) == 1;
  // A mismatch is an answer here, not an error to report later.
  ERR_clear_error();
  return match;
}

bool signedBy(X509* cert, X509* issuer) {
  EVP_PKEY* issuer_key = X509_get0_pubkey(issuer);
  const bool valid = issuer_key != nullptr && X509_verify(cert, issuer_key) == 1;
  ERR_clear_error();
  return valid;
}

std::optional<std::string> describeMismatch(const Identifiers& want, const Identifiers& have) {
  std::vector<std::string> wanted = want.dns_names;
  wanted.insert(wanted.end(), want.ip_addresses.begin(), want.ip_addresses.end());
  std::vector<std::string> had = have.dns_names;
  had.insert(had.end(), have.ip_addresses.begin(), have.ip_addresses.end());
  std::sort(wanted.begin(), wanted.end());
  std::sort(had.begin(), had.end());

  std::vector<std::string> missing;
  std::vector<std::string> extra;
  std::set_difference(wanted.begin(), wanted.end(), had.begin(), had.end(),
                      std::back_inserter(missing));
  std::set_difference(had.begin(), had.end(), wanted.begin(), wanted.end(),
                      std::back_inserter(extra));
  if (missing.empty() && extra.empty()) {
    return std::nullopt;
  }
  std::string out;
  if (!missing.empty()) {
    out = "missing=" + joined(missing);
  }
  if (!extra.empty()) {
    out += (out.empty() ? "" : " ") + std::string("extra=") + joined(extra);
  }
  return out;
}

} // namespace certmgr
