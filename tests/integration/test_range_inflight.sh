#!/usr/bin/env bash
# Range requests for a blob that the proxy is still downloading (a resuming client, a second
# client). The upstream's answer is paused after 8 MiB (forwarder --hold-after) while the
# ranges are asked, so the download is certainly in flight. Proves: a range inside the part
# already received and a range beyond it both answer 206 with exactly the right bytes, the
# first client still gets the whole blob, a range past its end answers 416 RANGE_INVALID at
# once, and the ranges cost no second full download.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

HOLD=$((8 * 1024 * 1024))

dcp_start_upstream up none
dcp_load_images up
blob=$(dcp_image_blob library/big:v1)
blob_file=$(dcp_blob_file "$blob")
size=$(stat -c %s "$blob_file")

dcp_start_forwarder slow "$up_URL" --hold-after "$HOLD"
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$slow_URL,default=true")
dcp_start_proxy proxy "$cfg"
url="$proxy_URL/v2/library/big/blobs/$blob"

dcp_spawn full "$DCP_TMP/full.log" curl -sS --max-time 300 -o "$DCP_TMP/full.out" \
  -w '%{http_code}\n' "$url"
dcp_wait_log "$slow_LOG" '^hold: GET .*/blobs/' 60 slow

# Inside the received part, and beyond the hold point up to the end.
early_from=1000 early_to=1999
late_from=$((size - 3 * 1024 * 1024 - 17))
dcp_spawn early "$DCP_TMP/early.log" curl -sS --max-time 300 -o "$DCP_TMP/early.out" \
  -D "$DCP_TMP/early.headers" -w '%{http_code}\n' -H "Range: bytes=$early_from-$early_to" "$url"
dcp_spawn late "$DCP_TMP/late.log" curl -sS --max-time 300 -o "$DCP_TMP/late.out" \
  -D "$DCP_TMP/late.headers" -w '%{http_code}\n' -H "Range: bytes=$late_from-" "$url"

# Not required, but worth knowing: is a received range served before the download ends?
deadline=$((SECONDS + 15))
while dcp_running early && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
if dcp_running early; then
  dcp_log "note: a range inside the received part waits for the paused download"
else
  dcp_log "note: a range inside the received part was answered during the paused download"
fi
# Past the end: refused at once with the spec's error, from the size the upstream announced;
# the download is still held, so waiting for it would run into dcp_http's 60 s limit (000).
dcp_http GET "$url" -H "Range: bytes=$size-" >/dev/null
dcp_assert_oci_error 416 RANGE_INVALID "range past the end of the in-flight blob"
dcp_assert_eq "$(dcp_header Content-Range)" "bytes */$size" \
  "range past the end of the in-flight blob: Content-Range"
if grep -q '^hold: .* released' "$slow_LOG"; then
  dcp_die "the download was released before the 416 check: it proved nothing about in-flight"
fi
dcp_pass "a range past the end of an in-flight blob: 416 RANGE_INVALID while it downloads"
touch "$slow_RELEASE"

dcp_wait early || dcp_fail "early range: curl failed: $(cat "$DCP_TMP/early.log")"
dcp_wait late || dcp_fail "late range: curl failed: $(cat "$DCP_TMP/late.log")"
dcp_wait full || dcp_fail "full download: curl failed: $(cat "$DCP_TMP/full.log")"

# check_range NAME FROM TO
check_range() {
  local name=$1 from=$2 to=$3
  dcp_assert_eq "$(tail -n1 "$DCP_TMP/$name.log")" 206 "$name range status"
  grep -qi "^content-range: bytes $from-$to/$size"$'\r'"\?$" "$DCP_TMP/$name.headers" ||
    dcp_fail "$name range: Content-Range is not 'bytes $from-$to/$size': $(grep -i content-range "$DCP_TMP/$name.headers")"
  cmp -s "$DCP_TMP/$name.out" <(tail -c +$((from + 1)) "$blob_file" | head -c $((to - from + 1))) ||
    dcp_fail "$name range: wrong bytes"
}
check_range early "$early_from" "$early_to"
check_range late "$late_from" $((size - 1))
dcp_pass "ranges inside and beyond the received part of an in-flight blob: 206, exact bytes"

dcp_assert_eq "$(tail -n1 "$DCP_TMP/full.log")" 200 "full download status"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/full.out")" "$blob" "full download digest"
dcp_pass "the client that started the download gets the whole blob"

# The forwarder logs a transfer just after its last byte: wait for that line, then count.
dcp_wait_log "$slow_LOG" "^forward: GET [^ ]*/blobs/$blob range=- -> " 30 slow
full_downloads=$(grep -Ec "^forward: GET [^ ]*/blobs/$blob range=- -> 200" "$slow_LOG" || true)
dcp_assert_eq "$full_downloads" 1 "full upstream downloads of the blob"
dcp_pass "the in-flight ranges cost no second full download"
