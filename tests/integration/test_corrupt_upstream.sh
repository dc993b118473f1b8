#!/usr/bin/env bash
# The upstream sends a blob whose bytes do not match its digest (one byte flipped on the way by
# tools/corrupting_proxy.py). Proves: the client never receives a complete body that looks
# valid (the proxy cuts the connection before the last byte or answers an error status), the
# proxy logs the digest mismatch, nothing of the blob is kept in the storage, and the next
# request goes to the upstream again instead of serving a poisoned cache.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

dcp_start_upstream up none
dcp_load_images up
blob=$(dcp_image_blob library/ocisingle:v1)
size=$(stat -c %s "$(dcp_blob_file "$blob")")
hex=${blob#sha256:}

dcp_start_forwarder bad "$up_URL" --corrupt
storage="$DCP_TMP/cache"
cfg=$(dcp_proxy_config proxy "$storage" "docker.io=$bad_URL,default=true")
dcp_start_proxy proxy "$cfg"
url="$proxy_URL/v2/library/ocisingle/blobs/$blob"

# The forwarder really corrupts: straight through it the digest does not match.
curl -s -o "$DCP_TMP/direct" "$bad_URL/v2/library/ocisingle/blobs/$blob"
[ "sha256:$(dcp_sha256 "$DCP_TMP/direct")" != "$blob" ] || dcp_fail "the forwarder did not corrupt"

# get_through_proxy N: one client GET; it must not end as a complete, successful download.
get_through_proxy() {
  local n=$1 rc=0 code got
  code=$(curl -s --max-time 120 -o "$DCP_TMP/got$n" -w '%{http_code}' "$url") || rc=$?
  got=$(stat -c %s "$DCP_TMP/got$n" 2>/dev/null || echo 0)
  dcp_log "GET $n through the proxy: curl exit $rc, status $code, $got of $size bytes"
  [ "$rc" -ne 28 ] || dcp_fail "GET $n: the proxy hung on a corrupt blob (no end in 120 s)"
  if [ "$rc" -eq 0 ] && [ "$code" = 200 ] && [ "$got" = "$size" ]; then
    dcp_fail "GET $n: the client received a complete 200 body of a blob that failed its digest"
  fi
  if [ "$code" = 200 ] && [ "$got" = "$size" ] &&
    [ "sha256:$(dcp_sha256 "$DCP_TMP/got$n")" = "$blob" ]; then
    dcp_fail "GET $n: body matches the digest although the upstream sent corrupt bytes"
  fi
  return 0
}

get_through_proxy 1
dcp_pass "the client does not get a complete body of a corrupt blob"

dcp_wait_log "$proxy_LOG" '[Dd]igest.?mismatch|mismatch.*digest' 30 proxy
dcp_pass "the proxy logs the digest mismatch"

# Small bookkeeping named after the digest (e.g. "this repository has it") may stay; content
# may not: no file in a blobs directory, none named after the digest above 4 KiB.
leftovers=$(find "$storage" -type f \( -path '*/blobs/*' -o \( -name "*$hex*" -size +4k \) \) |
  head -n5)
[ -z "$leftovers" ] || dcp_fail "blob data kept in the storage after a corrupt blob: $leftovers"
big_files=$(find "$storage" -type f -size +$((size / 2 / 1024))k | head -n5)
[ -z "$big_files" ] || dcp_fail "something blob-sized is kept in the storage: $big_files"
dcp_pass "nothing of the corrupt blob is stored"

before=$(dcp_upstream_requests up GET "/blobs/$blob")
get_through_proxy 2
after=$(dcp_upstream_requests up GET "/blobs/$blob")
[ "$after" -gt "$before" ] || dcp_fail "the second GET did not go to the upstream again"
dcp_pass "a second GET fetches from the upstream again (no poisoned cache)"
