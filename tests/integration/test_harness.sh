#!/usr/bin/env bash
# The test machinery itself, without the proxy: if these break, every other integration test
# proves less than it claims. Proves: the generated images are deterministic, incompressible
# and what images.json says; dcp_upstream_requests counts exactly; the htpasswd and token
# upstreams really enforce their auth (anonymous pull tokens, push only with credentials);
# the forwarder corrupts, holds and passes ranges as told; dcp_stop escalates to KILL; a
# failing test stops its peers and removes its directory; restarts keep port and storage.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

# ---------------------------------------------------------------------------------- images
dcp_make_images
python3 "$DCP_TOOLS_DIR/make_images.py" --out "$DCP_TMP/images-again" --seed "$DCP_IMAGE_SEED" \
  >/dev/null
python3 "$DCP_TOOLS_DIR/make_images.py" --out "$DCP_TMP/images-other" --seed other-seed \
  --big-size 1000 >/dev/null
digests() { jq -c '[.images[] | .digest, (.platforms[] | .digest, .config.digest, .layers[].digest)]' "$1"; }
dcp_assert_eq "$(digests "$DCP_TMP/images-again/images.json")" \
  "$(digests "$DCP_TMP/images/images.json")" "digests of two generations with one seed"
[ "$(digests "$DCP_TMP/images-other/images.json")" != "$(digests "$DCP_TMP/images/images.json")" ] ||
  dcp_fail "another seed gave the same digests"
rm -rf "$DCP_TMP/images-again" "$DCP_TMP/images-other"

