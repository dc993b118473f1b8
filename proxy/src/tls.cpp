#include "tls.hpp"

#include "common/logging.hpp"

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerConnection.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/TCPServerConnection.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace proxy {
namespace {

constexpr auto kRecheckInterval = std::chrono::seconds(2);
constexpr long kHandshakeTimeoutSeconds = 10;

std::string opensslErrors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    out += (out.empty() ? "" : "; ") + std::string(text);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// Changes to either file change this: inode (rename into place), size and modification time.
std::string fileFingerprint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return "missing";
  }
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// Closes a connection that cannot be served (no certificate yet, failed handshake).
class RefusedConnection : public Poco::Net::TCPServerConnection {
public:
  using Poco::Net::TCPServerConnection::TCPServerConnection;
  void run() override {}
};

} // namespace

std::string describeCertificate(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (!file) {
    return "unreadable";
  }
  X509* cert = PEM_read_X509(file, nullptr, nullptr, nullptr);
  std::fclose(file);
  if (!cert) {
    return "not a PEM certificate";
  }
  std::string out;
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      out = "serial=" + std::string(hex);
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (ASN1_TIME_print(bio, X509_get0_notAfter(cert)) == 1) {
      char* data = nullptr;
      const long len = BIO_get_mem_data(bio, &data);
      out += " not_after=\"" + std::string(data, static_cast<size_t>(len)) + "\"";
    }
    BIO_free(bio);
  }
  X509_free(cert);
  return out;
}

TlsContextProvider::TlsContextProvider(TlsConfig config) : config_(std::move(config)) {
  refresh();
  if (!context_) {
    common::logger("tls")->warn("no usable certificate yet, https connections are refused until "
                                "one appears: certificate={} key={}",
                                config_.certificate, config_.key);
  }
}

bool TlsContextProvider::load() {
  auto log = common::logger("tls");
  try {
    Poco::Net::Context::Params params;
    params.verificationMode = Poco::Net::Context::VERIFY_NONE;
    params.loadDefaultCAs = false;
    params.cipherList = "HIGH:!aNULL:!MD5:!RC4";
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
    SSL_CTX* ssl = context->sslContext();
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    // The chain file holds the leaf and its intermediates; a consumer must never pair a new key
    // with an old certificate, which SSL_CTX_check_private_key refuses.
    if (SSL_CTX_use_certificate_chain_file(ssl, config_.certificate.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ssl, config_.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ssl) != 1) {
      log->warn("certificate not loaded, keeping the previous one: certificate={} err={}",
                config_.certificate, opensslErrors());
      return false;
    }
    context_ = context;
    log->info("certificate loaded: file={} {}", config_.certificate,
              describeCertificate(config_.certificate));
    return true;
  } catch (const Poco::Exception& e) {
    log->warn("certificate not loaded, keeping the previous one: certificate={} err={}",
              config_.certificate, e.displayText());
    return false;
  }
}

bool TlsContextProvider::refresh() {
  std::lock_guard lock(mutex_);
  checked_ = std::chrono::steady_clock::now();
  const auto fingerprint =
      fileFingerprint(config_.certificate) + "|" + fileFingerprint(config_.key);
  if (fingerprint != fingerprint_) {
    // A half-written pair fails the key check; the next look retries.
    if (load()) {
      fingerprint_ = fingerprint;
    }
  }
  return static_cast<bool>(context_);
}

Poco::Net::Context::Ptr TlsContextProvider::current() {
  bool stale = false;
  {
    std::lock_guard lock(mutex_);
    stale = std::chrono::steady_clock::now() - checked_ > kRecheckInterval;
    if (!stale) {
      return context_;
    }
  }
  refresh();
  std::lock_guard lock(mutex_);
  return context_;
}

TlsConnectionFactory::TlsConnectionFactory(TlsContextProvider& provider,
                                           Poco::Net::HTTPServerParams::Ptr params,
                                           Poco::Net::HTTPRequestHandlerFactory::Ptr handlers)
    : provider_(provider), params_(std::move(params)), handlers_(std::move(handlers)) {}

Poco::Net::TCPServerConnection*
TlsConnectionFactory::createConnection(const Poco::Net::StreamSocket& socket) {
  auto context = provider_.current();
  if (!context) {
    return new RefusedConnection(socket);
  }
  try {
    Poco::Net::StreamSocket plain(socket);
    plain.setReceiveTimeout(Poco::Timespan(kHandshakeTimeoutSeconds, 0));
    auto secure = Poco::Net::SecureStreamSocket::attach(plain, context);
    secure.setReceiveTimeout(params_->getTimeout());
    return new Poco::Net::HTTPServerConnection(secure, params_, handlers_);
  } catch (const Poco::Exception& e) {
    common::logger("tls")->debug("tls handshake failed: err={}", e.displayText());
    return new RefusedConnection(socket);
  }
}

} // namespace proxy
