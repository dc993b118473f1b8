# shellcheck shell=bash
# Shared helpers for the integration tests. Every tests/integration/test_*.sh sources this file,
# calls dcp_setup first, then starts real peers (docker-registry, a token server, the proxy)
# on 127.0.0.1 ports the kernel hands out. Everything a test starts goes through dcp_spawn, so
# the EXIT trap can stop it by PID, whatever way the test ends.
#
# Names passed to dcp_spawn / dcp_start_upstream / dcp_start_proxy must be shell identifiers
# (letters, digits, underscore): they become variable names such as up_PORT and UP_PORT.
#
# Do not call dcp_spawn, dcp_start_* or dcp_load_images inside $(...): the bookkeeping they do
# would stay in the subshell.

set -euo pipefail

DCP_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DCP_TOOLS_DIR="$DCP_LIB_DIR/tools"
: "${DCP_REPO_ROOT:=$(cd "$DCP_LIB_DIR/../.." && pwd)}"
: "${DCP_PROXY_BIN:=$DCP_REPO_ROOT/build/release/proxy/docker-cache-proxy}"
: "${DCP_PROXY_LOG_LEVEL:=debug}"
: "${DCP_IMAGE_SEED:=dcp-integration-1}"
export DCP_REPO_ROOT DCP_PROXY_BIN

# The tests talk to loopback only; a proxy variable from the environment would send curl and
# skopeo elsewhere.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*'

DCP_SETPRIV=$(command -v setpriv || true)

declare -gA DCP_PIDS=()         # name -> pid of every process started by dcp_spawn
declare -gA DCP_LOGS=()         # name -> log file
declare -ga DCP_ORDER=()        # names in start order; stopped in reverse
declare -gA DCP_UP_CONFIG=()    # upstream name -> registry config file
declare -gA DCP_UP_PORT=()      # upstream name -> port
declare -gA DCP_UP_USER=()      # upstream name -> user for pushes ("" when anonymous)
declare -gA DCP_UP_PASSWORD=()
declare -gA DCP_PROXY_CONFIG=() # proxy name -> config file
DCP_BARRIER_SEQ=0

# ---------------------------------------------------------------------------------------------
# results

dcp_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# With DCP_SOFT_FAIL=1 a failure is recorded and the test goes on (to see every failure of a
# run at once); the test still exits 1 at the end.
dcp_fail() {
  printf 'FAIL: %s\n' "$*" >&2
  if [ "${DCP_SOFT_FAIL:-0}" = 1 ] && [ -n "${DCP_TMP:-}" ]; then
    printf '%s\n' "$*" >>"$DCP_TMP/failures"
    return 0
  fi
  [ -d "${DCP_TMP:-/nonexistent}" ] && printf '%s\n' "$*" >>"$DCP_TMP/died"
  exit 1
}

# dcp_die MSG: a failure of the test machinery itself (a peer did not start, a wait ran out):
# always ends the test, also under DCP_SOFT_FAIL.
dcp_die() {
  printf 'FAIL: %s\n' "$*" >&2
  # Said again after the peers' logs, so that the reason is also in the last lines of output.
  [ -d "${DCP_TMP:-/nonexistent}" ] && printf '%s\n' "$*" >>"$DCP_TMP/died"
  exit 1
}

# dcp_pass MSG: closes a section; under DCP_SOFT_FAIL it says FAIL when the section had any.
DCP_FAILS_SEEN=0
dcp_pass() {
  local fails=0
  [ -f "${DCP_TMP:-/nonexistent}/failures" ] && fails=$(wc -l <"$DCP_TMP/failures")
  if [ "$fails" -gt "$DCP_FAILS_SEEN" ]; then
    printf 'FAIL (%s failed checks): %s\n' "$((fails - DCP_FAILS_SEEN))" "$*"
    DCP_FAILS_SEEN=$fails
  else
    printf 'PASS: %s\n' "$*"
  fi
}

# dcp_assert_eq ACTUAL EXPECTED MSG
dcp_assert_eq() {
  if [ "$1" != "$2" ]; then
    dcp_fail "$3: expected '$2', got '$1'"
  fi
}

# dcp_assert_match TEXT ERE MSG
dcp_assert_match() {
  if ! printf '%s' "$1" | grep -Eq -- "$2"; then
    dcp_fail "$3: '$1' does not match /$2/"
  fi
}

