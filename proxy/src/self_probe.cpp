#include "self_probe.hpp"

#include "common/http_client.hpp"
#include "server.hpp"

namespace proxy {
namespace {

std::string loopbackFor(const std::string& host) {
  if (host.empty() || host == "0.0.0.0") {
    return "127.0.0.1";
  }
  if (host == "::") {
    return "[::1]";
  }
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

} // namespace

std::string healthUrl(const ProxyConfig& config) {
  const bool plain = !config.listen.empty();
  const auto& text = plain ? config.listen.front() : config.tls.addr;
  const auto address = parseListenAddress(text);
  if (!address) {
    return "";
  }
  return std::string(plain ? "http" : "https") + "://" + loopbackFor(address->host) + ":" +
         std::to_string(address->port) + "/healthz";
}

ProbeOutcome probeHealth(const ProxyConfig& config) {
  const auto url = healthUrl(config);
  if (url.empty()) {
    return {false, "no listen address to probe (http.addr and tls.addr are empty)"};
  }
  common::HttpClient http;
  common::HttpRequest request;
  request.url = url;
  request.connect_timeout = std::chrono::seconds(3);
  request.timeout = std::chrono::seconds(5);
  // The certificate names the public host, not the loopback address probed here.
  request.verify_tls = false;
  const auto answer = http.perform(request);
  if (!answer.ok()) {
    return {false, "unhealthy: " + url + ": " + answer.error().message};
  }
  if (answer->status != 200) {
    return {false, "unhealthy: " + url + " answered " + std::to_string(answer->status)};
  }
  return {true, "healthy: " + url};
}

} // namespace proxy
