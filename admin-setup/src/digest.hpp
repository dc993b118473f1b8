#pragma once

#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace admin {

/// Hashes a stream of bytes for one expected digest ("sha256:<hex>" or "sha512:<hex>"), so a
/// blob can be verified while it is read and never held whole in memory.
class DigestHasher {
public:
  /// A hasher for the algorithm of `digest`; "sha256" when `digest` is empty.
  explicit DigestHasher(std::string_view digest = {});
  ~DigestHasher();
  DigestHasher(const DigestHasher&) = delete;
  DigestHasher& operator=(const DigestHasher&) = delete;

  void update(std::string_view bytes);
  /// "<algorithm>:<lower-case hex>" of everything so far. Ends the hasher.
  std::string finish();

private:
  struct Free {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::string algorithm_;
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

/// "sha256:<hex>" of `bytes`.
std::string sha256Digest(std::string_view bytes);

} // namespace admin