# dcp_assert_ge ACTUAL MINIMUM MSG
dcp_assert_ge() {
  if ! [ "$1" -ge "$2" ] 2>/dev/null; then
    dcp_fail "$3: expected at least $2, got '$1'"
  fi
}

# ---------------------------------------------------------------------------------------------
# lifecycle

dcp_setup() {
  DCP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/dcp-it.XXXXXX")
  export DCP_TMP
  trap 'dcp__on_exit $?' EXIT
  # A caught signal runs the EXIT trap; a default-action one would leave the peers running
  # (a closed output pipe, a closed terminal, ctest's timeout).
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 141' PIPE
  trap 'exit 143' TERM
  dcp_log "test dir: $DCP_TMP"
}

dcp__on_exit() {
  local status=$1 i name
  set +e
  # Cleanup must run to the end, even if our output is gone or a second signal comes.
  trap '' HUP INT PIPE TERM
  if [ "$status" -eq 0 ] && [ -s "$DCP_TMP/failures" ]; then
    echo "$(wc -l <"$DCP_TMP/failures") soft failures:" >&2
    sed 's/^/  FAIL: /' "$DCP_TMP/failures" >&2
    status=1
  fi
  # Stop first: the logs are then complete, shutdown messages included.
  for ((i = ${#DCP_ORDER[@]} - 1; i >= 0; i--)); do
    dcp_stop "${DCP_ORDER[$i]}"
  done
  if [ "$status" -ne 0 ]; then
    for name in "${DCP_ORDER[@]}"; do
      echo "----- last lines of $name (${DCP_LOGS[$name]}) -----" >&2
      tail -n 25 "${DCP_LOGS[$name]}" 2>/dev/null | cut -c1-400 >&2
    done
    echo "----- why it failed -----" >&2
    [ -s "$DCP_TMP/failures" ] && sed 's/^/FAIL: /' "$DCP_TMP/failures" >&2
    [ -s "$DCP_TMP/died" ] && sed 's/^/FAIL: /' "$DCP_TMP/died" >&2
    [ -s "$DCP_TMP/died" ] || [ -s "$DCP_TMP/failures" ] || echo "exit status $status" >&2
  fi
  if [ "${DCP_KEEP_TMP:-0}" = 1 ]; then
    echo "kept $DCP_TMP" >&2
  elif [ -n "${DCP_TMP:-}" ]; then
    # A mount a daemon made under it (a container's bind mount, a network namespace) can take
    # a moment to go away after the daemon stopped.
    for i in 1 2 3 4 5; do
      rm -rf "$DCP_TMP" 2>/dev/null && break
      sleep "$i"
    done
    [ -e "$DCP_TMP" ] && echo "could not remove $DCP_TMP" >&2
  fi
  exit "$status"
}

# dcp_free_port: a port that was free on 127.0.0.1 a moment ago. The kernel picks it (bind to
# port 0), so parallel test runs do not collide on a fixed number.
dcp_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# dcp_spawn NAME LOGFILE CMD...: start CMD in the background with its output (appended) in
# LOGFILE and remember its PID as NAME.
dcp_spawn() {
  local name=$1 log=$2
  shift 2
  if [ -n "${DCP_PIDS[$name]:-}" ] && dcp_running "$name"; then
    dcp_die "dcp_spawn: $name is already running (pid ${DCP_PIDS[$name]})"
  fi
  # setpriv execs CMD (same PID) with a parent-death signal: should this shell be killed
  # outright (SIGKILL, no trap runs), its peers still get TERM instead of running on.
  local -a guard=()
  [ -n "$DCP_SETPRIV" ] && guard=("$DCP_SETPRIV" --pdeathsig TERM --)
  "${guard[@]}" "$@" >>"$log" 2>&1 </dev/null &
  DCP_PIDS[$name]=$!
  DCP_LOGS[$name]=$log
  local known=0 n
  for n in "${DCP_ORDER[@]}"; do [ "$n" = "$name" ] && known=1; done
  [ "$known" = 1 ] || DCP_ORDER+=("$name")
  dcp_log "started $name: pid ${DCP_PIDS[$name]}: $*"
}

dcp_pid() {
  [ -n "${DCP_PIDS[$1]:-}" ] || dcp_die "dcp_pid: no process named $1"
  printf '%s\n' "${DCP_PIDS[$1]}"
}

# dcp_running NAME: true while the process is alive (a zombie counts as gone).
dcp_running() {
  local pid=${DCP_PIDS[$1]:-} state
  [ -n "$pid" ] || return 1
  state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

# dcp_stop NAME: TERM, up to 10 s to exit, then KILL. Never fails.
dcp_stop() {
  local name=$1 pid=${DCP_PIDS[$1]:-} i
  [ -n "$pid" ] || return 0
  if dcp_running "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      dcp_running "$name" || break
      sleep 0.1
    done
    if dcp_running "$name"; then
      dcp_log "$name (pid $pid) ignored TERM for 10 s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  DCP_PIDS[$name]=""
}

# dcp_wait NAME: wait for a spawned process (a client) to end; returns its exit status.
dcp_wait() {
  local pid rc=0
  pid=$(dcp_pid "$1")
  wait "$pid" || rc=$?
  DCP_PIDS[$1]=""
  return "$rc"
}

# dcp_kill9 NAME: the crash case; no chance to clean up.
dcp_kill9() {
  local pid
  pid=$(dcp_pid "$1")
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  DCP_PIDS[$1]=""
}

# dcp_wait_http URL [SECONDS] [NAME]: wait until curl gets any HTTP answer from URL. With NAME,
# give up as soon as that process has exited (it will not start answering).
dcp_wait_http() {
  local url=$1 seconds=${2:-30} name=${3:-} deadline
  deadline=$((SECONDS + seconds))
  while :; do
    if curl -s -o /dev/null --max-time 2 "$url"; then
      return 0
    fi
    if [ -n "$name" ] && ! dcp_running "$name"; then
      dcp_die "$name exited before $url answered (log: ${DCP_LOGS[$name]})"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      dcp_die "no HTTP answer from $url within ${seconds}s"
    fi
    sleep 0.1
  done
}

# dcp__export NAME SUFFIX VALUE: export NAME_SUFFIX and its upper-case twin.
dcp__export() {
  local upper
  upper=$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')
  printf -v "${1}_$2" '%s' "$3"
  export "${1}_$2"
  if [ "$upper" != "$1" ]; then
    printf -v "${upper}_$2" '%s' "$3"
    export "${upper}_$2"
  fi
}

dcp__random() { openssl rand -hex "${1:-16}"; }

# ---------------------------------------------------------------------------------------------
# upstream registries (Debian's docker-registry, distribution 2.8)

# dcp_start_upstream NAME [none|htpasswd|token]: a fresh registry with its own storage.
# Exports NAME_PORT, NAME_URL, NAME_LOG; htpasswd and token also NAME_USER, NAME_PASSWORD;
# token also NAME_TOKEN_URL (the realm), NAME_TOKEN_LOG (one line per token request) and
# NAME_CA (the certificate that signs tokens).
dcp_start_upstream() {
  local name=$1 kind=${2:-none} dir port cfg auth=""
  dir="$DCP_TMP/$name"
  mkdir -p "$dir/storage"
  port=$(dcp_free_port)
  cfg="$dir/config.yml"
  DCP_UP_USER[$name]=""
  DCP_UP_PASSWORD[$name]=""

  case "$kind" in
    none) ;;
    htpasswd)
      DCP_UP_USER[$name]=dcpuser
      DCP_UP_PASSWORD[$name]=$(dcp__random 12)
      htpasswd -Bbc "$dir/htpasswd" dcpuser "${DCP_UP_PASSWORD[$name]}" 2>/dev/null
      auth="auth:
  htpasswd:
    realm: dcp-test
    path: $dir/htpasswd"
      ;;
    token)
      DCP_UP_USER[$name]=dcpuser
      DCP_UP_PASSWORD[$name]=$(dcp__random 12)
      dcp__start_token_server "$name" "$dir"
      auth="auth:
  token:
    realm: ${DCP_TOKEN_REALM}
    service: dcp-registry-$name
    issuer: dcp-token-issuer
    rootcertbundle: $dir/token.crt"
      ;;
    *) dcp_die "dcp_start_upstream: unknown auth kind '$kind'" ;;
  esac

  # The access log (combined format on stdout) is what dcp_upstream_requests counts.
  cat >"$cfg" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $(dcp__random 16)
$auth
EOF

  DCP_UP_CONFIG[$name]=$cfg
  DCP_UP_PORT[$name]=$port
  dcp__export "$name" PORT "$port"
  dcp__export "$name" URL "http://127.0.0.1:$port"
  dcp__export "$name" LOG "$DCP_TMP/$name.log"
  dcp__export "$name" USER "${DCP_UP_USER[$name]}"
  dcp__export "$name" PASSWORD "${DCP_UP_PASSWORD[$name]}"
  dcp__run_upstream "$name"
}