cp "$DCP_TMP/images/images.json" "$DCP_TMP/images.json"
for f in "$DCP_TMP"/images/oci/blobs/sha256/*; do
  dcp_assert_eq "$(dcp_sha256 "$f")" "$(basename "$f")" "generated blob named by its digest"
done
# Every layer/config the index mentions exists with the size it claims.
while read -r digest size; do
  dcp_assert_eq "$(stat -c %s "$(dcp_blob_file "$digest")")" "$size" "size of $digest"
done < <(jq -r '.images[].platforms[] | .config, .layers[] | "\(.digest) \(.size)"' \
  "$DCP_TMP/images.json")
big=$(dcp_image_blob library/big:v1)
big_size=$(stat -c %s "$(dcp_blob_file "$big")")
[ "$big_size" -ge $((50 * 1024 * 1024)) ] || dcp_fail "big layer is only $big_size bytes"
# Incompressible: gzip -9 of the gzip layer does not shrink it.
again=$(gzip -9c "$(dcp_blob_file "$big")" | wc -c)
[ "$again" -ge "$big_size" ] || dcp_fail "the big layer compresses ($big_size -> $again): not random"
refs=$(dcp_image_refs | sort | tr '\n' ' ')
dcp_assert_eq "$refs" "library/big:v1 library/busybox:v1 library/dockerv2:v1 library/dockerv2alias:v1 library/multiarch:v1 library/ocisingle:v1 " \
  "image references"
dcp_assert_eq "$(dcp_image_field library/dockerv2:v1 media_type)" \
  application/vnd.docker.distribution.manifest.v2+json "dockerv2 media type"
dcp_assert_eq "$(dcp_image_field library/multiarch:v1 media_type)" \
  application/vnd.oci.image.index.v1+json "multiarch media type"
dcp_assert_eq "$(dcp_image_field library/multiarch:v1 'platforms | map(.architecture) | join(",")')" \
  amd64,arm64 "multiarch platforms"
# The runnable image: busybox as /bin/busybox, /bin/sh pointing at it, the hello command.
bb_layer=$(dcp_image_blob library/busybox:v1)
listing=$(tar -tvzf "$(dcp_blob_file "$bb_layer")")
grep -Eq '^-rwxr-xr-x .* bin/busybox$' <<<"$listing" || dcp_fail "busybox layer lacks bin/busybox"
grep -Eq '^l.* bin/sh -> busybox$' <<<"$listing" || dcp_fail "busybox layer lacks the bin/sh link"
bb_config=$(dcp_image_field library/busybox:v1 'platforms[0].config.digest')
dcp_assert_eq "$(jq -c .config.Cmd "$(dcp_blob_file "$bb_config")")" \
  '["/bin/sh","-c","echo hello-from-dcp"]' "busybox Cmd"
dcp_pass "images: deterministic per seed, blobs match their digests and sizes, big and random"

# ------------------------------------------------------------------ upstream, plain + counting
dcp_start_upstream plain none
dcp_load_images plain
gets=$(dcp_upstream_requests plain GET '/library/ocisingle/manifests/v1$')
heads=$(dcp_upstream_requests plain HEAD '/library/ocisingle/manifests/v1$')
others=$(dcp_upstream_requests plain GET '/library/dockerv2/')
curl -s -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "$plain_URL/v2/library/ocisingle/manifests/v1"
dcp_assert_eq "$(dcp_upstream_requests plain GET '/library/ocisingle/manifests/v1$')" \
  $((gets + 1)) "GET count after one direct GET"
dcp_assert_eq "$(dcp_upstream_requests plain HEAD '/library/ocisingle/manifests/v1$')" "$heads" \
  "HEAD count after a GET"
dcp_assert_eq "$(dcp_upstream_requests plain GET '/library/dockerv2/')" "$others" \
  "count for a path regex the GET does not match"
curl -s -o /dev/null --head "$plain_URL/v2/library/ocisingle/manifests/v1?x=1"
dcp_assert_eq "$(dcp_upstream_requests plain HEAD '/library/ocisingle/manifests/v1$')" \
  $((heads + 1)) "HEAD count (query string ignored by the path regex)"
dcp_upstream_log_has plain '^HEAD /v2/library/ocisingle/manifests/v1\?x=1$' ||
  dcp_fail "dcp_upstream_log_has does not see the request with its query"

dcp_restart_upstream plain
dcp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "$plain_URL/v2/library/ocisingle/manifests/v1")" 200 "manifest after restarting the upstream"
dcp_assert_eq "$(dcp_upstream_requests plain GET '/library/ocisingle/manifests/v1$')" \
  $((gets + 2)) "GET count carries on across a restart"
dcp_pass "dcp_upstream_requests counts exactly, across restarts; restart keeps port and data"

# ---------------------------------------------------------------------------------- htpasswd
dcp_start_upstream basic htpasswd
dcp_load_images basic
m="$basic_URL/v2/library/busybox/manifests/v1"
dcp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$m")" 401 "htpasswd: anonymous"
dcp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -u "dcpuser:wrong" "$m")" 401 "htpasswd: wrong password"
dcp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -u "dcpuser:$basic_PASSWORD" \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "$m")" 200 "htpasswd: right password"
dcp_pass "htpasswd upstream: only the right Basic credentials pull"

# ------------------------------------------------------------------------------------ token
dcp_start_upstream tok token
dcp_load_images tok # pushes with the credentials: push tokens work
T="127.0.0.1:$tok_PORT"
dcp_assert_eq "$(dcp_raw_digest "$T/library/busybox:v1")" "$(dcp_image_field library/busybox:v1 digest)" \
  "token: anonymous pull"
if skopeo copy --quiet --dest-tls-verify=false "dir:$DCP_TMP/images/dir-busybox" \
  "docker://$T/library/anonpush:v1" 2>/dev/null; then
  dcp_fail "token: an anonymous push was accepted"
fi
if skopeo inspect --raw --tls-verify=false --creds "dcpuser:wrong" "docker://$T/library/busybox:v1" \
  >/dev/null 2>&1; then
  dcp_fail "token: wrong credentials were accepted"
fi
answer=$(curl -s "$tok_TOKEN_URL?service=dcp-registry-tok&scope=repository:library/busybox:pull,push")
jq -e '.token and .access_token and (.expires_in > 0) and .issued_at' <<<"$answer" >/dev/null ||
  dcp_fail "token answer lacks token/access_token/expires_in/issued_at: $answer"
jwt_part() { cut -d. -f"$1" <<<"$2" | tr '_-' '/+' | awk '{ while (length($0) % 4) $0 = $0 "="; print }' | base64 -d; }
token=$(jq -r .token <<<"$answer")
dcp_assert_eq "$(jwt_part 1 "$token" | jq -r '.alg + " " + (.x5c | length | tostring)')" "RS256 1" \
  "token header"
dcp_assert_eq "$(jwt_part 2 "$token" | jq -c '.access[0].actions')" '["pull"]' \
  "anonymous token actions (push asked)"
answer=$(curl -s -u "dcpuser:$tok_PASSWORD" \
  "$tok_TOKEN_URL?service=dcp-registry-tok&scope=repository:library/busybox:pull,push")
dcp_assert_eq "$(jwt_part 2 "$(jq -r .token <<<"$answer")" | jq -c '.access[0].actions')" \
  '["pull","push"]' "authenticated token actions"
dcp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "$tok_URL/v2/library/busybox/manifests/v1")" 200 "registry accepts a token of the server"
dcp_pass "token upstream: anonymous pull tokens, push only with credentials, registry verifies x5c"

# -------------------------------------------------------------------------------- forwarder
blob=$(dcp_image_blob library/ocisingle:v1)
bfile=$(dcp_blob_file "$blob")
dcp_start_forwarder fwd_bad "$plain_URL" --corrupt
curl -s -o "$DCP_TMP/fwd.out" "$fwd_bad_URL/v2/library/ocisingle/blobs/$blob"
dcp_assert_eq "$(stat -c %s "$DCP_TMP/fwd.out")" "$(stat -c %s "$bfile")" "corrupting forwarder: size kept"
! cmp -s "$DCP_TMP/fwd.out" "$bfile" || dcp_fail "corrupting forwarder did not change the blob"
dcp_assert_eq "$(cmp -l "$DCP_TMP/fwd.out" "$bfile" | wc -l)" 1 "corrupting forwarder: bytes changed"

dcp_start_forwarder fwd_hold "$plain_URL" --hold-after 100000
dcp_spawn fwd_client "$DCP_TMP/fwd_client.log" curl -s -o "$DCP_TMP/fwd2.out" \
  "$fwd_hold_URL/v2/library/ocisingle/blobs/$blob"
dcp_wait_log "$fwd_hold_LOG" '^hold: ' 30 fwd_hold
dcp_running fwd_client || dcp_fail "the client finished although the forwarder holds"
touch "$fwd_hold_RELEASE"
dcp_wait fwd_client || dcp_fail "client through the holding forwarder failed"
cmp -s "$DCP_TMP/fwd2.out" "$bfile" || dcp_fail "holding forwarder: wrong bytes after release"
dcp_assert_eq "$(curl -s -H 'Range: bytes=10-19' -o /dev/null -w '%{http_code} %{size_download}' \
  "$fwd_hold_URL/v2/library/ocisingle/blobs/$blob")" "206 10" "forwarder passes Range through"
dcp_pass "forwarder: corrupts one byte, holds until released, passes Range"

# -------------------------------------------------------------------------------- lifecycle
dcp_spawn stubborn "$DCP_TMP/stubborn.log" python3 -c \
  'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print("up", flush=True); time.sleep(1000)'
dcp_wait_log "$DCP_TMP/stubborn.log" '^up$' 30 stubborn
pid=$(dcp_pid stubborn)
dcp_stop stubborn
! kill -0 "$pid" 2>/dev/null || dcp_fail "dcp_stop left a TERM-ignoring process running"
dcp_pass "dcp_stop escalates to KILL"

# A failing test: its peers stop and its directory goes, whatever the failure.
cat >"$DCP_TMP/failing.sh" <<EOF
source "$DCP_LIB_DIR/lib.sh"
dcp_setup
dcp_spawn sleeper "\$DCP_TMP/sleeper.log" sleep 1000
echo "\$(dcp_pid sleeper) \$DCP_TMP" >"$DCP_TMP/failing.info"
dcp_fail "deliberate failure"
EOF
rc=0
TMPDIR="$DCP_TMP" bash "$DCP_TMP/failing.sh" >"$DCP_TMP/failing.out" 2>&1 || rc=$?
dcp_assert_eq "$rc" 1 "exit status of a failing test"
read -r child_pid child_tmp <"$DCP_TMP/failing.info"
! kill -0 "$child_pid" 2>/dev/null || dcp_fail "a failing test left its process running"
[ ! -e "$child_tmp" ] || dcp_fail "a failing test left its directory"
grep -q '^FAIL: deliberate failure' "$DCP_TMP/failing.out" || dcp_fail "no FAIL line"
grep -q 'last lines of sleeper' "$DCP_TMP/failing.out" || dcp_fail "no log tail on failure"
dcp_pass "a failing test stops its processes by PID, shows their logs, removes its directory"
