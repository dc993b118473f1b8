#include "digest.hpp"

#include "common/errors.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

namespace admin {
namespace {

// The OpenSSL error queue, appended to a message so a failure says why.
std::string opensslError(const std::string& what) {
  std::string message = what;
  while (const unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    message += std::string(": ") + text;
  }
  return message;
}

} // namespace

void DigestHasher::Free::operator()(evp_md_ctx_st* ctx) const {
  EVP_MD_CTX_free(ctx);
}

DigestHasher::DigestHasher(std::string_view digest) : ctx_(EVP_MD_CTX_new()) {
  algorithm_ = digest.rfind("sha512:", 0) == 0 ? "sha512" : "sha256";
  if (!ctx_) {
    throw common::Error(opensslError("EVP_MD_CTX_new failed"));
  }
  const EVP_MD* md = algorithm_ == "sha512" ? EVP_sha512() : EVP_sha256();
  if (EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1) {
    throw common::Error(opensslError("EVP_DigestInit_ex failed"));
  }
}

DigestHasher::~DigestHasher() = default;

void DigestHasher::update(std::string_view bytes) {
  if (EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) {
    throw common::Error(opensslError("EVP_DigestUpdate failed"));
  }
}

std::string DigestHasher::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), out, &length) != 1) {
    throw common::Error(opensslError("EVP_DigestFinal_ex failed"));
  }
  static const char kHex[] = "0123456789abcdef";
  std::string text = algorithm_ + ":";
  for (unsigned int i = 0; i < length; ++i) {
    text += kHex[out[i] >> 4];
    text += kHex[out[i] & 0x0f];
  }
  return text;
}

std::string sha256Digest(std::string_view bytes) {
  DigestHasher hasher;
  hasher.update(bytes);
  return hasher.finish();
}

} // namespace admin