dcp__run_upstream() {
  local name=$1
  dcp_spawn "$name" "$DCP_TMP/$name.log" /usr/bin/docker-registry serve "${DCP_UP_CONFIG[$name]}"
  dcp_wait_http "http://127.0.0.1:${DCP_UP_PORT[$name]}/v2/" 30 "$name"
}

# The token server signs with a key whose self-signed certificate is the registry's
# rootcertbundle; the registry checks the x5c chain of each token against that bundle.
dcp__start_token_server() {
  local name=$1 dir=$2 port
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=dcp-token-issuer" \
    -keyout "$dir/token.key" -out "$dir/token.crt" 2>/dev/null
  printf '%s:%s\n' "${DCP_UP_USER[$name]}" "${DCP_UP_PASSWORD[$name]}" >"$dir/token-users"
  port=$(dcp_free_port)
  dcp_spawn "${name}_token" "$DCP_TMP/${name}_token.log" python3 "$DCP_TOOLS_DIR/token_server.py" \
    --addr 127.0.0.1 --port "$port" --key "$dir/token.key" --cert "$dir/token.crt" \
    --issuer dcp-token-issuer --service "dcp-registry-$name" --users "$dir/token-users"
  dcp_wait_http "http://127.0.0.1:$port/healthz" 30 "${name}_token"
  DCP_TOKEN_REALM="http://127.0.0.1:$port/token"
  dcp__export "$name" TOKEN_URL "$DCP_TOKEN_REALM"
  dcp__export "$name" TOKEN_LOG "$DCP_TMP/${name}_token.log"
  dcp__export "$name" CA "$dir/token.crt"
}

