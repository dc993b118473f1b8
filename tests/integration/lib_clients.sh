# shellcheck shell=bash
# Real registry clients for the integration tests: a private dockerd, a private containerd
# driven by ctr, and podman/skopeo configuration. Sourced after lib.sh, which provides
# dcp_spawn, dcp_stop and $DCP_TMP; every daemon started here is spawned through dcp_spawn, so
# lib.sh's EXIT trap stops it by its PID on success and on failure alike.
#
# Nothing here touches the machine's own daemons or configuration: each daemon gets its own data
# root, state directory, socket, pid file and config file under $DCP_TMP, and each client is
# pointed at them explicitly (-H, -a, CONTAINERS_*_CONF).

# The whole test runs in namespaces of its own, made while this file is being sourced (before
# dcp_setup, so nothing has been started yet: the script re-executes itself under unshare):
# - a network namespace with only loopback. Every peer listens on 127.0.0.1 inside it, and a
#   client that silently falls back from the mirror to the real registry (dockerd does, and so
#   do containerd and podman) fails at once instead of reaching out: only the proxy can have
#   served a pull.
# - a mount namespace with an empty private tmpfs over the machine-wide directories these
#   clients write to whatever we configure (containerd's shim sockets in /run/containerd/s,
#   dockerd's /run/docker/plugins, runc's /run/runc, podman's /run/containers, podman's and
#   skopeo's blob-info cache in /var/lib/containers/cache, their short-name lock in
#   /var/cache/containers). Nothing the test does lands there, and the machine's containerd
#   socket and podman storage, should they exist, are out of reach. The mounts go away with
#   the namespace. /etc/docker is one of them too, so a test can write certs.d there for its
#   own dockerd without touching the machine's.
# DCP_CLIENTS_NETWORK=host (set before sourcing) keeps the machine's network namespace and makes
# only the mount namespace: for a test that must reach the Debian archive (image builds); it
# then checks the proxy's logs to rule out a fallback. DCP_NO_UNSHARE=1 runs in the machine's
# namespaces instead.
if [ -z "${DCP_IN_UNSHARE:-}" ] && [ "${DCP_NO_UNSHARE:-0}" != 1 ]; then
  dcp_unshare_net=(--net)
  [ "${DCP_CLIENTS_NETWORK:-}" = host ] && dcp_unshare_net=()
  if unshare "${dcp_unshare_net[@]}" --mount true 2>/dev/null; then
    export DCP_IN_UNSHARE=1
    # shellcheck disable=SC2016 # expanded by the inner bash
    exec unshare "${dcp_unshare_net[@]}" --mount --propagation private -- /bin/bash -c '
      set -e
      [ "${DCP_CLIENTS_NETWORK:-}" = host ] || ip link set lo up
      for dir in /run/containerd /run/docker /run/runc /run/containers /run/libpod \
        /var/lib/containers /var/cache/containers /etc/docker; do
        mkdir -p "$dir"
        mount -t tmpfs -o mode=0700,size=256m dcp-private "$dir"
      done
      exec /bin/bash "$0" "$@"' "$0" "$@"
  fi
  echo "lib_clients.sh: cannot unshare the network and mount namespaces; running in the" \
    "machine's, where a client's fallback to a real registry is only stopped by DNS" >&2
fi

# Debian's docker.io CLI matches its dockerd (20.10). A newer CLI elsewhere on PATH (one is in
# /usr/local/bin on the developer machines) would also work but is not what we test against.
DCP_DOCKER_CLI=${DCP_DOCKER_CLI:-/usr/bin/docker}

# Daemons start slowly on 2 cores with vfs; this bounds only the readiness wait, not a result.
DCP_DAEMON_WAIT=${DCP_DAEMON_WAIT:-120}

# dcp_wait_daemon NAME SECONDS CMD...: run CMD until it succeeds; give up when the daemon NAME
# has exited or SECONDS have passed (lib.sh's exit trap then prints the daemon's log).
dcp_wait_daemon() {
  local name=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    dcp_running "$name" || dcp_die "$name exited before it answered to: $*"
    [ "$SECONDS" -lt "$deadline" ] || dcp_die "$name did not answer within ${secs}s to: $*"
    sleep 0.2
  done
}

# dcp_clients__export NAME SUFFIX VALUE: export NAME_SUFFIX and its upper-case twin, as lib.sh
# does for the peers it starts.
dcp_clients__export() {
  local upper=${1^^}
  printf -v "${1}_$2" '%s' "$3"
  export "${1}_$2"
  if [ "$upper" != "$1" ]; then
    printf -v "${upper}_$2" '%s' "$3"
    export "${upper}_$2"
  fi
}

