#!/usr/bin/env bash
# admin-setup against a real proxy (HTTPS with a LAN CA from certificate-manager, pull users
# and an admin user) and a docker-registry upstream.
#
# Proves: before admin-setup the protected endpoints refuse with 401 and the proxy's log says
# why; admin-setup writes bcrypt htpasswd files the proxy then accepts (and Apache's htpasswd
# verifies); warm-up fills the cache, so a later pull of the warmed images costs the upstream no
# request at all, and a platform filter fetches only that platform; the end-to-end check runs
# over HTTP and over HTTPS trusting the LAN CA (a wrong CA makes it fail); the client
# configuration it writes works as written (containerd with its hosts directory pulls over HTTPS
# with the CA file it names); healthchecks pings: /start then success with the summary, /start
# then /fail with the log tail; a second run changes no file and costs the upstream nothing; a
# changed admin password replaces the old one in the running proxy.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_clients.sh"
dcp_setup

: "${DCP_ADMIN_BIN:=$DCP_REPO_ROOT/build/release/admin-setup/admin-setup}"
: "${DCP_CERTMGR_BIN:=$DCP_REPO_ROOT/build/release/certificate-manager/certificate-manager}"
[ -x "$DCP_ADMIN_BIN" ] || dcp_die "admin-setup binary not found: $DCP_ADMIN_BIN (set DCP_ADMIN_BIN)"
[ -x "$DCP_CERTMGR_BIN" ] || dcp_die "certificate-manager not found: $DCP_CERTMGR_BIN"

# --- peers: ping recorder, upstream with the generated images, LAN CA, proxy ---------------------
dcp_start_recorder recorder
rec_port=$recorder_PORT
pings=$recorder_PINGS
admin_check="/ping/0a0a0a0a-0000-4000-8000-00000000ad01"
proxy_check="/ping/0a0a0a0a-0000-4000-8000-00000000b0b1"

dcp_start_upstream hub
dcp_load_images hub

certs="$DCP_TMP/certs"
CERTMGR_OUTPUT_DIR="$certs" "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/certmgr.log" 2>&1 ||
  dcp_die "certificate-manager could not make the LAN CA: $(tail -n 5 "$DCP_TMP/certmgr.log")"

creds="$DCP_TMP/credentials"
mkdir -p "$creds"
tls_port=$(dcp_free_port)
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$HUB_URL,default=true")
DCP_TLS_ADDR="127.0.0.1:$tls_port" DCP_TLS_CERTIFICATE="$certs/tls.crt" \
  DCP_TLS_KEY="$certs/tls.key" DCP_AUTH_HTPASSWD="$creds/htpasswd" \
  DCP_ADMIN_HTPASSWD="$creds/admin.htpasswd" DCP_HEARTBEAT_INTERVAL=2s \
  HOMELAB_HEALTHCHECK_URL="http://127.0.0.1:$rec_port$proxy_check" \
  dcp_start_proxy proxy "$cfg"

# --- before admin-setup: the protected endpoints are closed, and the log says why ----------------
code=$(dcp_http GET "$PROXY_URL/metrics")
dcp_assert_eq "$code" 401 "/metrics before the admin user exists"
code=$(dcp_http GET "$PROXY_URL/metrics" -u admin:guess)
dcp_assert_eq "$code" 401 "/metrics with made-up credentials before the admin user exists"
dcp_wait_log "$PROXY_LOG" 'protected endpoint refused, admin users not provisioned yet' 10 proxy
dcp_pass "before admin-setup: /metrics answers 401 and the proxy logs why"

# --- first run ------------------------------------------------------------------------------------
client="$DCP_TMP/client-config"
admin_password=$(dcp__random 12)
alice_password=$(dcp__random 12)
warm="library/ocisingle:v1 library/multiarch:v1=linux/arm64 library/busybox:v1"
setup_env=(
  SETUP_PROXY_URL="$PROXY_URL"
  SETUP_PROXY_TLS_URL="https://localhost:$tls_port"
  SETUP_CA_FILE="$certs/ca.crt"
  SETUP_WAIT_TIMEOUT=30s
  DCP_WARM_IMAGES="$warm"
  SETUP_BCRYPT_COST=5
  SETUP_CLIENT_CONFIG_DIR="$client"
  SETUP_CLIENT_HTTP_PORT="$PROXY_PORT"
  SETUP_CLIENT_HTTPS_PORT="$tls_port"
  HOMELAB_APP_EXTERNAL_IP=127.0.0.1
  DCP_AUTH_HTPASSWD="$creds/htpasswd"
  DCP_PULL_USERS="alice:$alice_password bob:bob-secret-2"
  DCP_ADMIN_HTPASSWD="$creds/admin.htpasswd"
  DCP_ADMIN_USER=admin
  DCP_ADMIN_PASSWORD="$admin_password"
  HOMELAB_HEALTHCHECK_URL="http://127.0.0.1:$rec_port$admin_check"
)