dcp_stop_upstream() { dcp_stop "$1"; }

# dcp_restart_upstream NAME: same port, storage and log (appended), so counts carry on.
dcp_restart_upstream() {
  dcp_stop "$1"
  dcp__run_upstream "$1"
}

# dcp_upstream_creds NAME: "user:password" for skopeo --creds, empty when anonymous.
dcp_upstream_creds() {
  [ -n "${DCP_UP_USER[$1]:-}" ] && printf '%s:%s\n' "${DCP_UP_USER[$1]}" "${DCP_UP_PASSWORD[$1]}"
  return 0
}

# dcp__barrier NAME: make sure every request answered so far is in the access log. The
# registry writes a line after the handler returns, which can be just after the client has the
# answer; a marker request sent now and seen in the log proves the earlier lines are there.
dcp__barrier() {
  local name=$1 port=${DCP_UP_PORT[$1]} marker i
  dcp_running "$name" || return 0 # stopped: its log is complete
  DCP_BARRIER_SEQ=$((DCP_BARRIER_SEQ + 1))
  marker="/v2/_dcp_barrier/$DCP_BARRIER_SEQ/tags/list"
  curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$port$marker" || true
  for ((i = 0; i < 200; i++)); do
    grep -qF "\"GET $marker HTTP" "$DCP_TMP/$name.log" && return 0
    sleep 0.05
  done
  dcp_die "upstream $name never logged the barrier request $marker"
}

# dcp_upstream_requests NAME METHOD PATH_REGEX: how many requests with that method and a path
# (query string removed) matching the extended regex PATH_REGEX the upstream has answered.
dcp_upstream_requests() {
  local name=$1 method=$2 regex=$3
  [ -n "${DCP_UP_PORT[$name]:-}" ] || dcp_die "dcp_upstream_requests: no upstream named $name"
  dcp__barrier "$name"
  dcp__count_access_log "$DCP_TMP/$name.log" "$method" "$regex"
}

# Combined log format: 127.0.0.1 - - [date] "GET /v2/x?y HTTP/1.1" 200 2 "" "agent"
dcp__count_access_log() {
  awk -v m="$2" -v re="$3" '
    match($0, /\] "[A-Z]+ [^ ]+ HTTP\/[0-9.]+" [0-9]+ /) {
      split(substr($0, RSTART + 3, RLENGTH - 3), f, " ")
      path = f[2]; sub(/\?.*/, "", path)
      if (f[1] == m && path !~ /^\/v2\/_dcp_barrier\// && path ~ re) n++
    }
    END { print n + 0 }' "$1"
}

