#pragma once

// A small registry upstream on loopback for unit tests: serves manifests and blobs it was
// given, counts what it is asked, and can be made to fail, stall or corrupt on demand. The
// integration tests use the real docker-registry instead.

#include "reference.hpp"
#include "test_http_server.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace testsupport {

class FakeRegistry {
public:
  FakeRegistry() {
    server_.onPrefix("*", "/v2/",
                     [this](const TestHttpServer::Request& request,
                            Poco::Net::HTTPServerResponse& response) { serve(request, response); });
  }

  std::string url() const { return server_.url(); }
  TestHttpServer& server() { return server_; }

  /// Adds a manifest under `repository` and, when given, `tag`; returns its digest.
  std::string
  addManifest(const std::string& repository, const std::string& tag, const std::string& body,
              const std::string& media_type = "application/vnd.oci.image.manifest.v1+json") {
    const auto digest = proxy::Digest::sha256Of(body).str();
    std::lock_guard lock(mutex_);
    manifests_[repository + "@" + digest] = {media_type, body};
    if (!tag.empty()) {
      manifests_[repository + ":" + tag] = {media_type, body};
    }
    return digest;
  }

  /// Adds a blob to `repository`; returns its digest.
  std::string addBlob(const std::string& repository, const std::string& bytes) {
    const auto digest = proxy::Digest::sha256Of(bytes).str();
    std::lock_guard lock(mutex_);
    blobs_[repository + "@" + digest] = bytes;
    return digest;
  }

  /// Referrers of `digest` in `repository` (an OCI index), answered to a referrers request with
  /// `artifact_type` as its artifactType filter ("" for none; a filtered answer says so in
  /// OCI-Filters-Applied). Without any, the referrers API answers 404 as distribution 2.8 does.
  void addReferrers(const std::string& repository, const std::string& digest,
                    const std::string& index, const std::string& artifact_type = "") {
    std::lock_guard lock(mutex_);
    referrers_[repository + "@" + digest + "?" + artifact_type] = index;
  }

  /// Answer every request but `GET /v2/` with `status` (0: answer normally) and `headers`, such as
  /// 429 with Retry-After.
  void failWith(int status, std::vector<std::pair<std::string, std::string>> headers = {}) {
    std::lock_guard lock(mutex_);
    fail_status_ = status;
    fail_headers_ = std::move(headers);
  }

  /// Answer every request with 503.
  std::atomic<bool> down{false};
  /// Hold every answer but `GET /v2/` this long before sending anything: a stalled upstream.
  std::atomic<int> stall_ms{0};
  /// Flip a byte in every blob body.
  std::atomic<bool> corrupt{false};
  /// Sleep this long between the two halves of a blob body.
  std::atomic<int> blob_pause_ms{0};

  size_t count(const std::string& method, const std::string& path) const {
    return server_.count(method, path);
  }

  /// Requests whose path contains `part`, of `method` ("*" for any).
  size_t countContaining(const std::string& method, const std::string& part) const {
    size_t n = 0;
    for (const auto& request : server_.requests()) {
      if ((method == "*" || request.method == method) &&
          request.path.find(part) != std::string::npos) {
        ++n;
      }
    }
    return n;
  }

private:
  struct Manifest {
    std::string media_type;
    std::string body;
  };