# run_setup LOG [VAR=VALUE...]: admin-setup with setup_env plus the given changes; its status.
run_setup() {
  local log=$1 rc=0
  shift
  env "${setup_env[@]}" "$@" "$DCP_ADMIN_BIN" >"$log" 2>&1 || rc=$?
  return "$rc"
}

# pings_of CHECK [FILE]: the paths the recorder got for one check, in order, with the check's
# prefix replaced by a dot: "./start .".
pings_of() {
  jq -r --arg c "$1" 'select(.path | startswith($c)) | .path | sub("^" + $c; ".")' \
    "${2:-$pings}" | paste -sd' '
}

rc=0
run_setup "$DCP_TMP/setup1.log" || rc=$?
[ "$rc" = 0 ] || dcp_die "admin-setup failed with $rc: $(tail -n 30 "$DCP_TMP/setup1.log")"
cp "$pings" "$DCP_TMP/pings-run1.jsonl"
grep -q 'admin-setup done' "$DCP_TMP/setup1.log" || dcp_fail "no summary in admin-setup's output"
for secret in "$admin_password" "$alice_password" "$admin_check"; do
  grep -qF -- "$secret" "$DCP_TMP/setup1.log" && dcp_fail "admin-setup logged a secret"
done
dcp_pass "admin-setup exits 0"

# --- credentials ----------------------------------------------------------------------------------
for f in htpasswd admin.htpasswd; do
  [ -f "$creds/$f" ] || dcp_fail "$f not written"
  dcp_assert_eq "$(stat -c %a "$creds/$f")" 640 "mode of $f"
done
dcp_assert_eq "$(cut -d: -f1 "$creds/htpasswd" | paste -sd' ')" "alice bob" "users in htpasswd"
# shellcheck disable=SC2016 # a regular expression, not an expansion
dcp_assert_match "$(cut -d: -f2 "$creds/htpasswd" | head -n1)" '^\$2[aby]\$05\$' "bcrypt hash, cost 5"
htpasswd -vb "$creds/htpasswd" alice "$alice_password" 2>/dev/null ||
  dcp_fail "Apache's htpasswd does not verify alice's hash"
htpasswd -vb "$creds/admin.htpasswd" admin "$admin_password" 2>/dev/null ||
  dcp_fail "Apache's htpasswd does not verify the admin hash"
code=$(dcp_http GET "$PROXY_URL/metrics" -u "admin:$admin_password")
dcp_assert_eq "$code" 200 "/metrics with the admin user"
grep -q '^dcp_requests_total{' "$DCP_TMP/body" || dcp_fail "/metrics has no dcp_requests_total"
code=$(dcp_http GET "$PROXY_URL/metrics")
dcp_assert_eq "$code" 401 "/metrics without credentials after admin-setup"
code=$(dcp_http GET "$PROXY_URL/metrics" -u "alice:$alice_password")
dcp_assert_eq "$code" 401 "/metrics with a pull user"
code=$(dcp_http GET "$PROXY_URL/v2/" -u "alice:$alice_password")
dcp_assert_eq "$code" 200 "/v2/ with a pull user"
code=$(dcp_http GET "$PROXY_URL/v2/" -u "alice:wrong")
dcp_assert_eq "$code" 401 "/v2/ with a wrong password"
dcp_pass "htpasswd files written; the proxy accepts the admin on /metrics and the pull users"

