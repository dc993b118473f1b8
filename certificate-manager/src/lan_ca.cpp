#include "lan_ca.hpp"

#include "common/atomic_file.hpp"
#include "common/errors.hpp"
#include "common/logging.hpp"
#include "time_format.hpp"

#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <system_error>

namespace certmgr {
namespace {

namespace fs = std::filesystem;

// Clients whose clock runs a little behind would reject a certificate that starts right now.
constexpr std::chrono::minutes kBackdate{1};

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    throwOpensslError("cannot add certificate extension " + std::string(OBJ_nid2sn(nid)) + "=" +
                      value);
  }
}

void setName(X509_NAME* name, const std::string& common_name) {
  const auto* org = reinterpret_cast<const unsigned char*>("docker-cache-proxy");
  const auto* cn = reinterpret_cast<const unsigned char*>(common_name.c_str());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, org, -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, cn, -1, -1, 0) != 1) {
    throwOpensslError("cannot set certificate name CN=" + common_name);
  }
}

void setValidity(X509* cert, common::Clock::TimePoint not_before,
                 common::Clock::TimePoint not_after) {
  const auto from = std::chrono::system_clock::to_time_t(not_before);
  const auto until = std::chrono::system_clock::to_time_t(not_after);
  if (ASN1_TIME_set(X509_getm_notBefore(cert), from) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), until) == nullptr) {
    throwOpensslError("cannot set certificate validity");
  }
}

X509Ptr newCertificate(EVP_PKEY* subject_key) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    throwOpensslError("cannot create certificate");
  }
  setRandomSerial(cert.get());
  return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) {
    throwOpensslError("cannot sign certificate");
  }
}

std::string randomLabel() {
  unsigned char bytes[4];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    throwOpensslError("cannot draw random bytes");
  }
  return toHex(std::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

bool fileExists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

} // namespace

LanCa::LanCa(const fs::path& dir, const common::Clock& clock, std::chrono::seconds leaf_validity)
    : clock_(clock), leaf_validity_(leaf_validity) {
  const auto cert_path = dir / "ca.crt";
  const auto key_path = dir / "ca.key";
  auto log = common::logger("lan-ca");

  // ca.crt is what clients were told to trust; without it nobody depends on this CA yet, so a
  // leftover ca.key from an interrupted first run is simply replaced.
  if (!fileExists(cert_path)) {
    create(dir);
    return;
  }
  if (!fileExists(key_path)) {
    throw common::SetupError("lan ca certificate " + cert_path.string() +
                             " exists but its key ca.key is missing: restore ca.key, or remove "
                             "ca.crt to create a new CA that every client must trust again");
  }
  try {
    ca_cert_ = std::move(parseCertificatesPem(common::readFile(cert_path)).front());
    ca_key_ = parsePrivateKeyPem(common::readFile(key_path));
  } catch (const CryptoError& e) {
    throw common::SetupError("cannot load lan ca from " + dir.string() + ": " + e.what());
  }
  if (!keyMatchesCertificate(ca_key_.get(), ca_cert_.get())) {
    throw common::SetupError("lan ca key " + key_path.string() + " does not belong to " +
                             cert_path.string() + ": restore the matching pair");
  }
  const auto info = inspectCertificate(ca_cert_.get());
  log->info("lan ca loaded: dir={} serial={} not_after={}", dir.string(), info.serial,
            formatTime(info.not_after));
  if (info.not_after <= clock_.now()) {
    log->error("lan ca has expired, leaf certificates will not verify: dir={}", dir.string());
  }
}

void LanCa::create(const fs::path& dir) {
  ca_key_ = generateKey(KeyType::EcP256);
  ca_cert_ = newCertificate(ca_key_.get());
  setName(X509_get_subject_name(ca_cert_.get()), "docker-cache-proxy LAN CA " + randomLabel());
  if (X509_set_issuer_name(ca_cert_.get(), X509_get_subject_name(ca_cert_.get())) != 1) {
    throwOpensslError("cannot set ca issuer name");
  }
  const auto now = clock_.now();
  setValidity(ca_cert_.get(), now - kBackdate, now + kCaValidity);
  // A root that may sign leaves only (pathlen:0), never another CA.
  addExtension(ca_cert_.get(), ca_cert_.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  addExtension(ca_cert_.get(), ca_cert_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  addExtension(ca_cert_.get(), ca_cert_.get(), NID_subject_key_identifier, "hash");
  sign(ca_cert_.get(), ca_key_.get());

  // The key first: ca.crt appearing is what marks the CA as complete.
  common::writeFileAtomically(dir / "ca.key", privateKeyPem(ca_key_.get()), 0600);
  common::writeFileAtomically(dir / "ca.crt", certificatePem(ca_cert_.get()), 0644);
  created_ = true;
  common::logger("lan-ca")->info("lan ca created, clients must trust it once: dir={} file=ca.crt",
                                 dir.string());
}

IssuedPair LanCa::issue(const Identifiers& identifiers, KeyType key_type,
                        const std::optional<std::string>& replaces) {
  (void)replaces;
  if (identifiers.empty()) {
    throw common::ConfigError("no names or ip addresses to issue a certificate for");
  }
  auto key = generateKey(key_type);
  auto cert = newCertificate(key.get());
  const std::string common_name = identifiers.dns_names.empty() ? identifiers.ip_addresses.front()
                                                                : identifiers.dns_names.front();
  setName(X509_get_subject_name(cert.get()), common_name);
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert_.get())) != 1) {
    throwOpensslError("cannot set leaf issuer name");
  }
  const auto now = clock_.now();
  setValidity(cert.get(), now - kBackdate, now + leaf_validity_);

  std::string san;
  for (const auto& name : identifiers.dns_names) {
    san += (san.empty() ? "DNS:" : ",DNS:") + name;
  }
  for (const auto& ip : identifiers.ip_addresses) {
    san += (san.empty() ? "IP:" : ",IP:") + ip;
  }
  const bool rsa = EVP_PKEY_is_a(key.get(), "RSA") == 1;
  addExtension(cert.get(), ca_cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
  addExtension(cert.get(), ca_cert_.get(), NID_key_usage,
               rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
  addExtension(cert.get(), ca_cert_.get(), NID_ext_key_usage, "serverAuth");
  addExtension(cert.get(), ca_cert_.get(), NID_subject_key_identifier, "hash");
  addExtension(cert.get(), ca_cert_.get(), NID_authority_key_identifier, "keyid:always");
  addExtension(cert.get(), ca_cert_.get(), NID_subject_alt_name, san);
  sign(cert.get(), ca_key_.get());

  // The chain is the leaf alone: the root is distributed separately as ca.crt.
  return IssuedPair{privateKeyPem(key.get()), certificatePem(cert.get())};
}

std::optional<std::string> LanCa::rejectCurrent(X509* leaf) {
  if (!signedBy(leaf, ca_cert_.get())) {
    return "not signed by the current lan ca";
  }
  return std::nullopt;
}

} // namespace certmgr