# dcp_upstream_log_has NAME REGEX: true when any access-log request line (method and full
# URI, query included) matches REGEX. For "the upstream never saw X" checks.
dcp_upstream_log_has() {
  dcp__barrier "$1"
  grep -E '\] "[A-Z]+ [^ ]+ HTTP/' "$DCP_TMP/$1.log" | grep -v '_dcp_barrier' |
    sed -E 's/.*\] "([A-Z]+ [^ ]+) HTTP.*/\1/' | grep -Eq -- "$2"
}

# dcp_start_forwarder NAME UPSTREAM_URL [corrupting_proxy.py flags...]: the misbehaving
# forwarder of tools/corrupting_proxy.py on a free port. Exports NAME_PORT, NAME_URL, NAME_LOG
# and NAME_RELEASE (the file whose creation ends a --hold-after pause; the flag is added here
# when the caller gives --hold-after).
dcp_start_forwarder() {
  local name=$1 upstream=$2 port release
  shift 2
  port=$(dcp_free_port)
  release="$DCP_TMP/$name.release"
  local -a extra=()
  case " $* " in *" --hold-after "*) extra=(--release-file "$release") ;; esac
  dcp__export "$name" PORT "$port"
  dcp__export "$name" URL "http://127.0.0.1:$port"
  dcp__export "$name" LOG "$DCP_TMP/$name.log"
  dcp__export "$name" RELEASE "$release"
  dcp_spawn "$name" "$DCP_TMP/$name.log" python3 "$DCP_TOOLS_DIR/corrupting_proxy.py" \
    --port "$port" --upstream "$upstream" "${extra[@]}" "$@"
  dcp_wait_http "http://127.0.0.1:$port/v2/" 30 "$name"
}

# dcp_wait_log FILE ERE [SECONDS] [NAME]: wait until a line of FILE matches ERE. A bounded
# wait for a state the test needs, not a measurement.
dcp_wait_log() {
  local file=$1 regex=$2 seconds=${3:-60} name=${4:-} deadline
  deadline=$((SECONDS + seconds))
  until grep -Eq -- "$regex" "$file" 2>/dev/null; do
    if [ -n "$name" ] && ! dcp_running "$name"; then
      dcp_die "$name exited while waiting for /$regex/ in $file"
    fi
    [ "$SECONDS" -lt "$deadline" ] || dcp_die "no line matching /$regex/ in $file within ${seconds}s"
    sleep 0.05
  done
}

# ---------------------------------------------------------------------------------------------
# test images

# dcp_make_images: generate the image set once per test into $DCP_TMP/images.
dcp_make_images() {
  [ -f "$DCP_TMP/images/images.json" ] && return 0
  # shellcheck disable=SC2086 # DCP_IMAGE_ARGS holds several options
  python3 "$DCP_TOOLS_DIR/make_images.py" --out "$DCP_TMP/images" --seed "$DCP_IMAGE_SEED" \
    --busybox /bin/busybox ${DCP_IMAGE_ARGS:-} >/dev/null
}

# dcp_load_images NAME: push every generated image to upstream NAME and write
# $DCP_TMP/images.json. Checks that the registry now serves the digests we generated.
dcp_load_images() {
  local name=$1 url creds ref src all digest n i
  dcp_make_images
  url="127.0.0.1:${DCP_UP_PORT[$name]}"
  creds=$(dcp_upstream_creds "$name")
  local -a cred_args=()
  [ -n "$creds" ] && cred_args=(--dest-creds "$creds")
  n=$(jq '.images | length' "$DCP_TMP/images/images.json")
  for ((i = 0; i < n; i++)); do
    ref=$(jq -r ".images[$i].reference" "$DCP_TMP/images/images.json")
    src=$(jq -r ".images[$i].source" "$DCP_TMP/images/images.json")
    all=$(jq -r ".images[$i].platforms | length" "$DCP_TMP/images/images.json")
    local -a all_args=()
    [ "$all" -gt 1 ] && all_args=(--all)
    skopeo copy --quiet --dest-tls-verify=false "${cred_args[@]}" "${all_args[@]}" \
      "$src" "docker://$url/$ref" ||
      dcp_die "skopeo could not push $ref to upstream $name"
  done
  cp "$DCP_TMP/images/images.json" "$DCP_TMP/images.json"

  # The pushed bytes must be the generated bytes, or every digest check later is moot.
  local -a src_creds=()
  [ -n "$creds" ] && src_creds=(--creds "$creds")
  for ((i = 0; i < n; i++)); do
    ref=$(jq -r ".images[$i].reference" "$DCP_TMP/images.json")
    digest=$(skopeo inspect --raw --tls-verify=false "${src_creds[@]}" "docker://$url/$ref" |
      sha256sum | cut -d' ' -f1)
    dcp_assert_eq "sha256:$digest" "$(dcp_image_field "$ref" digest)" \
      "manifest digest of $ref on upstream $name"
  done
  dcp_log "loaded $n images into $name"
}