# --- warm-up: the cache holds the images, a later pull costs the upstream nothing ------------------
arm64_manifest=$(dcp_platform_digest library/multiarch:v1 arm64)
amd64_manifest=$(dcp_platform_digest library/multiarch:v1 amd64)
for blob in $(dcp_image_blobs library/ocisingle:v1) $(dcp_image_blobs library/busybox:v1) \
  $(dcp_image_blobs library/multiarch:v1 arm64); do
  [ -n "$(find "$DCP_TMP/cache" -name "${blob#sha256:}*" -print -quit)" ] ||
    dcp_fail "blob $blob of a warmed image is not in the cache directory"
done
n=$(dcp_upstream_requests hub GET "^/v2/library/multiarch/manifests/$arm64_manifest\$")
dcp_assert_eq "$n" 1 "upstream GETs of multiarch's arm64 manifest"
n=$(dcp_upstream_requests hub GET "^/v2/library/multiarch/manifests/$amd64_manifest\$")
dcp_assert_eq "$n" 0 "upstream GETs of multiarch's amd64 manifest (not a warmed platform)"
amd64_only=$(comm -23 <(dcp_image_blobs library/multiarch:v1 amd64 | sort) \
  <(dcp_image_blobs library/multiarch:v1 arm64 | sort))
for blob in $amd64_only; do
  n=$(dcp_upstream_requests hub GET "^/v2/library/multiarch/blobs/$blob\$")
  dcp_assert_eq "$n" 0 "upstream GETs of amd64-only blob $blob"
done

upstream_before=$(dcp_upstream_requests hub GET '^/v2/.+')
heads_before=$(dcp_upstream_requests hub HEAD '^/v2/.+')
for ref in library/ocisingle:v1 library/busybox:v1; do
  dir="$DCP_TMP/pulled-${ref//[\/:]/_}"
  skopeo copy --quiet --src-tls-verify=false "docker://127.0.0.1:$PROXY_PORT/$ref" "dir:$dir" ||
    dcp_fail "skopeo could not pull $ref through the proxy"
  dcp_check_dir "$dir" "$ref"
done
dir="$DCP_TMP/pulled-multiarch-arm64"
skopeo copy --quiet --src-tls-verify=false --override-arch arm64 \
  "docker://127.0.0.1:$PROXY_PORT/library/multiarch:v1" "dir:$dir" ||
  dcp_fail "skopeo could not pull multiarch:v1 (arm64) through the proxy"
arm64_index=$(jq -r '.images[] | select(.reference == "library/multiarch:v1") | .platforms
  | map(.architecture) | index("arm64")' "$DCP_TMP/images.json")
dcp_check_dir "$dir" library/multiarch:v1 "$arm64_index"
dcp_assert_eq "$(dcp_upstream_requests hub GET '^/v2/.+')" "$upstream_before" \
  "upstream GETs caused by pulling the warmed images"
dcp_assert_eq "$(dcp_upstream_requests hub HEAD '^/v2/.+')" "$heads_before" \
  "upstream HEADs caused by pulling the warmed images"
dcp_pass "warm-up filled the cache: pulling the warmed images costs the upstream no GET"

# --- end to end over HTTP and HTTPS ---------------------------------------------------------------
grep -Eq "end-to-end check passed: url=$PROXY_URL image=docker.io/library/ocisingle:v1" \
  "$DCP_TMP/setup1.log" || dcp_fail "no end-to-end check over HTTP in admin-setup's log"
grep -Eq "end-to-end check passed: url=https://localhost:$tls_port image=" "$DCP_TMP/setup1.log" ||
  dcp_fail "no end-to-end check over HTTPS in admin-setup's log"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other-ca \
  -keyout "$DCP_TMP/other-ca.key" -out "$DCP_TMP/other-ca.crt" 2>/dev/null
rc=0
run_setup "$DCP_TMP/setup-wrong-ca.log" SETUP_CA_FILE="$DCP_TMP/other-ca.crt" \
  SETUP_WAIT_TIMEOUT=2s SETUP_CLIENT_CONFIG_DIR="$DCP_TMP/client-wrong-ca" || rc=$?
dcp_assert_eq "$rc" 75 "exit status of admin-setup trusting another CA"
grep -q 'HTTPS listener not usable' "$DCP_TMP/setup-wrong-ca.log" ||
  dcp_fail "admin-setup trusting another CA does not say that HTTPS failed"
dcp_pass "end-to-end check over HTTP and over HTTPS with the LAN CA; another CA fails it"

# --- client configuration -------------------------------------------------------------------------
authority="127.0.0.1:$tls_port"
for f in README.txt ca.crt docker/daemon.json "docker/certs.d/$authority/ca.crt" \
  containerd/certs.d/docker.io/hosts.toml containerd/certs.d/docker.io/docker-cache-proxy-ca.crt \
  containers/registries.conf.d/docker-cache-proxy.conf "containers/certs.d/$authority/ca.crt" \
  kubernetes/k3s-registries.yaml; do
  [ -f "$client/$f" ] || dcp_fail "client configuration: $f not written"
done
cmp -s "$client/ca.crt" "$certs/ca.crt" || dcp_fail "client ca.crt is not the LAN CA"
dcp_assert_eq "$(jq -c . "$client/docker/daemon.json")" \
  "{\"registry-mirrors\":[\"https://$authority\"]}" "docker/daemon.json"
grep -qF "client configuration in $client" "$DCP_TMP/setup1.log" ||
  dcp_fail "admin-setup does not say where the client configuration is"

# containerd with the written hosts directory, as is: HTTPS to the proxy, trusting the CA file
# the hosts.toml names.
dcp_start_containerd ctd
dcp_ctr ctd images pull --hosts-dir "$client/containerd/certs.d" docker.io/library/busybox:v1 \
  >"$DCP_TMP/ctr.out" 2>&1 || dcp_fail "ctr pull with the written hosts.toml failed: $(tail -n 5 "$DCP_TMP/ctr.out")"
got=$(dcp_ctr ctd images ls "name==docker.io/library/busybox:v1" | awk 'NR > 1 { print $3 }')
dcp_assert_eq "$got" "$(dcp_image_field library/busybox:v1 digest)" "digest containerd pulled"
dcp_assert_eq "$(dcp_upstream_requests hub GET '^/v2/.+')" "$upstream_before" \
  "upstream GETs caused by containerd's pull"
dcp_pass "client configuration written; containerd pulls with it over HTTPS trusting the CA"

# --- pings ----------------------------------------------------------------------------------------
run1="$DCP_TMP/pings-run1.jsonl"
dcp_assert_eq "$(pings_of "$admin_check" "$run1")" "./start ." "admin-setup's pings"
body=$(jq -r --arg c "$admin_check" 'select(.path == $c) | .body' "$run1")
dcp_assert_match "$body" 'admin-setup done' "the success ping carries the summary"
rids=$(jq -r --arg c "$admin_check" 'select(.path | startswith($c)) | .query' "$run1" | sort -u)
dcp_assert_eq "$(wc -l <<<"$rids")" 1 "one rid for admin-setup's start and success"
deadline=$((SECONDS + 20))
until [ "$(pings_of "$proxy_check" | wc -w)" -ge 3 ]; do
  [ "$SECONDS" -lt "$deadline" ] || break
  sleep 0.5
done
dcp_assert_match "$(pings_of "$proxy_check")" '^\./start \. \.' "the proxy's heartbeat pings"
dcp_pass "healthchecks pings: admin-setup /start then success, the proxy's heartbeat"

# --- second run: nothing changes ------------------------------------------------------------------
upstream_requests() {
  echo "$(dcp_upstream_requests hub GET '^/v2/.+') $(dcp_upstream_requests hub HEAD '^/v2/.+')"
}
snapshot() {
  find "$creds" "$client" -type f -printf '%p %T@ %m\n' | sort
  cat "$creds"/* | sha256sum
}
before=$(snapshot)
upstream_before=$(upstream_requests)
: >"$pings"
rc=0
run_setup "$DCP_TMP/setup2.log" || rc=$?
dcp_assert_eq "$rc" 0 "exit status of the second run"
dcp_assert_eq "$(snapshot)" "$before" "files, times and modes after the second run"
dcp_assert_eq "$(upstream_requests)" "$upstream_before" \
  "upstream requests during the second run"
grep -q 'written=0 ' "$DCP_TMP/setup2.log" || dcp_fail "the second run rewrote client files"
dcp_assert_eq "$(pings_of "$admin_check")" "./start ." "pings of the second run"
dcp_pass "a second run changes nothing"

# --- a changed admin password replaces the old one in the running proxy ----------------------------
new_password=$(dcp__random 12)
rc=0
run_setup "$DCP_TMP/setup3.log" DCP_ADMIN_PASSWORD="$new_password" || rc=$?
dcp_assert_eq "$rc" 0 "exit status with a new admin password"
code=$(dcp_http GET "$PROXY_URL/metrics" -u "admin:$new_password")
dcp_assert_eq "$code" 200 "/metrics with the new admin password"
code=$(dcp_http GET "$PROXY_URL/metrics" -u "admin:$admin_password")
dcp_assert_eq "$code" 401 "/metrics with the old admin password"
dcp_pass "the proxy reloads a rewritten htpasswd file"

# --- a failing run: /start then /fail with the log tail ---------------------------------------------
: >"$pings"
rc=0
run_setup "$DCP_TMP/setup4.log" DCP_ADMIN_PASSWORD="$new_password" \
  DCP_WARM_IMAGES="library/busybox:v1 library/absent:v1" || rc=$?
dcp_assert_eq "$rc" 78 "exit status when an image to warm does not exist"
dcp_assert_eq "$(pings_of "$admin_check")" "./start ./fail" "pings of a failed run"
body=$(jq -r --arg c "$admin_check/fail" 'select(.path == $c) | .body' "$pings")
dcp_assert_match "$body" 'warm-up of docker.io/library/absent:v1 failed' \
  "the /fail body says what failed"
dcp_assert_match "$body" 'MANIFEST_UNKNOWN' "the /fail body carries the proxy's answer"
for secret in "$new_password" "$alice_password"; do
  grep -qF -- "$secret" <<<"$body" && dcp_fail "the /fail body holds a secret"
done
dcp_pass "a failed run pings /fail with the tail of its log"
