#pragma once

#include "credentials.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace admin {

/// What the client configuration of one deployment depends on.
struct ClientSnippetInput {
  /// The name or address clients use for the proxy ("cache.lan", "192.168.1.10", "[fd00::1]").
  std::string host = "localhost";
  int http_port = 5000;
  int https_port = 5443;
  /// HTTPS clients (with `ca_pem` when the certificate is from the LAN CA), else plain HTTP.
  bool tls = false;
  /// The CA certificate clients must trust; empty: a publicly trusted certificate.
  std::string ca_pem;
  /// The upstream registries the proxy serves ("docker.io", "ghcr.io").
  std::vector<std::string> registries = {"docker.io"};
};

/// Every file of the client configuration: path relative to the output directory -> content.
/// Deterministic: the same input gives the same bytes, so a second run changes nothing.
///   README.txt                                   where each file goes
///   ca.crt                                       the CA to trust (LAN CA only)
///   docker/daemon.json                           registry-mirrors (Docker mirrors Docker Hub only)
///   docker/certs.d/<host:port>/ca.crt            Docker's per-registry CA
///   containerd/certs.d/<registry>/hosts.toml     containerd, Kubernetes nodes (config_path)
///   containers/registries.conf.d/docker-cache-proxy.conf   Podman, CRI-O, skopeo, buildah
///   containers/certs.d/<host:port>/ca.crt        their per-registry CA
///   kubernetes/k3s-registries.yaml               k3s and RKE2
std::map<std::string, std::string> renderClientSnippets(const ClientSnippetInput& input);

/// How many files were written and left alone.
struct SnippetsOutcome {
  std::size_t written = 0;
  std::size_t unchanged = 0;
};

/// Step 5: writes the rendered files under `dir` (0644), each only when it changed.
// TODO: remove files of an earlier run that are no longer rendered (an upstream removed from the
// proxy); they stay in the client-config volume and a client copying the whole directory keeps
// a mirror for a registry the proxy no longer serves.
SnippetsOutcome writeClientSnippets(const std::filesystem::path& dir,
                                    const std::map<std::string, std::string>& files);

} // namespace admin