# dcp_image_field REF JQ_FIELD: a field of one image in images.json, e.g. digest, media_type.
dcp_image_field() {
  jq -r --arg r "$1" ".images[] | select(.reference == \$r) | .$2" "$DCP_TMP/images.json"
}

# dcp_image_refs: every reference in images.json, one a line.
dcp_image_refs() { jq -r '.images[].reference' "$DCP_TMP/images.json"; }

# dcp_image_blob REF: digest of the largest layer of the first platform (a handy blob).
dcp_image_blob() {
  jq -r --arg r "$1" '.images[] | select(.reference == $r) | .platforms[0].layers
    | max_by(.size) | .digest' "$DCP_TMP/images.json"
}

# dcp_blob_file DIGEST: path of the generated blob with that digest.
dcp_blob_file() {
  local f="$DCP_TMP/images/oci/blobs/sha256/${1#sha256:}"
  [ -f "$f" ] || dcp_die "no generated blob $1"
  printf '%s\n' "$f"
}

# dcp_check_dir DIR REF [PLATFORM_INDEX]: DIR, written by `skopeo copy ... dir:DIR`, holds
# exactly the generated bytes of that platform of REF: the manifest and every layer and the
# config, each file hashing to its digest and equal to the generated blob.
dcp_check_dir() {
  local dir=$1 ref=$2 idx=${3:-0} digest
  local q=".images[] | select(.reference == \"$ref\") | .platforms[$idx]"
  [ -n "$(jq -r "$q | .digest" "$DCP_TMP/images.json")" ] || dcp_die "no image ${ref}[${idx}]"
  if [ ! -f "$dir/manifest.json" ]; then
    dcp_fail "${ref}[${idx}]: nothing pulled into $dir"
    return 0
  fi
  dcp_assert_eq "sha256:$(dcp_sha256 "$dir/manifest.json")" \
    "$(jq -r "$q | .digest" "$DCP_TMP/images.json")" "manifest of ${ref}[${idx}] in $dir"
  for digest in $(jq -r "$q | .config.digest, .layers[].digest" "$DCP_TMP/images.json"); do
    [ -f "$dir/${digest#sha256:}" ] || dcp_fail "${ref}[${idx}]: blob $digest missing from $dir"
    dcp_assert_eq "sha256:$(dcp_sha256 "$dir/${digest#sha256:}")" "$digest" \
      "${ref}[${idx}]: content of blob in $dir"
    cmp -s "$dir/${digest#sha256:}" "$(dcp_blob_file "$digest")" ||
      dcp_fail "${ref}[${idx}]: blob $digest differs from the generated one"
  done
}

# dcp_raw_digest DOCKER_REF [skopeo args]: digest of the manifest bytes skopeo gets for a
# docker:// reference (no TLS: all our peers are plain HTTP on loopback).
dcp_raw_digest() {
  local ref=$1 raw
  shift
  raw="$DCP_TMP/raw.$$"
  skopeo inspect --raw --tls-verify=false "$@" "docker://$ref" >"$raw" ||
    dcp_die "skopeo inspect --raw docker://$ref failed"
  printf 'sha256:%s\n' "$(dcp_sha256 "$raw")"
  rm -f "$raw"
}

# ---------------------------------------------------------------------------------------------
# the proxy under test

# dcp_proxy_config NAME STORAGE_DIR UPSTREAM_SPEC...: write $DCP_TMP/NAME.yaml (and print its
# path) for a proxy on a fresh port. UPSTREAM_SPEC is
# clientname=url[,username=U,password=P,tag_ttl=5m,default=true,...].
dcp_proxy_config() {
  local name=$1 storage=$2 port file spec client rest kv key val
  shift 2
  port=$(dcp_free_port)
  file="$DCP_TMP/$name.yaml"
  mkdir -p "$storage"
  {
    echo "log: {level: $DCP_PROXY_LOG_LEVEL}"
    echo "http: {addr: \"127.0.0.1:$port\"}"
    echo "storage: {root: \"$storage\"}"
    echo "upstreams:"
    for spec in "$@"; do
      client=${spec%%=*}
      rest=${spec#*=}
      local -a parts=()
      IFS=, read -r -a parts <<<"$rest"
      printf '  - name: "%s"\n    url: "%s"\n' "$client" "${parts[0]}"
      for kv in "${parts[@]:1}"; do
        key=${kv%%=*}
        val=${kv#*=}
        case "$val" in
          true | false | [0-9] | [1-9][0-9]*) printf '    %s: %s\n' "$key" "$val" ;;
          *) printf '    %s: "%s"\n' "$key" "$val" ;;
        esac
      done
    done
  } >"$file"
  printf '%s\n' "$file"
}

# dcp_start_proxy NAME CONFIG_YAML_FILE: start the proxy and wait for GET /v2/ to answer.
# Exports NAME_PORT, NAME_URL, NAME_LOG.
dcp_start_proxy() {
  local name=$1 cfg=$2 addr port
  [ -x "$DCP_PROXY_BIN" ] || dcp_die "proxy binary not found: $DCP_PROXY_BIN (set DCP_PROXY_BIN)"
  addr=$(sed -nE 's/^http: *\{ *addr: *"?([^"}]+)"?.*/\1/p' "$cfg")
  port=${addr##*:}
  [ -n "$port" ] || dcp_die "dcp_start_proxy: no http.addr in $cfg"
  DCP_PROXY_CONFIG[$name]=$cfg
  dcp__export "$name" PORT "$port"
  dcp__export "$name" URL "http://127.0.0.1:$port"
  dcp__export "$name" LOG "$DCP_TMP/$name.log"
  dcp_spawn "$name" "$DCP_TMP/$name.log" "$DCP_PROXY_BIN" --config "$cfg"
  dcp_wait_http "http://127.0.0.1:$port/v2/" 30 "$name"
}

# dcp_start_recorder NAME: a healthchecks.io look-alike (tools/certmgr_ping_recorder.py) on a
# free port, recording every ping as a JSON line; exports NAME_PORT and NAME_PINGS (the file).
dcp_start_recorder() {
  local name=$1 port
  port=$(dcp_free_port)
  dcp__export "$name" PORT "$port"
  dcp__export "$name" PINGS "$DCP_TMP/$name.jsonl"
  : >"$DCP_TMP/$name.jsonl"
  dcp_spawn "$name" "$DCP_TMP/$name.log" python3 "$DCP_TOOLS_DIR/certmgr_ping_recorder.py" \
    --port "$port" --out "$DCP_TMP/$name.jsonl"
  dcp_wait_http "http://127.0.0.1:$port/healthz" 30 "$name"
}

# dcp_restart_proxy NAME: same config, storage and log.
dcp_restart_proxy() {
  dcp_stop "$1"
  dcp_start_proxy "$1" "${DCP_PROXY_CONFIG[$1]}"
}

# dcp_proxy_requests NAME METHOD PATH_REGEX [SOURCE]: requests in the proxy's access log
# (debug level) with that method, a path matching PATH_REGEX (query removed) and, if given,
# source=cache|upstream.
dcp_proxy_requests() {
  dcp_log_requests "$DCP_TMP/$1.log" "$2" "$3" "${4:-}"
}

# dcp_log_requests LOG METHOD PATH_REGEX [SOURCE_REGEX]: the same for any file holding the
# proxy's access lines (a container's log); SOURCE_REGEX must match the whole source.
dcp_log_requests() {
  awk -v m="$2" -v re="$3" -v src="${4:-}" '
    /access: request served:/ {
      meth = ""; path = ""; s = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^method=/) meth = substr($i, 8)
        else if ($i ~ /^path=/) path = substr($i, 6)
        else if ($i ~ /^source=/) s = substr($i, 8)
      }
      sub(/\?.*/, "", path)
      if (meth == m && path ~ re && (src == "" || s ~ ("^(" src ")$"))) n++
    }
    END { print n + 0 }' "$1"
}