# dcp_start_containerd NAME
# A private containerd: own root, state, gRPC/ttrpc sockets and config, no CRI plugin and no
# debug or metrics listener. Exports NAME_SOCK (the gRPC socket, for `ctr -a`), NAME_LOG and
# NAME_DIR. The daemon-managed containerd of the machine is never used: it shares content
# between namespaces and would skip fetches.
dcp_start_containerd() {
  local name=$1
  local dir="$DCP_TMP/$name"
  mkdir -p "$dir/root" "$dir/state" "$dir/opt"
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "debug"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
  dcp_spawn "$name" "$dir/containerd.log" containerd --config "$dir/config.toml"
  dcp_clients__export "$name" SOCK "$dir/containerd.sock"
  dcp_clients__export "$name" LOG "$dir/containerd.log"
  dcp_clients__export "$name" DIR "$dir"
  dcp_wait_daemon "$name" "$DCP_DAEMON_WAIT" ctr -a "$dir/containerd.sock" version
}

# dcp_start_dockerd NAME MIRROR_URL
# A private dockerd (vfs, no iptables, no bridge) with MIRROR_URL as its only registry mirror,
# on its own containerd (NAME_containerd, started here so that it too is stopped by PID).
# Exports NAME_HOST (unix://... for `docker -H`), NAME_LOG, NAME_DIR and NAME_CONFIG (the
# daemon.json; edit it and send SIGHUP to apply new mirrors).
dcp_start_dockerd() {
  local name=$1 mirror=$2
  local dir="$DCP_TMP/$name"
  mkdir -p "$dir/data" "$dir/exec"

  # Without --containerd, dockerd would start a containerd of its own, which only dockerd knows
  # the PID of: one killed dockerd would leave it running.
  dcp_start_containerd "${name}_containerd"

  # 127.0.0.0/8 is an insecure registry by default; naming the mirror's host:port keeps an
  # http mirror working on any address.
  local insecure='[]'
  if [[ $mirror == http://* ]]; then
    local hostport=${mirror#http://}
    hostport=${hostport%%/*}
    insecure=$(jq -cn --arg h "$hostport" '[$h]')
  fi
  # deprecated-key-path: dockerd 20.10 otherwise creates /etc/docker/key.json (it has no flag
  # for this, only the daemon.json key).
  jq -n --arg m "$mirror" --argjson i "$insecure" --arg k "$dir/key.json" \
    '{"registry-mirrors": [$m], "insecure-registries": $i, "debug": true,
      "deprecated-key-path": $k}' >"$dir/daemon.json"

  dcp_spawn "$name" "$dir/dockerd.log" dockerd \
    --config-file "$dir/daemon.json" \
    --data-root "$dir/data" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" \
    -H "unix://$dir/docker.sock" \
    --containerd "$DCP_TMP/${name}_containerd/containerd.sock" \
    --storage-driver=vfs --iptables=false --ip-masq=false --bridge=none
  dcp_clients__export "$name" HOST "unix://$dir/docker.sock"
  dcp_clients__export "$name" LOG "$dir/dockerd.log"
  dcp_clients__export "$name" DIR "$dir"
  dcp_clients__export "$name" CONFIG "$dir/daemon.json"
  dcp_wait_daemon "$name" "$DCP_DAEMON_WAIT" "$DCP_DOCKER_CLI" -H "unix://$dir/docker.sock" info
}

# dcp_docker NAME ARGS...: the docker CLI against dockerd NAME, with a private client config
# directory so no credentials or settings of the machine's user are read.
dcp_docker() {
  local name=$1
  shift
  local host_var="${name^^}_HOST"
  mkdir -p "$DCP_TMP/$name/client"
  DOCKER_CONFIG="$DCP_TMP/$name/client" "$DCP_DOCKER_CLI" -H "${!host_var}" "$@"
}

# dcp_ctr NAME ARGS...: ctr against containerd NAME, in its default namespace.
dcp_ctr() {
  local name=$1
  shift
  local sock_var="${name^^}_SOCK"
  ctr -a "${!sock_var}" "$@"
}

# dcp_write_hosts_dir DIR PROXY_URL REGISTRY...
# containerd's hosts directory naming only the proxy as a mirror for each REGISTRY
# (docker.io, or host:port). The server line names the registry itself: for docker.io it is
# unreachable here, and for a host:port upstream it is https, which a plain http registry
# refuses, so a pull that works went through the proxy.
dcp_write_hosts_dir() {
  local dir=$1 proxy=$2
  shift 2
  local registry server
  for registry in "$@"; do
    if [ "$registry" = docker.io ]; then
      server=https://registry-1.docker.io
    else
      server="https://$registry"
    fi
    mkdir -p "$dir/$registry"
    cat >"$dir/$registry/hosts.toml" <<EOF
server = "$server"

[host."$proxy"]
  capabilities = ["pull", "resolve"]
EOF
  done
}

# dcp_write_podman_conf NAME PROXY_HOSTPORT
# registries.conf, storage.conf and containers.conf for podman and skopeo under $DCP_TMP/NAME,
# with docker.io mirrored at the path prefix PROXY_HOSTPORT/docker.io (plain http). Private
# graphroot, runroot, tmp and network dirs; vfs driver; cgroupfs; file events. Exports
# CONTAINERS_REGISTRIES_CONF, CONTAINERS_STORAGE_CONF and CONTAINERS_CONF, which podman and
# skopeo read, and NAME_REGISTRIES_CONF for skopeo's --registries-conf.
dcp_write_podman_conf() {
  local name=$1 proxy=$2
  local dir="$DCP_TMP/$name"
  mkdir -p "$dir/graph" "$dir/run" "$dir/tmp" "$dir/networks" "$dir/volumes"
  cat >"$dir/registries.conf" <<EOF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"

[[registry]]
location = "docker.io"

[[registry.mirror]]
location = "$proxy/docker.io"
insecure = true
EOF
  cat >"$dir/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$dir/graph"
runroot = "$dir/run"
EOF
  cat >"$dir/containers.conf" <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"
# The sandbox lacks CAP_SYS_RESOURCE: runc cannot raise the limits podman asks for by default.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_config_dir = "$dir/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$dir/tmp"
volume_path = "$dir/volumes"
# crun, podman's first choice, is not installed; Debian's runc is.
runtime = "runc"
EOF
  export CONTAINERS_REGISTRIES_CONF="$dir/registries.conf" \
    CONTAINERS_STORAGE_CONF="$dir/storage.conf" \
    CONTAINERS_CONF="$dir/containers.conf"
  dcp_clients__export "$name" REGISTRIES_CONF "$dir/registries.conf"
  dcp_clients__export "$name" DIR "$dir"
}

# ---------------------------------------------------------------------------------------------
# what the proxy and the images say

# dcp_image_blobs REF [ARCH]: config and layer digests of image REF from images.json, of the
# platform ARCH only when given; one a line.
dcp_image_blobs() {
  jq -r --arg r "$1" --arg a "${2:-}" '.images[] | select(.reference == $r) | .platforms[]
    | select($a == "" or .architecture == $a) | .config.digest, .layers[].digest' \
    "$DCP_TMP/images.json"
}

# dcp_platform_digest REF ARCH: manifest digest of one platform of image REF.
dcp_platform_digest() {
  jq -r --arg r "$1" --arg a "$2" '.images[] | select(.reference == $r) | .platforms[]
    | select(.architecture == $a) | .digest' "$DCP_TMP/images.json"
}

# dcp_proxy_barrier NAME: make sure the proxy has logged every request answered so far. It
# logs a request after answering it, so a client can be done before the line is written; a
# marker request sent now and found in the log proves the earlier lines are there. The marker
# is a tags/list of a repository that exists nowhere (a valid name, so that the proxy routes it
# to its default upstream like any other request instead of refusing it early).
# The marker is unique without a counter: callers run this inside $(...), where a counter would
# not survive.
dcp_proxy_barrier() {
  local name=$1 port_var="${1^^}_PORT" marker i
  dcp_running "$name" || return 0 # stopped: its log is complete
  marker="/v2/dcp-barrier/b$(date +%s%N)-$BASHPID/tags/list"
  curl -s -o /dev/null --max-time 10 "http://127.0.0.1:${!port_var}$marker" || true
  for ((i = 0; i < 200; i++)); do
    grep -qF "path=$marker " "$DCP_TMP/$name.log" && return 0
    sleep 0.05
  done
  dcp_die "proxy $name never logged the barrier request $marker"
}

# dcp_proxy_served NAME METHOD PATH_ERE [STATUS_ERE] [SOURCE]: how many requests the proxy's
# access log (debug level) shows with that method, a path matching PATH_ERE (the path as
# logged, query string included: anchor with ^ and $ yourself), a status matching STATUS_ERE
# (whole status; default any) and, if given, source=cache|upstream.
dcp_proxy_served() {
  dcp_proxy_barrier "$1"
  awk -v m="$2" -v re="$3" -v st="^(${4:-[0-9]+})\$" -v src="${5:-}" '
    /access: request served:/ {
      meth = ""; path = ""; status = ""; s = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^method=/) meth = substr($i, 8)
        else if ($i ~ /^path=/) path = substr($i, 6)
        else if ($i ~ /^status=/) status = substr($i, 8)
        else if ($i ~ /^source=/) s = substr($i, 8)
      }
      if (meth == m && path ~ re && status ~ st && (src == "" || s == src)) n++
    }
    END { print n + 0 }' "$DCP_TMP/$1.log"
}
