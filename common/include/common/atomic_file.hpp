#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace common {

/// Writes `data` to `path` so that a reader sees the old file or the new one, never a part:
/// a temporary file in the same directory, fsync, rename(2), fsync of the directory.
/// Throws SetupError with the path and errno text on failure.
void writeFileAtomically(const std::filesystem::path& path, std::string_view data,
                         mode_t mode = 0644);

/// Whether `file_name` is the temporary file of a writeFileAtomically that never finished (a
/// crash in the middle): ".<name>.tmp-<hex>".
bool isAtomicWriteLeftover(std::string_view file_name);

/// fsync(2) of a directory, so a rename inside it survives a crash.
void syncDirectory(const std::filesystem::path& dir);

/// Reads a whole (small) file. Throws SetupError naming the path on failure.
std::string readFile(const std::filesystem::path& path);

} // namespace common