# ---------------------------------------------------------------------------------------------
# small HTTP helpers

# dcp_http METHOD URL [curl args...]: prints the status code; body in $DCP_TMP/body, headers
# in $DCP_TMP/headers (CRs removed).
dcp_http() {
  local method=$1 url=$2 code
  shift 2
  local -a verb=(-X "$method")
  [ "$method" = HEAD ] && verb=(--head)
  [ "$method" = GET ] && verb=()
  rm -f "$DCP_TMP/headers.raw" "$DCP_TMP/body"
  code=$(curl -s --max-time 60 "${verb[@]}" -D "$DCP_TMP/headers.raw" \
    -o "$DCP_TMP/body" -w '%{http_code}' "$@" "$url") || true
  # curl --head writes the headers to -o; a HEAD answer has no body to keep.
  if [ "$method" = HEAD ] || [ ! -f "$DCP_TMP/body" ]; then : >"$DCP_TMP/body"; fi
  tr -d '\r' <"$DCP_TMP/headers.raw" >"$DCP_TMP/headers" 2>/dev/null || : >"$DCP_TMP/headers"
  printf '%s\n' "${code:-000}" | tee "$DCP_TMP/status"
}

# dcp_header NAME: value of a header of the last dcp_http answer (case-insensitive name).
dcp_header() {
  awk -v h="$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" '
    { i = index($0, ":"); if (i == 0) next
      k = tolower(substr($0, 1, i - 1)); v = substr($0, i + 1); sub(/^ +/, "", v)
      if (k == h) last = v }
    END { if (last != "") print last }' "$DCP_TMP/headers"
}

