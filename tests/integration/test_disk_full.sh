#!/usr/bin/env bash
# The disk fills in the middle of a download. The cache sits on a 64 MiB tmpfs mounted in a
# mount namespace of the test's own; the upstream's answer is held after 4 MiB (forwarder
# --hold-after) while two clients read the download and the test fills the disk, then released.
# Proves: both clients still get the whole blob with the right digest from that one upstream
# download (the proxy relays it instead of cutting them off), nothing of it is cached, its
# temporary file is dropped and its space given back, a warn line says so, /readyz answers 503
# "storage is full" although storage.min_free is 0, what was cached is still served, a new blob
# still reaches its client without being cached; once space is freed, readiness and caching
# come back.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time

# A private mount namespace, so the small filesystem is the test's alone and goes with it.
if [ -z "${DCP_IN_MOUNT_NS:-}" ]; then
  export DCP_IN_MOUNT_NS=1
  exec unshare --mount --propagation private -- /bin/bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
dcp_setup

HOLD=$((4 * 1024 * 1024))
disk="$DCP_TMP/disk"
mkdir -p "$disk"
mount -t tmpfs -o size=64m dcp-small-disk "$disk" || dcp_die "cannot mount a tmpfs on $disk"
# Detach the small disk before lib.sh's cleanup removes $DCP_TMP (lazily: the proxy may still
# hold files on it until it is stopped).
trap 'rc=$?; umount -l "$disk" 2>/dev/null; dcp__on_exit $rc' EXIT

