#pragma once

#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace common {

/// Hashes a stream of bytes with one of the OCI digest algorithms ("sha256", "sha512"), so
/// content is verified while it passes and never held whole in memory.
class DigestHasher {
public:
  /// Whether `algorithm` is one this hasher computes.
  static bool supports(std::string_view algorithm);

  /// Throws common::Error for an algorithm `supports` refuses.
  explicit DigestHasher(std::string_view algorithm = "sha256");
  ~DigestHasher();
  DigestHasher(const DigestHasher&) = delete;
  DigestHasher& operator=(const DigestHasher&) = delete;

  void update(std::string_view bytes);
  /// An independent hasher in the same state, to go on hashing from here along another path.
  std::unique_ptr<DigestHasher> copy() const;
  /// "<algorithm>:<lower-case hex>" of everything so far. Ends the hasher.
  std::string finish();

private:
  struct Free {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::string algorithm_;
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

/// "<algorithm>:<hex>" of `bytes`.
std::string digestOf(std::string_view algorithm, std::string_view bytes);

} // namespace common
