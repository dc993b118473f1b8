#!/usr/bin/env bash
# Installs, from Debian's archive, everything needed to build docker-cache-proxy and to run its
# tests against real peers (registry, clients, daemons). Idempotent: when every package is
# already installed it does nothing and touches no network. Run as root on Debian bookworm.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build ccache clang-format pkg-config
  libpoco-dev libcurl4-openssl-dev libssl-dev libyaml-cpp-dev libspdlog-dev catch2 libpsl-dev
  # peers for the integration tests
  docker-registry skopeo apache2-utils curl jq python3 openssl busybox-static
  docker.io containerd runc podman uidmap slirp4netns fuse-overlayfs
  pebble lego nginx-light wrk mmdebstrap gnupg iproute2 procps
  # the admin page's browser test (playwright-core drives Debian's chromium)
  chromium
  # the benchmark (bench/run.sh): its ratio chart
  gnuplot-nox
  # the compose bundle's end-to-end test; graphviz renders docs/architecture.png
  docker-compose graphviz
  # the test-only npm tools, pinned by their lockfiles: jsonata for the uptime-kuma monitor test
  # (tests/integration/tools/uptime-kuma), playwright-core for the admin page's (tests/browser)
  nodejs npm
)

# A package whose command is already on PATH from elsewhere counts as installed: NodeSource's
# nodejs bundles npm and conflicts with Debian's npm package, so installing it would fail.
declare -A provided_by_command=([nodejs]=node [npm]=npm)

missing=()
for pkg in "${packages[@]}"; do
  if [ -n "${provided_by_command[$pkg]:-}" ] && command -v "${provided_by_command[$pkg]}" >/dev/null; then
    continue
  fi
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [ "$status" != "installed" ]; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: must run as root to install: ${missing[*]}" >&2
  exit 77
fi

export DEBIAN_FRONTEND=noninteractive
# needrestart (if present) would otherwise offer to restart services after the install.
export NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l
apt-get update -qq

# A package the archive does not know would make the whole install fail: drop it loudly.
installable=()
for pkg in "${missing[@]}"; do
  candidate=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    echo "install-deps: WARNING: package not in the archive, skipped: $pkg" >&2
  else
    installable+=("$pkg")
  fi
done
[ "${#installable[@]}" -eq 0 ] && exit 0

# docker-registry, docker.io and containerd start system daemons from their postinst (the
# registry would listen on :5000). Tests start their own instances on free ports and must not
# share state with a system daemon, so forbid service starts while installing, the Debian way
# (policy-rc.d exit 101), and restore whatever policy was there before.
policy=/usr/sbin/policy-rc.d
saved_policy=""
if [ -e "$policy" ]; then
  saved_policy=$(mktemp)
  cp -p "$policy" "$saved_policy"
fi
restore_policy() {
  if [ -n "$saved_policy" ]; then
    mv -f "$saved_policy" "$policy"
  else
    rm -f "$policy"
  fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod 0755 "$policy"

echo "install-deps: installing ${installable[*]}"
apt-get install -y -qq \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${installable[@]}" >/dev/null

# Nothing we test may depend on a registry that the package left behind.
if command -v ss >/dev/null && ss -Hltn 'sport = :5000' | grep -q .; then
  echo "install-deps: WARNING: something listens on port 5000; tests never use it" >&2
fi
echo "install-deps: done"
