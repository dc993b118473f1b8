#!/usr/bin/env bash
# Blobs over the proxy's HTTPS listener, where bodies cannot go out with sendfile(2) and are
# written to the TLS socket from a buffer. The upstream's answer is paused after 8 MiB
# (forwarder --hold-after), so the first client certainly reads a download in flight. Proves:
# a blob read while it downloads, the stored blob, a range of each and a skopeo pull all arrive
# over HTTPS with exactly the upstream's bytes, and a HEAD has the right Content-Length.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

HOLD=$((8 * 1024 * 1024))

dcp_start_upstream up none
dcp_load_images up
blob=$(dcp_image_blob library/big:v1)
blob_file=$(dcp_blob_file "$blob")
size=$(stat -c %s "$blob_file")

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=127.0.0.1 \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$DCP_TMP/tls.key" -out "$DCP_TMP/tls.crt" \
  2>/dev/null || dcp_die "openssl could not make a test certificate"

dcp_start_forwarder slow "$up_URL" --hold-after "$HOLD"
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$slow_URL,default=true")
tls_port=$(dcp_free_port)
printf 'tls: {addr: "127.0.0.1:%s", certificate: "%s", key: "%s"}\n' "$tls_port" \
  "$DCP_TMP/tls.crt" "$DCP_TMP/tls.key" >>"$cfg"
dcp_start_proxy proxy "$cfg"
tls_url="https://127.0.0.1:$tls_port"
dcp_wait_log "$proxy_LOG" 'listening: .* tls=true' 30 proxy
url="$tls_url/v2/library/big/blobs/$blob"
tls=(--cacert "$DCP_TMP/tls.crt")

dcp_spawn full "$DCP_TMP/full.log" curl -sS --max-time 300 "${tls[@]}" -o "$DCP_TMP/full.out" \
  -w '%{http_code}\n' "$url"
dcp_wait_log "$slow_LOG" '^hold: GET .*/blobs/' 60 slow
range_from=$((size - 3 * 1024 * 1024 - 17))
dcp_spawn late "$DCP_TMP/late.log" curl -sS --max-time 300 "${tls[@]}" -o "$DCP_TMP/late.out" \
  -w '%{http_code}\n' -H "Range: bytes=$range_from-" "$url"
touch "$slow_RELEASE"
dcp_wait full || dcp_fail "download in flight over HTTPS: curl failed: $(cat "$DCP_TMP/full.log")"
dcp_wait late || dcp_fail "range in flight over HTTPS: curl failed: $(cat "$DCP_TMP/late.log")"

dcp_assert_eq "$(tail -n1 "$DCP_TMP/full.log")" 200 "download in flight over HTTPS: status"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/full.out")" "$blob" \
  "download in flight over HTTPS: digest"
dcp_assert_eq "$(tail -n1 "$DCP_TMP/late.log")" 206 "range in flight over HTTPS: status"
cmp -s "$DCP_TMP/late.out" <(tail -c +$((range_from + 1)) "$blob_file") ||
  dcp_fail "range in flight over HTTPS: wrong bytes"
dcp_pass "a blob and a range of it arrive whole over HTTPS while the proxy downloads it"

gets=$(dcp_upstream_requests up GET "/blobs/$blob")
code=$(curl -sS --max-time 300 "${tls[@]}" -o "$DCP_TMP/cached.out" -w '%{http_code}' "$url") ||
  dcp_fail "stored blob over HTTPS: curl failed"
dcp_assert_eq "$code" 200 "stored blob over HTTPS: status"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/cached.out")" "$blob" "stored blob over HTTPS: digest"
dcp_http GET "$url" "${tls[@]}" -H "Range: bytes=1000-1999" >/dev/null
dcp_assert_eq "$(cat "$DCP_TMP/status")" 206 "range of the stored blob over HTTPS: status"
cmp -s "$DCP_TMP/body" <(tail -c +1001 "$blob_file" | head -c 1000) ||
  dcp_fail "range of the stored blob over HTTPS: wrong bytes"
dcp_http HEAD "$url" "${tls[@]}" >/dev/null
dcp_assert_eq "$(dcp_header Content-Length)" "$size" "HEAD over HTTPS: Content-Length"
dcp_assert_eq "$(dcp_upstream_requests up GET "/blobs/$blob")" "$gets" \
  "upstream GETs for the stored blob over HTTPS"
dcp_pass "the stored blob, a range of it and a HEAD come from the cache over HTTPS"

skopeo copy --quiet --src-tls-verify=false \
  "docker://127.0.0.1:$tls_port/library/ocisingle:v1" "dir:$DCP_TMP/pull" ||
  dcp_fail "skopeo pull over HTTPS"
dcp_check_dir "$DCP_TMP/pull" library/ocisingle:v1
dcp_pass "a skopeo pull over HTTPS gives the generated digests"
