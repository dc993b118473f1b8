#!/usr/bin/env bash
# The proxy as a process. Proves: with no configuration file, REGISTRY_HTTP_ADDR=:PORT listens
# on IPv4 and IPv6 at once (127.0.0.1 and [::1] both pull); --check-config exits 0 for a valid
# configuration, 78 for a bad one (naming the key and the value) and 64 for a bad command line,
# and starts nothing; SIGTERM stops accepting at once (new connections are refused), lets a
# running download finish with its whole body and exits 0; a transfer that outlasts
# http.shutdown_timeout is cut, and the proxy still exits 0 in bounded time.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

ACCEPT='application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json'

python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null ||
  dcp_die "this machine has no IPv6 loopback (::1): the dual-stack listener cannot be tested"

dcp_start_upstream up none
dcp_load_images up
blob=$(dcp_image_blob library/big:v1)
blob_size=$(stat -c %s "$(dcp_blob_file "$blob")")

# start_env_proxy NAME PORT [VAR=VALUE...]: the proxy with no configuration file at all, set up
# only by the reference registry's variables, as an existing docker-registry.env does. env -i
# keeps whatever the test runner has in its environment (DCP_*) out.
start_env_proxy() {
  local name=$1 port=$2
  shift 2
  dcp_spawn "$name" "$DCP_TMP/$name.log" env -i PATH="$PATH" \
    REGISTRY_HTTP_ADDR=":$port" \
    REGISTRY_PROXY_REMOTEURL="$up_URL" \
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$DCP_TMP/$name-cache" \
    DCP_LOG_LEVEL=debug DCP_STORAGE_MIN_FREE=0 "$@" "$DCP_PROXY_BIN"
  dcp_wait_http "http://127.0.0.1:$port/v2/" 30 "$name"
}

# ------------------------------------------------------------------------- IPv4 and IPv6
port=$(dcp_free_port)
start_env_proxy proxy "$port"
for host in 127.0.0.1 '[::1]'; do
  dcp_http GET "http://$host:$port/v2/" >/dev/null
  dcp_assert_eq "$(cat "$DCP_TMP/status")" 200 "GET /v2/ on $host:$port"
  dcp_http GET "http://$host:$port/v2/library/ocisingle/manifests/v1" -H "Accept: $ACCEPT" >/dev/null
  dcp_assert_eq "$(cat "$DCP_TMP/status")" 200 "manifest over $host:$port"
  dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/body")" "$(dcp_image_field library/ocisingle:v1 digest)" \
    "manifest digest over $host:$port"
done
dcp_pass "REGISTRY_HTTP_ADDR=:PORT with no configuration file answers on 127.0.0.1 and [::1]"

# --------------------------------------------------------------------------- --check-config
# check_config EXPECTED_STATUS LABEL ARGS...: run the real binary, keep stdout and stderr.
check_config() {
  local expected=$1 label=$2 rc=0
  shift 2
  env -i PATH="$PATH" "$@" >"$DCP_TMP/check.out" 2>"$DCP_TMP/check.err" || rc=$?
  dcp_assert_eq "$rc" "$expected" "$label: exit status (stderr: $(head -c 300 "$DCP_TMP/check.err"))"
}
check_port=$(dcp_free_port)
cat >"$DCP_TMP/good.yaml" <<EOF_YAML
http: {addr: "127.0.0.1:$check_port"}
storage: {root: "$DCP_TMP/check-cache"}
upstreams:
  - name: docker.io
    url: "$up_URL"
EOF_YAML
sed "s|url: \"$up_URL\"|url: \"ftp://nowhere.invalid\"|" "$DCP_TMP/good.yaml" >"$DCP_TMP/bad-url.yaml"
printf 'http: {addr: [1, 2]\n' >"$DCP_TMP/bad-yaml.yaml"

check_config 0 "valid file" "$DCP_PROXY_BIN" --check-config --config "$DCP_TMP/good.yaml"
dcp_assert_match "$(cat "$DCP_TMP/check.out")" '^configuration is valid' "valid file: message"
check_config 0 "no file at all (the defaults)" \
  REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$DCP_TMP/check-cache" "$DCP_PROXY_BIN" --check-config
check_config 78 "an upstream URL that is not http(s)" \
  "$DCP_PROXY_BIN" --check-config --config "$DCP_TMP/bad-url.yaml"
dcp_assert_match "$(cat "$DCP_TMP/check.err")" 'url' "bad URL: the message names the key"
dcp_assert_match "$(cat "$DCP_TMP/check.err")" 'ftp://nowhere\.invalid' "bad URL: and the value"
check_config 78 "a file that is not YAML" \
  "$DCP_PROXY_BIN" --check-config --config "$DCP_TMP/bad-yaml.yaml"
check_config 78 "a missing file" "$DCP_PROXY_BIN" --check-config --config "$DCP_TMP/none.yaml"
check_config 78 "a bad REGISTRY_HTTP_ADDR" REGISTRY_HTTP_ADDR=nowhere \
  "$DCP_PROXY_BIN" --check-config --config "$DCP_TMP/good.yaml"
