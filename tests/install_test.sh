#!/usr/bin/env bash
# `cmake --install` of a build tree puts docker-cache-proxy in bin/ of the prefix, executable,
# and nothing outside bin/. Installs into a scratch DESTDIR, never into the machine.
# Usage: tests/install_test.sh BUILD_DIR
set -euo pipefail
build=$1
prefix=/opt/dcp-install-test
dest=$(mktemp -d "${TMPDIR:-/tmp}/dcp-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >"$dest.log" 2>&1 ||
  fail "cmake --install failed: $(cat "$dest.log")"
rm -f "$dest.log"

proxy="$dest$prefix/bin/docker-cache-proxy"
[ -f "$proxy" ] || fail "no bin/docker-cache-proxy; installed: $(cd "$dest" && find . -type f)"
[ -x "$proxy" ] || fail "bin/docker-cache-proxy is not executable"
version=$("$proxy" --version) || fail "the installed docker-cache-proxy does not run"
[[ $version == "docker-cache-proxy "* ]] || fail "unexpected --version output: $version"

outside=$(cd "$dest$prefix" && find . -type f ! -path './bin/*')
[ -z "$outside" ] || fail "files installed outside bin/: $outside"
echo "PASS: cmake --install puts docker-cache-proxy in bin/ ($version)"
