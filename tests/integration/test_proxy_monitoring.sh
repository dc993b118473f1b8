#!/usr/bin/env bash
# The proxy's monitoring side: /healthz, /readyz, the /status document, Prometheus /metrics,
# the heartbeat to a healthchecks.io-style URL, and the uptime-kuma monitors of
# docs/monitoring.md judged the way uptime-kuma 2.x and 1.23 judge them.
#
# Proves: every documented /status field is there with the right type and value (version, each
# upstream's reachability, last error and Docker Hub's ratelimit-remaining, cache size and object
# counts, hits and misses); every documented metric is exported; the documented monitors are UP
# over HTTPS when uptime-kuma trusts the LAN CA through NODE_EXTRA_CA_CERTS, and DOWN without it;
# with the upstream stopped the Json Query monitor goes DOWN (status "degraded") while the HTTP
# monitor stays UP, and both recover with the upstream; the heartbeat pings /start then success
# while the self-check passes; a full cache turns /readyz into 503 and the heartbeat into /fail
# with the reason.
source "$(dirname "$0")/lib.sh"
dcp_setup

: "${DCP_CERTMGR_BIN:=$DCP_REPO_ROOT/build/release/certificate-manager/certificate-manager}"
[ -x "$DCP_CERTMGR_BIN" ] || dcp_die "certificate-manager not found: $DCP_CERTMGR_BIN"

dcp_start_recorder recorder
rec_port=$recorder_PORT
pings=$recorder_PINGS

# The upstream behind a forwarder that adds Docker Hub's rate-limit headers to manifests.
dcp_start_upstream hub
dcp_load_images hub
dcp_start_forwarder hubfw "$HUB_URL" \
  --manifest-header 'ratelimit-limit: 100;w=21600' --manifest-header 'ratelimit-remaining: 76;w=21600'

certs="$DCP_TMP/certs"
CERTMGR_OUTPUT_DIR="$certs" "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/certmgr.log" 2>&1 ||
  dcp_die "certificate-manager could not make the LAN CA: $(tail -n 5 "$DCP_TMP/certmgr.log")"

admin_password=$(dcp__random 12)
htpasswd -bcB -C 5 "$DCP_TMP/admin.htpasswd" admin "$admin_password" 2>/dev/null
tls_port=$(dcp_free_port)
origin="https://localhost:$tls_port"
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$HUBFW_URL,default=true,tag_ttl=0s")
DCP_TLS_ADDR="127.0.0.1:$tls_port" DCP_TLS_CERTIFICATE="$certs/tls.crt" \
  DCP_TLS_KEY="$certs/tls.key" DCP_ADMIN_HTPASSWD="$DCP_TMP/admin.htpasswd" \
  DCP_HEARTBEAT_INTERVAL=1s HOMELAB_HEALTHCHECK_URL="http://127.0.0.1:$rec_port/ping/proxy" \
  dcp_start_proxy proxy "$cfg"

# pull REF: the whole image through the proxy (skopeo, no TLS on the plain port).
pull() {
  rm -rf "$DCP_TMP/pulled"
  skopeo copy --quiet --src-tls-verify=false "docker://127.0.0.1:$PROXY_PORT/$1" \
    "dir:$DCP_TMP/pulled" >"$DCP_TMP/skopeo.out" 2>&1
}

# kuma ORIGIN [CA]: the verdicts, "UP|DOWN <what>" per monitor and version, one a line.
kuma() {
  dcp_kuma_check "$@" >"$DCP_TMP/kuma.out"
  cat "$DCP_TMP/kuma.out" >&2
  sed -E 's#^(UP|DOWN) (.*) (https?://[^ ]+)( kuma-[0-9.x]+)?.*#\1 \3\4#' "$DCP_TMP/kuma.out" |
    sed -E "s#https?://[^/]+##" | paste -sd,
}

# --- health endpoints -----------------------------------------------------------------------------
code=$(dcp_http GET "$PROXY_URL/healthz")
dcp_assert_eq "$code $(cat "$DCP_TMP/body")" "200 ok" "/healthz"
code=$(dcp_http GET "$PROXY_URL/readyz")
dcp_assert_eq "$code $(cat "$DCP_TMP/body")" "200 ok" "/readyz"
code=$(dcp_http GET "$origin/readyz" --cacert "$certs/ca.crt")
dcp_assert_eq "$code" 200 "/readyz over HTTPS trusting the LAN CA"
dcp_pass "/healthz and /readyz answer 200 on both ports"

