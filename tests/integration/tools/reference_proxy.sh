#!/usr/bin/env bash
# Stand-in for docker-cache-proxy with the same command line (`--config FILE`, our YAML as
# written by dcp_proxy_config): runs the reference cache, Debian's docker-registry with a
# `proxy:` section, for the default upstream (or the first). It has one upstream, no `ns`
# routing and no prefix routes, so only some tests apply; it is here to check the tests'
# own mechanics and to compare behaviour:
#   DCP_PROXY_BIN=tests/integration/tools/reference_proxy.sh bash tests/integration/test_x.sh
# DCP_REFERENCE_LOG_LEVEL (default debug) sets its log level; bench/run.sh uses info, so that
# per-request debug lines do not slow the reference down.
set -euo pipefail

if [ "${1:-}" != --config ] || [ -z "${2:-}" ]; then
  echo "usage: $0 --config FILE" >&2
  exit 64
fi
cfg=$2

addr=$(sed -nE 's/^http: *\{ *addr: *"?([^"}]+)"?.*/\1/p' "$cfg")
root=$(sed -nE 's/^storage: *\{ *root: *"?([^"}]+)"?.*/\1/p' "$cfg")

# The upstream entries as "url|username|password|default", one a line.
entries=$(awk '
  function flush() { if (url != "") print url "|" user "|" pass "|" def; url = user = pass = def = "" }
  /^  - name:/ { flush() }
  /^    url:/ { url = $2 }
  /^    username:/ { user = $2 }
  /^    password:/ { pass = $2 }
  /^    default:/ { def = $2 }
  END { flush() }' "$cfg" | tr -d '"')
chosen=$(printf '%s\n' "$entries" | awk -F'|' '$4 == "true"' | head -n1)
[ -n "$chosen" ] || chosen=$(printf '%s\n' "$entries" | head -n1)
IFS='|' read -r url user pass _ <<<"$chosen"

out="$root/reference-registry.yml"
{
  echo "version: 0.1"
  echo "log: {level: ${DCP_REFERENCE_LOG_LEVEL:-debug}, formatter: text, accesslog: {disabled: false}}"
  echo "storage: {filesystem: {rootdirectory: \"$root/registry\"}, delete: {enabled: true}}"
  echo "http: {addr: \"$addr\", secret: reference}"
  echo "proxy:"
  echo "  remoteurl: \"$url\""
  [ -n "$user" ] && echo "  username: \"$user\""
  [ -n "$pass" ] && echo "  password: \"$pass\""
} >"$out"
exec /usr/bin/docker-registry serve "$out"
