#include "common/digest_hasher.hpp"

#include "common/errors.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

namespace common {
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

const EVP_MD* mdFor(std::string_view algorithm) {
  if (algorithm == "sha256") {
    return EVP_sha256();
  }
  if (algorithm == "sha512") {
    return EVP_sha512();
  }
  return nullptr;
}

} // namespace

void DigestHasher::Free::operator()(evp_md_ctx_st* ctx) const {
  EVP_MD_CTX_free(ctx);
}

bool DigestHasher::supports(std::string_view algorithm) {
  return mdFor(algorithm) != nullptr;
}

DigestHasher::DigestHasher(std::string_view algorithm)
    : algorithm_(algorithm), ctx_(EVP_MD_CTX_new()) {
  const EVP_MD* md = mdFor(algorithm);
  if (!md) {
    throw Error("digest algorithm \"" + algorithm_ +
                "\" is not supported; expected sha256 or sha512");
  }
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1) {
    throw Error(opensslError("EVP_DigestInit_ex failed"));
  }
}

DigestHasher::~DigestHasher() = default;

void DigestHasher::update(std::string_view bytes) {
  if (EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) {
    throw Error(opensslError("EVP_DigestUpdate failed"));
  }
}

std::unique_ptr<DigestHasher> DigestHasher::copy() const {
  auto twin = std::make_unique<DigestHasher>(algorithm_);
  if (EVP_MD_CTX_copy_ex(twin->ctx_.get(), ctx_.get()) != 1) {
    throw Error(opensslError("EVP_MD_CTX_copy_ex failed"));
  }
  return twin;
}

std::string DigestHasher::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), out, &length) != 1) {
    throw Error(opensslError("EVP_DigestFinal_ex failed"));
  }
  static const char kHex[] = "0123456789abcdef";
  std::string text = algorithm_ + ":";
  text.reserve(text.size() + 2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    text += kHex[out[i] >> 4];
    text += kHex[out[i] & 0x0f];
  }
  return text;
}

std::string digestOf(std::string_view algorithm, std::string_view bytes) {
  DigestHasher hasher(algorithm);
  hasher.update(bytes);
  return hasher.finish();
}

} // namespace common
