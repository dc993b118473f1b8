#include "client_snippets.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using Catch::Matchers::Contains;

namespace {

const std::string kCa = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

} // namespace

TEST_CASE("renderClientSnippets: HTTPS with the LAN CA", "[admin][clients]") {
  admin::ClientSnippetInput input;
  input.host = "cache.lan";
  input.tls = true;
  input.ca_pem = kCa;
  input.registries = {"ghcr.io", "docker.io", "ghcr.io"};

  const auto files = admin::renderClientSnippets(input);

  CHECK(files.at("ca.crt") == kCa);
  CHECK(files.at("docker/daemon.json") ==
        "{\n  \"registry-mirrors\": [\"https://cache.lan:5443\"]\n}\n");
  CHECK(files.at("docker/certs.d/cache.lan:5443/ca.crt") == kCa);
  CHECK(files.at("containers/certs.d/cache.lan:5443/ca.crt") == kCa);
  CHECK(files.at("containerd/certs.d/docker.io/hosts.toml") ==
        "# docker.io through docker-cache-proxy; written by admin-setup\n"
        "server = \"https://registry-1.docker.io\"\n\n"
        "[host.\"https://cache.lan:5443\"]\n"
        "  capabilities = [\"pull\", \"resolve\"]\n"
        "  ca = \"docker-cache-proxy-ca.crt\"\n");
  CHECK(files.at("containerd/certs.d/docker.io/docker-cache-proxy-ca.crt") == kCa);
  CHECK_THAT(files.at("containerd/certs.d/ghcr.io/hosts.toml"),
             Contains("server = \"https://ghcr.io\""));
  const auto& conf = files.at("containers/registries.conf.d/docker-cache-proxy.conf");
  CHECK_THAT(conf, Contains("location = \"cache.lan:5443/docker.io\""));
  CHECK_THAT(conf, Contains("location = \"cache.lan:5443/ghcr.io\""));
  CHECK_THAT(conf, !Contains("insecure"));
  // docker.io first, then the others; each once.
  CHECK(conf.find("docker.io") < conf.find("ghcr.io"));
  CHECK(conf.find("\"ghcr.io\"") == conf.rfind("\"ghcr.io\""));
  CHECK_THAT(files.at("kubernetes/k3s-registries.yaml"),
             Contains("ca_file: /etc/rancher/k3s/docker-cache-proxy-ca.crt"));
  CHECK_THAT(files.at("README.txt"), Contains("/etc/docker/certs.d/cache.lan:5443/ca.crt"));

  SECTION("the same input renders the same bytes") {
    CHECK(admin::renderClientSnippets(input) == files);
  }
  SECTION("a public certificate: no CA files, nothing to trust") {
    input.ca_pem.clear();
    const auto publicly = admin::renderClientSnippets(input);
    CHECK(publicly.count("ca.crt") == 0);
    CHECK(publicly.count("docker/certs.d/cache.lan:5443/ca.crt") == 0);
    CHECK_THAT(publicly.at("containerd/certs.d/docker.io/hosts.toml"), !Contains("ca ="));
    CHECK_THAT(publicly.at("kubernetes/k3s-registries.yaml"), !Contains("configs:"));
  }
}

TEST_CASE("renderClientSnippets: plain HTTP", "[admin][clients]") {
  admin::ClientSnippetInput input;
  input.host = "192.168.1.10";
  input.http_port = 5000;
  input.tls = false;
  input.ca_pem = kCa; // ignored without TLS

  const auto files = admin::renderClientSnippets(input);

  CHECK(files.at("docker/daemon.json") ==
        "{\n  \"registry-mirrors\": [\"http://192.168.1.10:5000\"],\n"
        "  \"insecure-registries\": [\"192.168.1.10:5000\"]\n}\n");
  CHECK(files.count("ca.crt") == 0);
  CHECK_THAT(files.at("containerd/certs.d/docker.io/hosts.toml"),
             Contains("[host.\"http://192.168.1.10:5000\"]"));
  CHECK_THAT(files.at("containers/registries.conf.d/docker-cache-proxy.conf"),
             Contains("insecure = true"));
}

TEST_CASE("writeClientSnippets: a second run writes nothing", "[admin][clients]") {
  testsupport::TempDir dir;
  admin::ClientSnippetInput input;
  input.tls = true;
  input.ca_pem = kCa;
  const auto files = admin::renderClientSnippets(input);

  const auto first = admin::writeClientSnippets(dir.path(), files);
  CHECK(first.written == files.size());
  CHECK(first.unchanged == 0);
  std::ifstream daemon(dir.path() / "docker" / "daemon.json");
  CHECK(std::string(std::istreambuf_iterator<char>(daemon), {}) == files.at("docker/daemon.json"));

  const auto second = admin::writeClientSnippets(dir.path(), files);
  CHECK(second.written == 0);
  CHECK(second.unchanged == files.size());

  SECTION("a changed host rewrites only what names it") {
    input.host = "cache.lan";
    const auto third = admin::writeClientSnippets(dir.path(), admin::renderClientSnippets(input));
    CHECK(third.written > 0);
    CHECK(third.unchanged >= 2); // ca.crt and the CA beside docker.io's hosts.toml
  }
}