# dcp_assert_oci_error STATUS_ERE CODE_ERE MSG: the last dcp_http answer has a status matching
# STATUS_ERE and an OCI error body whose errors[0].code matches CODE_ERE.
dcp_assert_oci_error() {
  local status=$1 code_re=$2 msg=$3 got code
  got=$(cat "$DCP_TMP/status" 2>/dev/null || echo 000)
  dcp_assert_match "$got" "^($status)\$" "$msg: status"
  if ! code=$(jq -r '.errors[0].code // empty' "$DCP_TMP/body" 2>/dev/null); then
    dcp_fail "$msg: body is not JSON: $(head -c 300 "$DCP_TMP/body")"
    return 0
  fi
  if [ -z "$code" ]; then
    dcp_fail "$msg: no errors[0].code in body: $(head -c 300 "$DCP_TMP/body")"
    return 0
  fi
  dcp_assert_match "$code" "^($code_re)\$" "$msg: error code"
}

dcp_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------------------------------------
# uptime-kuma's view (tools/uptime-kuma: the jsonata package uptime-kuma uses, from npm)

# dcp_kuma_setup: installs the monitor checker with `npm ci` (the committed lockfile) into
# $DCP_TMP/uptime-kuma, once per test.
dcp_kuma_setup() {
  local dir="$DCP_TMP/uptime-kuma"
  [ -d "$dir/node_modules/jsonata" ] && return 0
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    dcp_die "node and npm are needed (scripts/install-deps.sh installs them)"
  fi
  mkdir -p "$dir"
  cp "$DCP_TOOLS_DIR/uptime-kuma/package.json" "$DCP_TOOLS_DIR/uptime-kuma/package-lock.json" \
    "$DCP_TOOLS_DIR/uptime-kuma/check_monitors.js" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >"$dir/npm.log" 2>&1) ||
    dcp_die "npm ci for the uptime-kuma checker failed: $(tail -n 5 "$dir/npm.log")"
}

# dcp_kuma_check ORIGIN [CA_FILE]: judges every monitor of docs/monitoring.md against ORIGIN
# (https://127.0.0.1:PORT) as uptime-kuma does, trusting CA_FILE through NODE_EXTRA_CA_CERTS
# as uptime-kuma would; prints one "UP|DOWN ..." line per monitor and uptime-kuma version.
dcp_kuma_check() {
  dcp_kuma_setup
  local -a ca=()
  [ -n "${2:-}" ] && ca=(NODE_EXTRA_CA_CERTS="$2")
  env -u NODE_EXTRA_CA_CERTS "${ca[@]}" node "$DCP_TMP/uptime-kuma/check_monitors.js" \
    --doc "$DCP_REPO_ROOT/docs/monitoring.md" --origin "$1" ||
    dcp_die "check_monitors.js could not judge the monitors of docs/monitoring.md"
}