dcp_assert_match "$(cat "$DCP_TMP/check.err")" 'REGISTRY_HTTP_ADDR' "bad address: names the variable"
check_config 64 "an unknown flag" "$DCP_PROXY_BIN" --check-config --no-such-flag
check_config 64 "a value on a flag that takes none" "$DCP_PROXY_BIN" --check-config=yes
check_config 64 "--config without its file" "$DCP_PROXY_BIN" --check-config --config
# Validation only: nothing listens, nothing is created.
if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$check_port/v2/"; then
  dcp_fail "--check-config left something listening on its address"
fi
[ ! -e "$DCP_TMP/check-cache" ] || dcp_fail "--check-config created the storage root"
dcp_pass "--check-config: 0 valid, 78 bad configuration (key and value named), 64 bad usage"

# -------------------------------------------------------------------------------- SIGTERM
# The blob is cached first, so the transfer below is the proxy's own and its pace is the
# client's: 50 MiB at 8 MiB/s takes about 6 s, well inside the default 30 s grace.
curl -sf -o /dev/null "http://127.0.0.1:$port/v2/library/big/blobs/$blob" ||
  dcp_die "could not cache the big blob"
dcp_spawn slow "$DCP_TMP/slow.log" curl -sS --limit-rate 8M -o "$DCP_TMP/slow.out" \
  -w '%{http_code}\n' "http://[::1]:$port/v2/library/big/blobs/$blob"
deadline=$((SECONDS + 30))
until [ "$(stat -c %s "$DCP_TMP/slow.out" 2>/dev/null || echo 0)" -gt 1048576 ]; do
  [ "$SECONDS" -lt "$deadline" ] || dcp_die "the slow download never started"
  sleep 0.1
done
pid=$(dcp_pid proxy)
kill -TERM "$pid"
dcp_wait_log "$DCP_TMP/proxy.log" 'stopping: signal=15' 10 proxy

# New connections are refused (curl exit 7) on both families while the download still runs.
for host in 127.0.0.1 '[::1]'; do
  deadline=$((SECONDS + 5))
  while :; do
    rc=0
    curl -s -o /dev/null --max-time 2 "http://$host:$port/v2/" || rc=$?
    [ "$rc" -eq 7 ] && break
    [ "$SECONDS" -lt "$deadline" ] || {
      dcp_fail "a new connection to $host:$port after SIGTERM was not refused (curl exit $rc)"
      break
    }
    sleep 0.1
  done
done
dcp_running slow || dcp_fail "the download ended before new connections were checked"

rc=0
dcp_wait proxy || rc=$?
dcp_assert_eq "$rc" 0 "exit status after SIGTERM"
rc=0
dcp_wait slow || rc=$?
dcp_assert_eq "$rc" 0 "curl exit status of the download running at SIGTERM"
dcp_assert_eq "$(cat "$DCP_TMP/slow.log")" 200 "status of the download running at SIGTERM"
dcp_assert_eq "$(stat -c %s "$DCP_TMP/slow.out")" "$blob_size" "bytes of the download"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/slow.out")" "$blob" "digest of the download"
grep -q 'info proxy: stopped' "$DCP_TMP/proxy.log" || dcp_fail "no 'stopped' line in the proxy log"
dcp_pass "SIGTERM: new connections refused, the running download finishes whole, exit 0"

# A transfer longer than the grace is cut when it runs out; the exit stays prompt and clean.
port=$(dcp_free_port)
cfg="$DCP_TMP/short-grace.yaml"
cat >"$cfg" <<EOF_YAML
log: {level: debug}
http: {addr: "127.0.0.1:$port", shutdown_timeout: 2s}
storage: {root: "$DCP_TMP/proxy2-cache", min_free: 0}
upstreams:
  - name: docker.io
    url: "$up_URL"
EOF_YAML
dcp_spawn proxy2 "$DCP_TMP/proxy2.log" "$DCP_PROXY_BIN" --config "$cfg"
dcp_wait_http "http://127.0.0.1:$port/v2/" 30 proxy2
curl -sf -o /dev/null "http://127.0.0.1:$port/v2/library/big/blobs/$blob" ||
  dcp_die "could not cache the big blob in proxy2"
dcp_spawn crawl "$DCP_TMP/crawl.log" curl -sS --limit-rate 1M -o "$DCP_TMP/crawl.out" \
  "http://127.0.0.1:$port/v2/library/big/blobs/$blob"
until [ "$(stat -c %s "$DCP_TMP/crawl.out" 2>/dev/null || echo 0)" -gt 0 ]; do sleep 0.1; done
pid=$(dcp_pid proxy2)
kill -TERM "$pid"
started=$SECONDS
while dcp_running proxy2 && [ "$((SECONDS - started))" -lt 20 ]; do sleep 0.1; done
dcp_running proxy2 && dcp_fail "the proxy did not exit within 20 s of SIGTERM with a 2 s grace"
rc=0
dcp_wait proxy2 || rc=$?
dcp_assert_eq "$rc" 0 "exit status after a grace that ran out"
grep -q 'shutdown grace over' "$DCP_TMP/proxy2.log" ||
  dcp_fail "no warning that the grace ran out with a transfer still running"
rc=0
dcp_wait crawl || rc=$?
[ "$rc" -ne 0 ] || dcp_fail "a download far longer than the grace ended successfully"
[ "$(stat -c %s "$DCP_TMP/crawl.out")" -lt "$blob_size" ] ||
  dcp_fail "the cut download has every byte"
dcp_pass "SIGTERM with a 2 s grace: the long transfer is cut, exit 0 within bounds"