  void serve(const TestHttpServer::Request& request, Poco::Net::HTTPServerResponse& response) {
    if (down) {
      TestHttpServer::reply(response, 503, R"({"errors":[{"code":"UNAVAILABLE"}]})");
      return;
    }
    const auto& path = request.path;
    const bool head = request.method == "HEAD";
    if (path == "/v2/") {
      TestHttpServer::reply(response, 200, "{}");
      return;
    }
    if (stall_ms > 0 && !server_.sleepFor(std::chrono::milliseconds(stall_ms.load()))) {
      return; // the server is going away
    }
    {
      std::unique_lock lock(mutex_);
      if (fail_status_ != 0) {
        const auto status = fail_status_;
        const auto headers = fail_headers_;
        lock.unlock();
        const std::string body = status == 429 ? R"({"errors":[{"code":"TOOMANYREQUESTS"}]})"
                                               : R"({"errors":[{"code":"UNAVAILABLE"}]})";
        TestHttpServer::reply(response, status, head ? "" : body, headers);
        return;
      }
    }
    if (const auto pos = path.find("/referrers/"); pos != std::string::npos) {
      serveReferrers(request, pos, response);
      return;
    }
    for (const std::string marker : {"/manifests/", "/blobs/"}) {
      const auto pos = path.rfind(marker);
      if (pos == std::string::npos) {
        continue;
      }
      const auto repository = path.substr(4, pos - 4);
      const auto reference = path.substr(pos + marker.size());
      const bool is_digest = reference.find(':') != std::string::npos;
      std::unique_lock lock(mutex_);
      if (marker == "/manifests/") {
        auto it = manifests_.find(repository + (is_digest ? "@" : ":") + reference);
        if (it == manifests_.end()) {
          lock.unlock();
          TestHttpServer::reply(response, 404, R"({"errors":[{"code":"MANIFEST_UNKNOWN"}]})");
          return;
        }
        const auto manifest = it->second;
        lock.unlock();
        const auto digest = proxy::Digest::sha256Of(manifest.body).str();
        response.set("Docker-Content-Digest", digest);
        response.setContentType(manifest.media_type);
        if (head) {
          response.setContentLength64(static_cast<Poco::Int64>(manifest.body.size()));
          response.send();
          return;
        }
        TestHttpServer::reply(response, 200, manifest.body,
                              {{"Content-Type", manifest.media_type}});
        return;
      }
      auto it = blobs_.find(repository + "@" + reference);
      if (it == blobs_.end()) {
        lock.unlock();
        TestHttpServer::reply(response, 404, R"({"errors":[{"code":"BLOB_UNKNOWN"}]})");
        return;
      }
      auto bytes = it->second;
      lock.unlock();
      response.setContentLength64(static_cast<Poco::Int64>(bytes.size()));
      response.set("Docker-Content-Digest", reference);
      if (head) {
        response.send();
        return;
      }
      if (corrupt && !bytes.empty()) {
        bytes[bytes.size() / 2] ^= 0x01;
      }
      auto& out = response.send();
      const auto half = bytes.size() / 2;
      out.write(bytes.data(), static_cast<std::streamsize>(half));
      out.flush();
      if (blob_pause_ms > 0) {
        server_.sleepFor(std::chrono::milliseconds(blob_pause_ms.load()));
      }
      out.write(bytes.data() + half, static_cast<std::streamsize>(bytes.size() - half));
      out.flush();
      return;
    }
    if (path.size() > 10 && path.substr(path.size() - 10) == "/tags/list") {
      const auto repository = path.substr(4, path.size() - 14);
      std::string tags;
      std::lock_guard lock(mutex_);
      for (const auto& [key, manifest] : manifests_) {
        if (key.rfind(repository + ":", 0) == 0) {
          tags += (tags.empty() ? "\"" : ",\"") + key.substr(repository.size() + 1) + "\"";
        }
      }
      TestHttpServer::reply(response, 200,
                            R"({"name":")" + repository + R"(","tags":[)" + tags + "]}",
                            {{"Content-Type", "application/json"}});
      return;
    }
    TestHttpServer::reply(response, 404, R"({"errors":[{"code":"NAME_UNKNOWN"}]})");
  }

  static std::string percentDecoded(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size()) {
        out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }

  void serveReferrers(const TestHttpServer::Request& request, size_t pos,
                      Poco::Net::HTTPServerResponse& response) {
    const auto repository = request.path.substr(4, pos - 4);
    const auto digest = request.path.substr(pos + 11);
    std::string artifact_type;
    const std::string key = "artifactType=";
    if (const auto at = request.query.find(key); at != std::string::npos) {
      const auto end = request.query.find('&', at);
      artifact_type = percentDecoded(request.query.substr(
          at + key.size(), end == std::string::npos ? end : end - at - key.size()));
    }
    std::unique_lock lock(mutex_);
    const auto it = referrers_.find(repository + "@" + digest + "?" + artifact_type);
    if (it == referrers_.end()) {
      lock.unlock();
      TestHttpServer::reply(response, 404, "404 page not found\n");
      return;
    }
    const auto index = it->second;
    lock.unlock();
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "application/vnd.oci.image.index.v1+json"}};
    if (!artifact_type.empty()) {
      headers.emplace_back("OCI-Filters-Applied", "artifactType");
    }
    TestHttpServer::reply(response, 200, index, headers);
  }

  mutable std::mutex mutex_;
  int fail_status_ = 0;
  std::vector<std::pair<std::string, std::string>> fail_headers_;
  std::map<std::string, std::string> referrers_;
  std::map<std::string, Manifest> manifests_;
  std::map<std::string, std::string> blobs_;
  // Last, so it stops (and its handlers end) before the state they read goes.
  TestHttpServer server_;
};

} // namespace testsupport
