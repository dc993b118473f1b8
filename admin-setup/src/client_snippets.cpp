#include "client_snippets.hpp"

#include "common/logging.hpp"

#include <algorithm>
#include <set>

namespace admin {
namespace {

constexpr const char* kContainerdCa = "docker-cache-proxy-ca.crt";

std::string jsonString(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

// The registry's own address, which containerd falls back to when the mirror fails.
std::string upstreamServer(const std::string& registry) {
  return registry == "docker.io" ? "https://registry-1.docker.io" : "https://" + registry;
}

// docker.io first (the registry most pulls name), then the rest sorted, each once.
std::vector<std::string> orderedRegistries(const std::vector<std::string>& registries) {
  std::set<std::string> unique(registries.begin(), registries.end());
  std::vector<std::string> ordered;
  if (unique.erase("docker.io") > 0) {
    ordered.push_back("docker.io");
  }
  ordered.insert(ordered.end(), unique.begin(), unique.end());
  return ordered;
}

std::string readme(const ClientSnippetInput& in, const std::string& mirror,
                   const std::string& authority, const std::vector<std::string>& registries) {
  const bool lan_ca = in.tls && !in.ca_pem.empty();
  std::string text =
      "Client configuration for docker-cache-proxy at " + mirror +
      "\n"
      "Written by admin-setup; rewritten when the deployment changes. Copy each file to the\n"
      "place named below on every machine that pulls images (see docs/clients.md).\n\n";
  if (lan_ca) {
    text += "ca.crt\n"
            "  The LAN CA that signed the proxy's certificate. Trust it once per machine; it\n"
            "  stays the same across certificate renewals.\n\n";
  }
  text += "docker/daemon.json\n"
          "  Merge into /etc/docker/daemon.json, then: systemctl reload docker\n"
          "  Docker uses a mirror for Docker Hub images only.\n";
  if (lan_ca) {
    text += "docker/certs.d/" + authority +
            "/ca.crt\n"
            "  Copy to /etc/docker/certs.d/" +
            authority + "/ca.crt (no restart needed).\n";
  }
  text += "\ncontainerd/certs.d/<registry>/hosts.toml\n"
          "  Copy the directories to /etc/containerd/certs.d/ (containerd reads them at each\n"
          "  pull). containerd's CRI plugin needs config_path = \"/etc/containerd/certs.d\" under\n"
          "  [plugins.\"io.containerd.grpc.v1.cri\".registry]; with ctr: --hosts-dir.\n"
          "  Registries:";
  for (const auto& registry : registries) {
    text += " " + registry;
  }
  text += "\n\ncontainers/registries.conf.d/docker-cache-proxy.conf\n"
          "  Podman, CRI-O, skopeo, buildah: copy to /etc/containers/registries.conf.d/.\n";
  if (lan_ca) {
    text += "containers/certs.d/" + authority +
            "/ca.crt\n"
            "  Copy to /etc/containers/certs.d/" +
            authority + "/ca.crt.\n";
  }
  text += "\nkubernetes/k3s-registries.yaml\n"
          "  k3s and RKE2: /etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/), then\n"
          "  restart k3s. Other Kubernetes nodes with containerd: use containerd/ above.\n";
  if (lan_ca) {
    text += "  It expects the CA at /etc/rancher/k3s/docker-cache-proxy-ca.crt.\n";
  }
  return text;
}

} // namespace

std::map<std::string, std::string> renderClientSnippets(const ClientSnippetInput& in) {
  std::map<std::string, std::string> files;
  const auto registries = orderedRegistries(in.registries);
  const std::string authority =
      in.host + ":" + std::to_string(in.tls ? in.https_port : in.http_port);
  const std::string mirror = (in.tls ? "https://" : "http://") + authority;
  const bool lan_ca = in.tls && !in.ca_pem.empty();

  files["README.txt"] = readme(in, mirror, authority, registries);
  if (lan_ca) {
    files["ca.crt"] = in.ca_pem;
    files["docker/certs.d/" + authority + "/ca.crt"] = in.ca_pem;
    files["containers/certs.d/" + authority + "/ca.crt"] = in.ca_pem;
  }

  std::string daemon = "{\n  \"registry-mirrors\": [" + jsonString(mirror) + "]";
  if (!in.tls) {
    daemon += ",\n  \"insecure-registries\": [" + jsonString(authority) + "]";
  }
  files["docker/daemon.json"] = daemon + "\n}\n";

  for (const auto& registry : registries) {
    std::string hosts = "# " + registry +
                        " through docker-cache-proxy; written by admin-setup\n"
                        "server = \"" +
                        upstreamServer(registry) +
                        "\"\n\n"
                        "[host.\"" +
                        mirror +
                        "\"]\n"
                        "  capabilities = [\"pull\", \"resolve\"]\n";
    if (lan_ca) {
      // A relative path is read from this file's directory (containerd hosts.md).
      hosts += "  ca = \"" + std::string(kContainerdCa) + "\"\n";
      files["containerd/certs.d/" + registry + "/" + kContainerdCa] = in.ca_pem;
    }
    files["containerd/certs.d/" + registry + "/hosts.toml"] = hosts;
  }

  std::string conf = "# Registries mirrored by docker-cache-proxy; written by admin-setup.\n"
                     "# The path after the proxy's address names the upstream registry.\n";
  for (const auto& registry : registries) {
    conf += "\n[[registry]]\nlocation = \"" + registry +
            "\"\n\n[[registry.mirror]]\n"
            "location = \"" +
            authority + "/" + registry + "\"\n";
    if (!in.tls) {
      conf += "insecure = true\n";
    }
  }
  files["containers/registries.conf.d/docker-cache-proxy.conf"] = conf;

  std::string k3s = "# k3s / RKE2 registries.yaml for docker-cache-proxy; written by admin-setup\n"
                    "mirrors:\n";
  for (const auto& registry : registries) {
    k3s += "  " + jsonString(registry) + ":\n    endpoint:\n      - " + jsonString(mirror) + "\n";
  }
  if (lan_ca) {
    k3s += "configs:\n  " + jsonString(authority) +
           ":\n    tls:\n      ca_file: /etc/rancher/k3s/docker-cache-proxy-ca.crt\n";
  }
  files["kubernetes/k3s-registries.yaml"] = k3s;
  return files;
}

SnippetsOutcome writeClientSnippets(const std::filesystem::path& dir,
                                    const std::map<std::string, std::string>& files) {
  SnippetsOutcome outcome;
  for (const auto& [relative, content] : files) {
    const auto change = writeIfChanged(dir / relative, content, 0644);
    if (change == FileChange::Unchanged) {
      ++outcome.unchanged;
    } else {
      ++outcome.written;
      common::logger("clients")->debug("client file {}: path={}", describe(change),
                                       (dir / relative).string());
    }
  }
  return outcome;
}

} // namespace admin
