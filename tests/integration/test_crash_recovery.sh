#!/usr/bin/env bash
# The proxy is killed (SIGKILL) in the middle of a blob download and started again on the same
# storage. The upstream's answer is paused after 20 MiB (forwarder --hold-after), so the kill
# certainly lands mid-download. Proves: the partial download is never served as the blob (a
# HEAD and a GET after the restart go to the upstream, not the cache), the leftovers are swept
# at start (no temp/partial files remain), and the next pull gets the right digest.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

HOLD=$((20 * 1024 * 1024))

dcp_start_upstream up none
dcp_load_images up
blob=$(dcp_image_blob library/big:v1)
size=$(stat -c %s "$(dcp_blob_file "$blob")")

dcp_start_forwarder slow "$up_URL" --hold-after "$HOLD"
storage="$DCP_TMP/cache"
cfg=$(dcp_proxy_config proxy "$storage" "docker.io=$slow_URL,default=true")
dcp_start_proxy proxy "$cfg"
url="$proxy_URL/v2/library/big/blobs/$blob"

dcp_spawn client "$DCP_TMP/client.log" curl -sS --max-time 300 -o "$DCP_TMP/client.out" "$url"
dcp_wait_log "$slow_LOG" '^hold: GET .*/blobs/' 60 slow

# Best effort: let the proxy write what it received to disk before the kill, so there is a
# partial file to recover from. A proxy that buffers elsewhere still has to pass the rest.
deadline=$((SECONDS + 20))
until [ -n "$(find "$storage" -type f -size +1M 2>/dev/null | head -n1)" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    dcp_log "note: no file over 1 MiB appeared in the storage during the download"
    break
  fi
  sleep 0.1
done
partials=$(find "$storage" -type f -size +1M -printf '%P %s\n' 2>/dev/null || true)
dcp_log "storage before the kill: ${partials:-no large file}"

dcp_kill9 proxy
dcp_stop client
touch "$slow_RELEASE" # from now on the upstream answers in full

dcp_start_proxy proxy "$cfg"

# Temp files swept at start: every tmp-like directory under the root is empty, and no file
# larger than a manifest remains anywhere (nothing complete was ever stored).
while IFS= read -r -d '' d; do
  leftover=$(find "$d" -type f | head -n3 | tr '\n' ' ')
  [ -z "$leftover" ] || dcp_fail "temp dir $d not swept at start: $leftover"
done < <(find "$storage" -type d \( -iname '*tmp*' -o -iname '*temp*' -o -iname '*partial*' \
  -o -iname '*incoming*' -o -iname '*upload*' \) -print0)
stale=$(find "$storage" -type f -size +1M -printf '%P %s\n')
[ -z "$stale" ] || dcp_fail "a partial download survived the restart: $stale"
dcp_pass "after the restart no partial or temp file remains"

# From here on, anything the proxy knows of this blob has to come from the upstream.
heads0=$(dcp_upstream_requests up HEAD "/blobs/$blob")
gets0=$(dcp_upstream_requests up GET "/blobs/$blob")
dcp_http HEAD "$url" >/dev/null
dcp_assert_eq "$(cat "$DCP_TMP/status")" 200 "HEAD of the blob after the restart"
dcp_assert_eq "$(dcp_header Content-Length)" "$size" "HEAD Content-Length after the restart"
[ $(($(dcp_upstream_requests up HEAD "/blobs/$blob") + $(dcp_upstream_requests up GET "/blobs/$blob"))) \
  -gt $((heads0 + gets0)) ] || dcp_fail "HEAD after the restart was answered from the cache, not the upstream"

rc=0
code=$(curl -s --max-time 300 -o "$DCP_TMP/after.out" -w '%{http_code}' "$url") || rc=$?
dcp_assert_eq "$rc/$code" "0/200" "GET of the blob after the restart (curl exit/status)"
dcp_assert_eq "$(stat -c %s "$DCP_TMP/after.out")" "$size" "blob size after the restart"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/after.out")" "$blob" "blob digest after the restart"
[ "$(dcp_upstream_requests up GET "/blobs/$blob")" -gt "$gets0" ] ||
  dcp_fail "the blob was never downloaded again after the restart: the partial one was served"
dcp_pass "after the restart the blob comes from the upstream, whole and with the right digest"

mkdir -p "$DCP_TMP/pull"
skopeo copy --quiet --src-tls-verify=false "docker://127.0.0.1:$proxy_PORT/library/big:v1" \
  "dir:$DCP_TMP/pull/big" || dcp_fail "skopeo pull of library/big:v1 after the restart"
dcp_check_dir "$DCP_TMP/pull/big" library/big:v1
dcp_pass "a full pull after the crash gives the right digests"
