#include "admin_api.hpp"

#include "common/duration.hpp"
#include "common/logging.hpp"
#include "router.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <ctime>
#include <sstream>

namespace proxy {
namespace {

constexpr std::string_view kApiPrefix = "/admin/api/";

ApiResponse jsonAnswer(int status, const Poco::JSON::Object& object) {
  std::ostringstream out;
  object.stringify(out);
  ApiResponse response;
  response.status = status;
  response.body = out.str();
  response.content_length = response.body.size();
  response.setHeader("Content-Type", "application/json");
  response.setHeader("Cache-Control", "no-store");
  response.route = "admin";
  return response;
}

ApiResponse problem(int status, const std::string& message) {
  Poco::JSON::Object object;
  object.set("error", message);
  return jsonAnswer(status, object);
}

// "2026-12-04T06:00:00Z", or null for a time never reached.
Poco::Dynamic::Var timeValue(std::optional<common::Clock::TimePoint> when) {
  if (!when || when->time_since_epoch().count() <= 0) {
    return Poco::Dynamic::Var();
  }
  const auto seconds = std::chrono::system_clock::to_time_t(*when);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return std::string(text);
}

// A request from a page of another site carries that site's Origin; the admin page's own
// requests carry ours. Without an Origin (curl, scripts) there is no browser to trick.
bool crossSite(const ApiRequest& request) {
  if (!request.origin || !request.host) {
    return request.origin.has_value();
  }
  const auto& origin = *request.origin;
  const auto scheme_end = origin.find("://");
  return scheme_end == std::string::npos || origin.substr(scheme_end + 3) != *request.host;
}

Poco::JSON::Object planJson(const CleanupPlan& plan, bool dry_run) {
  Poco::JSON::Array images;
  for (const auto& image : plan.images) {
    Poco::JSON::Object entry;
    entry.set("digest", image.root.str());
    entry.set("reason", toString(image.reason));
    entry.set("last_used", timeValue(image.last_used));
    entry.set("freed_bytes", image.freed);
    Poco::JSON::Array names;
    for (const auto& name : image.names) {
      names.add(name);
    }
    entry.set("names", names);
    images.add(entry);
  }
  Poco::JSON::Array tags;
  for (const auto& tag : plan.tags) {
    tags.add(tag.upstream + "/" + tag.repository.str() + ":" + tag.name);
  }
  Poco::JSON::Array content;
  for (const auto& digest : plan.content) {
    content.add(digest.str());
  }
  Poco::JSON::Object object;
  object.set("dry_run", dry_run);
  object.set("images", images);
  object.set("tags", tags);
  object.set("content", content);
  object.set("links", plan.links.size());
  object.set("freed_bytes", plan.bytes_freed);
  object.set("bytes_before", plan.bytes_before);
  object.set("limit_bytes", plan.limit);
  object.set("shortfall",
             plan.shortfall.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(plan.shortfall));
  return object;
}

// A query parameter's value; empty when absent.
std::string valueOf(const QueryParameters& query, const char* key) {
  const auto it = query.find(key);
  return it == query.end() ? std::string() : it->second;
}

QueryParameters queryOf(const ApiRequest& request) {
  const auto start = request.target.find('?');
  return start == std::string::npos
             ? QueryParameters{}
             : parseQuery(std::string_view(request.target).substr(start + 1));
}

bool flag(const QueryParameters& query, const std::string& name) {
  const auto it = query.find(name);
  return it != query.end() && (it->second == "true" || it->second == "1" || it->second.empty());
}

} // namespace

AdminApi::AdminApi(AccessControl& access, CacheCleaner& cleaner, Warmer& warmer, Metadata& metadata,
                   Upstreams& upstreams, Metrics& metrics, ReloadFunction reload)
    : access_(access), cleaner_(cleaner), warmer_(warmer), metadata_(metadata),
      upstreams_(upstreams), metrics_(metrics), reload_(std::move(reload)) {}

std::optional<ApiResponse> AdminApi::handle(const ApiRequest& request) {
  const auto path = request.target.substr(0, request.target.find('?'));
  if (path != "/admin" && path.rfind("/admin/", 0) != 0) {
    return std::nullopt;
  }
  const auto verdict = access_.checkAdmin(request.authorization);
  if (!verdict.allowed) {
    auto refused = problem(verdict.status, verdict.message);
    refused.setHeader("WWW-Authenticate", "Basic realm=\"docker-cache-proxy admin\"");
    return refused;
  }
  const bool reading = request.method == "GET" || request.method == "HEAD";
  if (!reading && crossSite(request)) {
    common::logger("admin")->warn("cross-site admin request refused: method={} path={} origin={}",
                                  request.method, path, request.origin.value_or("-"));
    return problem(403, "cross-site request refused: Origin does not match Host");
  }
  try {
    auto response = route(request, path);
    if (!reading && response.status < 300) {
      common::logger("admin")->info("admin change: method={} target={} status={}", request.method,
                                    request.target, response.status);
    }
    return response;
  } catch (const std::exception& e) {
    common::logger("admin")->error("admin request failed: path={} err={}", path, e.what());
    return problem(500, std::string("internal error: ") + e.what());
  }
}

ApiResponse AdminApi::route(const ApiRequest& request, const std::string& path) {
  const auto& method = request.method;
  const bool get = method == "GET" || method == "HEAD";
  if (path == "/admin" || path == "/admin/") {
    if (!get) {
      return problem(405, method + " is not allowed here; expected GET");
    }
    ApiResponse page;
    page.body = adminPage();
    page.content_length = page.body.size();
    page.setHeader("Content-Type", "text/html; charset=utf-8");
    page.setHeader("Cache-Control", "no-store");
    page.setHeader("Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                   "connect-src 'self'; img-src data:");
    page.route = "admin";
    return page;
  }
  const auto name = path.rfind(kApiPrefix, 0) == 0 ? path.substr(kApiPrefix.size()) : "";
  struct Endpoint {
    const char* name;
    const char* method;
  };
  static const Endpoint kEndpoints[] = {
      {"summary", "GET"},       {"images", "GET"},          {"images", "DELETE"},
      {"tags", "DELETE"},       {"repositories", "DELETE"}, {"tags/invalidate", "POST"},
      {"cleanup", "POST"},      {"upstreams", "GET"},       {"warm", "GET"},
      {"warm/refresh", "POST"}, {"reload", "POST"}};
  bool known = false;
  for (const auto& endpoint : kEndpoints) {
    if (name != endpoint.name) {
      continue;
    }
    known = true;
    if (method == endpoint.method || (get && std::string(endpoint.method) == "GET")) {
      if (name == "summary") {
        return summary();
      }
      if (name == "images" && get) {
        return images();
      }
      if (name == "images" || name == "tags" || name == "repositories") {
        return remove(request, name);
      }
      if (name == "tags/invalidate") {
        return invalidate(request);
      }
      if (name == "cleanup") {
        return cleanup(request);
      }
      if (name == "upstreams") {
        return upstreams();
      }
      if (name == "warm" || name == "warm/refresh") {
        return warm(name == "warm/refresh");
      }
      return reload();
    }
  }
  if (known) {
    return problem(405, method + " is not allowed on " + path);
  }
  return problem(404, "no admin endpoint " + path + "; see docs/admin.md");
}

ApiResponse AdminApi::summary() {
  const auto inventory = cleaner_.inventory();
  const auto status = cleaner_.status();
  const auto images = cachedImages(inventory);
  std::size_t manifests = 0;
  for (const auto& image : images) {
    manifests += image.manifest ? 1 : 0;
  }
  const auto served = metrics_.bytesBySource();
  const auto hits = metrics_.hits();
  const auto misses = metrics_.misses();

  Poco::JSON::Object object;
  object.set("bytes", inventory.bytes);
  object.set("limit_bytes", status.limit);
  object.set("capacity_bytes", inventory.space ? inventory.space->capacity : 0);
  object.set("available_bytes", inventory.space ? inventory.space->available : 0);
  object.set("images", manifests);
  object.set("repositories", inventory.repositories.size());
  object.set("hits", hits);
  object.set("misses", misses);
  object.set("hit_ratio", hits + misses == 0
                              ? Poco::Dynamic::Var()
                              : Poco::Dynamic::Var(static_cast<double>(hits) /
                                                   static_cast<double>(hits + misses)));
  const auto bytes = [&](const char* source) {
    const auto it = served.find(source);
    return it == served.end() ? std::uint64_t{0} : it->second;
  };
  object.set("bytes_from_cache", bytes("cache"));
  object.set("bytes_from_upstream", bytes("upstream"));
  Poco::JSON::Object removed;
  for (const auto& [reason, count] : status.removed_images) {
    Poco::JSON::Object entry;
    entry.set("images", count);
    entry.set("bytes", status.removed_bytes.count(reason) ? status.removed_bytes.at(reason) : 0);
    removed.set(reason, entry);
  }
  object.set("removed", removed);
  object.set("last_cleanup", timeValue(status.last_run));
  object.set("shortfall", status.shortfall.empty() ? Poco::Dynamic::Var()
                                                   : Poco::Dynamic::Var(status.shortfall));
  return jsonAnswer(200, object);
}

ApiResponse AdminApi::images() {
  const auto inventory = cleaner_.inventory();
  const auto pinned = cleaner_.pinnedIn(inventory);
  const auto all = cachedImages(inventory);
  Poco::JSON::Array list;
  for (const auto& repository : inventory.repositories) {
    const std::set<Digest> linked(repository.links.begin(), repository.links.end());
    for (const auto& image : all) {
      if (!image.manifest || linked.count(image.root) == 0) {
        continue;
      }
      Poco::JSON::Object entry;
      entry.set("upstream", repository.upstream);
      entry.set("repository", repository.repository.str());
      entry.set("digest", image.root.str());
      entry.set("media_type", inventory.content.at(image.root).media_type);
      Poco::JSON::Array tags;
      for (const auto& [tag, record] : repository.tags) {
        if (record.digest == image.root) {
          tags.add(tag);
        }
      }
      entry.set("tags", tags);
      entry.set("bytes", image.bytes);
      entry.set("last_used", timeValue(image.last_used));
      entry.set("pinned", pinned.count(image.root) > 0);
      list.add(entry);
    }
  }
  Poco::JSON::Object object;
  object.set("images", list);
  return jsonAnswer(200, object);
}

ApiResponse AdminApi::remove(const ApiRequest& request, const std::string& what) {
  const auto query = queryOf(request);
  const auto value = [&](const char* key) { return valueOf(query, key); };
  const auto upstream = value("upstream");
  const auto repository = RepositoryName::parse(value("repository"));
  if (upstream.empty() || !repository) {
    return problem(400, "expected ?upstream=NAME&repository=NAME (e.g. upstream=docker.io&"
                        "repository=library/alpine); got upstream=\"" +
                            upstream + "\" repository=\"" + value("repository") + "\"");
  }
  Deletion deletion{upstream, *repository, std::nullopt, std::nullopt};
  if (what != "repositories") {
    if (!value("tag").empty()) {
      deletion.tag = Tag::parse(value("tag"));
      if (!deletion.tag) {
        return problem(400, "tag \"" + value("tag") + "\" is not a tag");
      }
    }
    if (!value("digest").empty()) {
      deletion.digest = Digest::parse(value("digest"));
      if (!deletion.digest) {
        return problem(400, "digest \"" + value("digest") +
                                "\" is not a digest; expected "
                                "sha256:<64 hex>");
      }
    }
    if (what == "tags" && !deletion.tag) {
      return problem(400, "expected &tag=NAME");
    }
    if (what == "images" && !deletion.tag && !deletion.digest) {
      return problem(400, "expected &digest=sha256:... or &tag=NAME");
    }
    if (what == "images" && !deletion.digest) {
      // The image a tag names.
      const auto record = metadata_.tag(upstream, *repository, *deletion.tag);
      if (!record) {
        return problem(404, upstream + "/" + repository->str() + ":" + deletion.tag->str() +
                                " is not cached");
      }
      deletion.digest = record->digest;
      deletion.tag.reset();
    }
  }
  const bool dry_run = flag(query, "dry_run");
  const auto plan = cleaner_.remove(deletion, dry_run);
  if (plan.empty()) {
    return problem(404, "nothing cached matches " + upstream + "/" + repository->str() +
                            (deletion.tag ? ":" + deletion.tag->str() : "") +
                            (deletion.digest ? "@" + deletion.digest->str() : ""));
  }
  return jsonAnswer(200, planJson(plan, dry_run));
}

ApiResponse AdminApi::invalidate(const ApiRequest& request) {
  const auto query = queryOf(request);
  const auto get = [&](const char* key) { return valueOf(query, key); };
  const auto repository = RepositoryName::parse(get("repository"));
  const auto tag = Tag::parse(get("tag"));
  if (get("upstream").empty() || !repository || !tag) {
    return problem(400, "expected ?upstream=NAME&repository=NAME&tag=NAME");
  }
  if (!metadata_.invalidateTag(get("upstream"), *repository, *tag)) {
    return problem(404,
                   get("upstream") + "/" + repository->str() + ":" + tag->str() + " is not cached");
  }
  Poco::JSON::Object object;
  object.set("invalidated", get("upstream") + "/" + repository->str() + ":" + tag->str());
  return jsonAnswer(200, object);
}

ApiResponse AdminApi::cleanup(const ApiRequest& request) {
  const auto query = queryOf(request);
  const bool dry_run = flag(query, "dry_run");
  std::optional<std::uint64_t> limit;
  if (const auto it = query.find("max_size"); it != query.end()) {
    limit = common::parseByteSize(it->second);
    if (!limit || !dry_run) {
      return problem(400, !limit ? "max_size=\"" + it->second +
                                       "\" is not a size; expected e.g. 50GiB or 1073741824"
                                 : "max_size tries a limit in a dry run only; expected "
                                   "dry_run=true (set cache.max_size and reload to change it)");
    }
  }
  return jsonAnswer(200, planJson(cleaner_.runNow(dry_run, limit), dry_run));
}

ApiResponse AdminApi::upstreams() {
  const auto current = upstreams_.current();
  Poco::JSON::Array list;
  for (const auto& config : current->config.upstreams) {
    const auto client = current->client(config.name);
    const auto health = client ? client->health() : UpstreamHealth{};
    const auto limit = client ? client->rateLimit() : RateLimitStatus{};
    Poco::JSON::Object entry;
    entry.set("name", config.name);
    entry.set("url", config.url);
    entry.set("default", config.name == current->config.defaultUpstream().name);
    entry.set("tag_ttl_seconds",
              std::chrono::duration_cast<std::chrono::seconds>(config.tag_ttl).count());
    entry.set("reachable", health.reachable);
    entry.set("requests", health.requests);
    entry.set("errors", health.errors);
    entry.set("last_error", health.last_error.empty() ? Poco::Dynamic::Var()
                                                      : Poco::Dynamic::Var(health.last_error));
    entry.set("ratelimit_remaining",
              limit.remaining ? Poco::Dynamic::Var(*limit.remaining) : Poco::Dynamic::Var());
    list.add(entry);
  }
  Poco::JSON::Object object;
  object.set("upstreams", list);
  return jsonAnswer(200, object);
}

ApiResponse AdminApi::warm(bool refresh) {
  const auto statuses = refresh ? warmer_.refreshNow() : warmer_.status();
  Poco::JSON::Array list;
  for (const auto& status : statuses) {
    Poco::JSON::Object entry;
    entry.set("image", status.image);
    entry.set("digest",
              status.digest ? Poco::Dynamic::Var(status.digest->str()) : Poco::Dynamic::Var());
    entry.set("refreshed_at", timeValue(status.refreshed_at));
    entry.set("tried_at", timeValue(status.tried_at));
    entry.set("error",
              status.error.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(status.error));
    list.add(entry);
  }
  Poco::JSON::Object object;
  object.set("refresh_interval_seconds",
             std::chrono::duration_cast<std::chrono::seconds>(warmer_.interval()).count());
  object.set("images", list);
  return jsonAnswer(200, object);
}

ApiResponse AdminApi::reload() {
  if (!reload_) {
    return problem(501, "this proxy was started without a way to reload its configuration");
  }
  if (const auto error = reload_()) {
    return problem(400, "new configuration refused, the running one stays: " + *error);
  }
  Poco::JSON::Object object;
  object.set("reloaded", true);
  return jsonAnswer(200, object);
}

} // namespace proxy