dcp_start_upstream up none
dcp_load_images up
big=$(dcp_image_blob library/big:v1)
big_size=$(stat -c %s "$(dcp_blob_file "$big")")
mapfile -t small < <(jq -r '.images[] | select(.reference == "library/ocisingle:v1")
  | .platforms[0].layers[].digest' "$DCP_TMP/images.json")

dcp_start_forwarder slow "$up_URL" --hold-after "$HOLD"
port=$(dcp_free_port)
cfg="$DCP_TMP/proxy.yaml"
cat >"$cfg" <<EOF_YAML
log: {level: debug}
http: {addr: "127.0.0.1:$port"}
storage: {root: "$disk/cache", min_free: "0"}
upstreams:
  - name: docker.io
    url: "$slow_URL"
EOF_YAML
dcp_start_proxy proxy "$cfg"
P=$proxy_URL
blob_path() { printf '%s/cache/blobs/sha256/%s/%s' "$disk" "${1:7:2}" "${1#sha256:}"; }
available() { df --output=avail -B1 "$disk" | tail -n1 | tr -d ' '; }

# get NAME DIGEST [curl args]: one GET of a blob into $DCP_TMP/NAME.out, status in NAME.status.
get() {
  local name=$1 digest=$2
  shift 2
  curl -sS --max-time 120 -o "$DCP_TMP/$name.out" -w '%{http_code}' "$@" \
    "$P/v2/library/ocisingle/blobs/$digest" >"$DCP_TMP/$name.status" 2>"$DCP_TMP/$name.err" || true
}
# check_blob NAME DIGEST SIZE LABEL
check_blob() {
  dcp_assert_eq "$(cat "$DCP_TMP/$1.status" 2>/dev/null)" 200 "$4: status ($(cat "$DCP_TMP/$1.err" 2>/dev/null))"
  dcp_assert_eq "$(stat -c %s "$DCP_TMP/$1.out" 2>/dev/null || echo 0)" "$3" "$4: bytes"
  dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/$1.out")" "$2" "$4: digest"
}

get cached "${small[0]}"
check_blob cached "${small[0]}" "$(stat -c %s "$(dcp_blob_file "${small[0]}")")" "first small blob"
[ -f "$(blob_path "${small[0]}")" ] || dcp_die "the first small blob was not cached"
dcp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$P/readyz")" 200 "/readyz with room"
dcp_pass "baseline: a blob is cached on the small disk, /readyz 200"

# ------------------------------------------------------------------ the disk fills mid-download
big_url="$P/v2/library/big/blobs/$big"
dcp_spawn c1 "$DCP_TMP/c1.log" curl -sS --max-time 300 -o "$DCP_TMP/c1.out" -w '%{http_code}' "$big_url"
dcp_wait_log "$slow_LOG" '^hold: GET .*/blobs/' 60 slow
# The second client reads slower than the upstream sends, so the relay has to wait for it.
dcp_spawn c2 "$DCP_TMP/c2.log" curl -sS --max-time 300 --limit-rate 16M -o "$DCP_TMP/c2.out" \
  -w '%{http_code}' "$big_url"
deadline=$((SECONDS + 30))
until [ "$(stat -c %s "$DCP_TMP/c2.out" 2>/dev/null || echo 0)" -gt 0 ]; do
  [ "$SECONDS" -lt "$deadline" ] || dcp_die "the second client never joined the download"
  sleep 0.1
done
tmp_files=$(find "$disk/cache/tmp" -type f | wc -l)
dcp_assert_eq "$tmp_files" 1 "uploads in progress while the download is held"

# Fill what is left; dd stops at ENOSPC.
dd if=/dev/zero of="$disk/filler" bs=1M 2>/dev/null || true
[ "$(available)" -lt 1048576 ] || dcp_die "the disk is not full: $(available) bytes free"
touch "$slow_RELEASE"

for c in c1 c2; do
  rc=0
  dcp_wait "$c" || rc=$?
  dcp_assert_eq "$rc" 0 "$c: curl exit status ($(cat "$DCP_TMP/$c.log"))"
  dcp_assert_eq "$(tail -c 3 "$DCP_TMP/$c.log")" 200 "$c: status"
  dcp_assert_eq "$(stat -c %s "$DCP_TMP/$c.out")" "$big_size" "$c: bytes"
  dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/$c.out")" "$big" "$c: digest"
done
dcp_wait_log "$slow_LOG" "^forward: GET [^ ]*/blobs/$big range=- -> " 30 slow
dcp_assert_eq "$(grep -c "^forward: GET [^ ]*/blobs/$big " "$slow_LOG")" 1 \
  "upstream downloads of the blob both clients read"
dcp_pass "the disk filled mid-download: both clients got the whole blob, one upstream download"

[ ! -e "$(blob_path "$big")" ] || dcp_fail "the blob the disk had no room for was cached"
dcp_assert_eq "$(find "$disk/cache/tmp" -type f | wc -l)" 0 "temporary files after the relay"
# Its space comes back once its readers are done (the proxy held it open for them).
deadline=$((SECONDS + 10))
until [ "$(available)" -ge "$HOLD" ]; do
  [ "$SECONDS" -lt "$deadline" ] || {
    dcp_fail "the dropped upload's space was not given back: $(available) bytes free"
    break
  }
  sleep 0.1
done
grep -Eq "warning fetcher: disk full, blob not cached, relaying it to its clients: .*digest=$big" \
  "$proxy_LOG" || dcp_fail "no warn line saying the blob was not cached for want of space"
dcp_http GET "$P/readyz" >/dev/null
dcp_assert_eq "$(cat "$DCP_TMP/status")" 503 "/readyz after the disk filled (min_free 0)"
dcp_assert_match "$(cat "$DCP_TMP/body")" 'storage is full' "/readyz says why"
dcp_pass "nothing cached, upload dropped, warn logged, /readyz 503 storage is full"

get again "${small[0]}"
check_blob again "${small[0]}" "$(stat -c %s "$(dcp_blob_file "${small[0]}")")" "cached blob while full"
# The proxy logs a request just after answering it: wait for the line, bounded.
deadline=$((SECONDS + 10))
until [ "$(dcp_proxy_requests proxy GET "/blobs/${small[0]}\$" cache)" -ge 1 ]; do
  [ "$SECONDS" -lt "$deadline" ] || {
    dcp_fail "the cached blob was not served from the cache while the disk is full"
    break
  }
  sleep 0.1
done
get new "${small[1]}"
check_blob new "${small[1]}" "$(stat -c %s "$(dcp_blob_file "${small[1]}")")" "new blob while full"
[ ! -e "$(blob_path "${small[1]}")" ] || dcp_fail "a new blob was cached while the disk is full"
dcp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$P/readyz")" 503 "/readyz still full"
dcp_pass "while full: cached content is served, new content reaches the client uncached"

# ------------------------------------------------------------------------- space comes back
rm -f "$disk/filler"
deadline=$((SECONDS + 10))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$P/readyz")" = 200 ]; do
  [ "$SECONDS" -lt "$deadline" ] || {
    dcp_fail "/readyz did not recover once the disk had room again"
    break
  }
  sleep 0.2
done
curl -sS -o "$DCP_TMP/c3.out" "$big_url" || dcp_fail "the blob did not download after recovery"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/c3.out")" "$big" "digest after recovery"
deadline=$((SECONDS + 10))
until [ -f "$(blob_path "$big")" ]; do
  [ "$SECONDS" -lt "$deadline" ] || {
    dcp_fail "the blob was not cached once the disk had room again"
    break
  }
  sleep 0.1
done
dcp_pass "space freed: /readyz 200 again and the blob is cached"