# --- /status --------------------------------------------------------------------------------------
pull library/ocisingle:v1 || dcp_fail "pull of ocisingle:v1: $(cat "$DCP_TMP/skopeo.out")"
pull library/ocisingle:v1 || dcp_fail "second pull of ocisingle:v1: $(cat "$DCP_TMP/skopeo.out")"
code=$(dcp_http GET "$PROXY_URL/status")
dcp_assert_eq "$code" 200 "/status"
dcp_assert_eq "$(dcp_header Content-Type)" application/json "Content-Type of /status"
cp "$DCP_TMP/body" "$DCP_TMP/status.json"
st() { jq -r "$1" "$DCP_TMP/status.json"; }
dcp_assert_eq "$(st .status)" ok "status"
dcp_assert_eq "docker-cache-proxy $(st .version)" "$("$DCP_PROXY_BIN" --version)" "version"
dcp_assert_eq "$(st '.uptime_seconds | type')" number "uptime_seconds"
dcp_assert_eq "$(st .ready),$(st .problem)" "true,null" "ready, problem"
dcp_assert_eq "$(st '.upstreams | map(.name) | join(" ")')" docker.io "upstream names"
dcp_assert_eq "$(st '.upstreams[0] | [.reachable, .last_error, .ratelimit_remaining] | tostring')" \
  '[true,null,76]' "reachable, last_error, ratelimit_remaining of docker.io"
blob_bytes=$(jq '[.images[] | select(.reference == "library/ocisingle:v1") | .platforms[0]
  | .config.size, (.layers[].size)] | add' "$DCP_TMP/images.json")
dcp_assert_ge "$(st .cache.bytes)" "$blob_bytes" "cache.bytes after pulling ocisingle:v1"
dcp_assert_eq "$(st .cache.blobs)" 3 "cache.blobs: a config and two layers"
dcp_assert_eq "$(st .cache.manifests)" 1 "cache.manifests"
dcp_assert_ge "$(st .requests.hits)" 3 "requests.hits: the second pull's blobs"
dcp_assert_ge "$(st .requests.misses)" 3 "requests.misses: the first pull's blobs"
dcp_pass "/status has every documented field with its value"

# --- /metrics -------------------------------------------------------------------------------------
code=$(dcp_http GET "$PROXY_URL/metrics" -u "admin:$admin_password")
dcp_assert_eq "$code" 200 "/metrics with the admin user"
dcp_assert_match "$(dcp_header Content-Type)" '^text/plain; version=0\.0\.4' "Content-Type of /metrics"
cp "$DCP_TMP/body" "$DCP_TMP/metrics.txt"
for series in 'dcp_requests_total{route="manifest",status="200"}' \
  'dcp_requests_total{route="blob",status="200"}' 'dcp_requests_total{route="monitoring",status="200"}' \
  'dcp_cache_hits_total{kind="blob"}' 'dcp_cache_misses_total{kind="blob"}' \
  'dcp_served_bytes_total{source="cache"}' 'dcp_served_bytes_total{source="upstream"}' \
  'dcp_upstream_requests_total{upstream="docker.io"}' 'dcp_upstream_errors_total{upstream="docker.io"}' \
  'dcp_upstream_ratelimit_remaining{upstream="docker.io"}' 'dcp_cache_size_bytes' \
  'dcp_cache_objects{kind="blob"}' 'dcp_cache_objects{kind="manifest"}'; do
  grep -qF "$series " "$DCP_TMP/metrics.txt" || dcp_fail "/metrics lacks $series"
done
# shellcheck disable=SC2016 # backquotes of the Markdown table, not a command
while read -r name; do
  grep -q "^# TYPE $name " "$DCP_TMP/metrics.txt" || dcp_fail "documented metric $name not exported"
