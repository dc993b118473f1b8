#pragma once

#include "issuer.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace certmgr {

/// What is in the output directory now, as renewal decisions see it.
struct CurrentPair {
  enum class State { Missing, Unreadable, KeyMismatch, Valid };
  State state = State::Missing;
  /// Why the pair is not Valid, for logs: "tls.key missing", "tls.crt: no certificate ...".
  std::string detail;
  /// The parsed leaf (State::Valid and KeyMismatch).
  X509Ptr leaf;
  std::optional<CertificateInfo> info;
};

/// Owns `tls.crt` (leaf and chain) and `tls.key` (0600) in the output directory, and the
/// previous pair as `tls.crt.prev` and `tls.key.prev`.
///
/// How a reader never sees a key without its certificate: both new files are written in full
/// and fsynced under temporary names first; then the old pair is hard-linked to *.prev, then
/// `tls.crt` is renamed into place, then `tls.key`, then the directory is fsynced. So
/// - on the first issuance the certificate appears before the key, never the other way round;
/// - on a renewal a reader that opens both files between the two renames gets the new
///   certificate with the old key. Such a reader must check that key and certificate match
///   (OpenSSL's SSL_CTX_check_private_key does) and read both again a moment later; the window
///   is two rename(2) calls wide.
/// Each file on its own is always complete: old or new, never partial.
class CertificateWriter {
public:
  explicit CertificateWriter(std::filesystem::path dir);

  /// Reads and checks the current pair. Never throws: every problem is a State.
  CurrentPair readCurrent() const;

  /// Replaces the pair as described above. Throws common::SetupError with path and errno.
  void write(const IssuedPair& pair);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path certificatePath() const { return dir_ / "tls.crt"; }
  std::filesystem::path keyPath() const { return dir_ / "tls.key"; }

private:
  std::filesystem::path dir_;
};

} // namespace certmgr
