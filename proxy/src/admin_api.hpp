#pragma once

#include "access.hpp"
#include "cache_cleaner.hpp"
#include "metrics.hpp"
#include "registry_api.hpp"
#include "upstream_set.hpp"
#include "warmer.hpp"

#include <functional>
#include <optional>
#include <string>

namespace proxy {

/// Reloads the configuration; the error message when the new one was refused.
using ReloadFunction = std::function<std::optional<std::string>()>;

/// The administration API under /admin/api/ and its web page at /admin/, behind the admin
/// credentials: what is cached (repositories, images with tags, sizes and last use), totals and
/// hit ratio, deleting an image, a tag or a repository, invalidating a tag, running a cleanup
/// (or a dry run), the upstreams, the warm list, and reloading the configuration.
class AdminApi {
public:
  AdminApi(AccessControl& access, CacheCleaner& cleaner, Warmer& warmer, Metadata& metadata,
           Upstreams& upstreams, Metrics& metrics, ReloadFunction reload);

  /// The answer for `request`, or nothing when its path is not under /admin.
  std::optional<ApiResponse> handle(const ApiRequest& request);

private:
  ApiResponse route(const ApiRequest& request, const std::string& path);
  ApiResponse summary();
  ApiResponse images();
  ApiResponse remove(const ApiRequest& request, const std::string& what);
  ApiResponse invalidate(const ApiRequest& request);
  ApiResponse cleanup(const ApiRequest& request);
  ApiResponse upstreams();
  ApiResponse warm(bool refresh);
  ApiResponse reload();

  AccessControl& access_;
  CacheCleaner& cleaner_;
  Warmer& warmer_;
  Metadata& metadata_;
  Upstreams& upstreams_;
  Metrics& metrics_;
  ReloadFunction reload_;
};

/// The web page (HTML with its script and styles inline; no external assets).
const std::string& adminPage();

} // namespace proxy