done < <(sed -nE 's/^\| `(dcp_[a-z_]+)` \|.*/\1/p' "$DCP_REPO_ROOT/docs/monitoring.md")
dcp_assert_eq "$(awk '$1 == "dcp_upstream_ratelimit_remaining{upstream=\"docker.io\"}" { print $2 }' \
  "$DCP_TMP/metrics.txt")" 76 "dcp_upstream_ratelimit_remaining"
dcp_assert_eq "$(awk '$1 == "dcp_cache_objects{kind=\"blob\"}" { print $2 }' "$DCP_TMP/metrics.txt")" 3 \
  "dcp_cache_objects of kind blob"
dcp_pass "/metrics exports every documented metric"

# --- uptime-kuma ----------------------------------------------------------------------------------
verdicts=$(kuma "$origin" "$certs/ca.crt")
dcp_assert_eq "$verdicts" "UP /readyz,UP /status kuma-2.x,UP /status kuma-1.23" \
  "uptime-kuma monitors trusting the LAN CA"
verdicts=$(kuma "$origin")
dcp_assert_eq "$verdicts" "DOWN /readyz,DOWN /status" "uptime-kuma monitors without the LAN CA"
grep -q 'self-signed certificate\|unable to verify\|certificate' "$DCP_TMP/kuma.out" ||
  dcp_fail "without the CA the monitors fail for another reason than the certificate"
dcp_pass "the documented uptime-kuma monitors are UP over HTTPS with NODE_EXTRA_CA_CERTS"

# Upstream gone: tags are served stale, the proxy is degraded, the Json Query monitor says so.
dcp_stop hubfw
pull library/ocisingle:v1 || dcp_fail "pull of cached ocisingle:v1 with the upstream down"
verdicts=$(kuma "$origin" "$certs/ca.crt")
dcp_assert_eq "$verdicts" "UP /readyz,DOWN /status kuma-2.x,DOWN /status kuma-1.23" \
  "uptime-kuma monitors with the upstream down"
code=$(dcp_http GET "$PROXY_URL/status")
dcp_assert_eq "$(jq -r '.status, .upstreams[0].reachable' "$DCP_TMP/body" | paste -sd,)" \
  "degraded,false" "status and reachable with the upstream down"
dcp_assert_match "$(jq -r '.upstreams[0].last_error' "$DCP_TMP/body")" "manifests/v1 failed: .*port $HUBFW_PORT" \
  "last_error with the upstream down"
code=$(dcp_http GET "$PROXY_URL/metrics" -u "admin:$admin_password")
dcp_assert_ge "$(awk '$1 == "dcp_upstream_errors_total{upstream=\"docker.io\"}" { print $2 }' \
  "$DCP_TMP/body")" 1 "dcp_upstream_errors_total with the upstream down"
dcp_spawn hubfw "$HUBFW_LOG" python3 "$DCP_TOOLS_DIR/corrupting_proxy.py" --port "$HUBFW_PORT" \
  --upstream "$HUB_URL" --manifest-header 'ratelimit-remaining: 75;w=21600'
dcp_wait_http "$HUBFW_URL/v2/" 30 hubfw
pull library/ocisingle:v1 || dcp_fail "pull of ocisingle:v1 with the upstream back"
verdicts=$(kuma "$origin" "$certs/ca.crt")
dcp_assert_eq "$verdicts" "UP /readyz,UP /status kuma-2.x,UP /status kuma-1.23" \
  "uptime-kuma monitors with the upstream back"
dcp_pass "the Json Query monitor is DOWN while the upstream is unreachable, UP again after"

# --- heartbeat ------------------------------------------------------------------------------------
deadline=$((SECONDS + 15))
until [ "$(jq -r 'select(.path == "/ping/proxy") | .path' "$pings" | wc -l)" -ge 2 ]; do
  [ "$SECONDS" -lt "$deadline" ] || break
  sleep 0.2
done
dcp_assert_eq "$(jq -r .path "$pings" | head -n 3 | paste -sd' ')" \
  "/ping/proxy/start /ping/proxy /ping/proxy" "the heartbeat's first pings"
grep -q '/fail' "$pings" && dcp_fail "the heartbeat pinged /fail while healthy"
dcp_pass "the heartbeat pings /start, then success every interval"

# A cache that must keep more free space than its disk has: not ready, heartbeat /fail.
: >"$pings"
full_cfg=$(dcp_proxy_config full "$DCP_TMP/cache-full" "docker.io=$HUB_URL,default=true")
DCP_STORAGE_MIN_FREE=1000000GiB DCP_HEARTBEAT_INTERVAL=1s \
  HOMELAB_HEALTHCHECK_URL="http://127.0.0.1:$rec_port/ping/full" dcp_start_proxy full "$full_cfg"
code=$(dcp_http GET "$FULL_URL/readyz")
dcp_assert_eq "$code" 503 "/readyz of a full cache"
dcp_assert_match "$(cat "$DCP_TMP/body")" 'storage is full' "/readyz says why"
code=$(dcp_http GET "$FULL_URL/status")
dcp_assert_eq "$(jq -r '[.status, .ready, .problem] | join(",")' "$DCP_TMP/body")" \
  "degraded,false,storage is full" "status, ready, problem of a full cache"
deadline=$((SECONDS + 15))
until grep -q '"/ping/full/fail"' "$pings"; do
  [ "$SECONDS" -lt "$deadline" ] || break
  sleep 0.2
done
dcp_assert_eq "$(jq -r 'select(.path | startswith("/ping/full")) | .path' "$pings" | head -n 2 |
  paste -sd' ')" "/ping/full/start /ping/full/fail" \
  "pings of a full cache"
dcp_assert_match "$(jq -r 'select(.path == "/ping/full/fail") | .body' "$pings" | head -n 1)" \
  'self-check failed: storage is full' "the /fail body gives the reason"
grep -q '"/ping/full"' "$pings" && dcp_fail "a full cache pinged success"
verdicts=$(kuma "http://127.0.0.1:$FULL_PORT")
dcp_assert_eq "$verdicts" "DOWN /readyz,DOWN /status kuma-2.x,DOWN /status kuma-1.23" \
  "uptime-kuma monitors of a full cache"
dcp_pass "a full cache: /readyz 503, heartbeat /fail with the reason, monitors DOWN"
