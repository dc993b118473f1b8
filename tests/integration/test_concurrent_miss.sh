#!/usr/bin/env bash
# 20 clients ask for the same uncached 50 MB blob at once. Proves the proxy coalesces the
# misses: the upstream serves the blob exactly once, and every client gets all of it, intact.
#
# The upstream's answer is paused (forwarder --hold-after) until all 20 clients are connected
# to the proxy, so they are certainly concurrent, however fast or slow the machine is.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

CLIENTS=20

dcp_start_upstream up none
dcp_load_images up
blob=$(dcp_image_blob library/big:v1)
blob_file=$(dcp_blob_file "$blob")
size=$(stat -c %s "$blob_file")

dcp_start_forwarder slow "$up_URL" --hold-after $((4 * 1024 * 1024))
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$slow_URL,default=true")
dcp_start_proxy proxy "$cfg"

gets_before=$(dcp_upstream_requests up GET "/blobs/$blob")
mkdir -p "$DCP_TMP/out"
for ((i = 0; i < CLIENTS; i++)); do
  dcp_spawn "client$i" "$DCP_TMP/client$i.log" curl -sS --max-time 300 -o "$DCP_TMP/out/$i" \
    -w '%{http_code}\n' "$proxy_URL/v2/library/big/blobs/$blob"
done

# All clients connected to the proxy, and the upstream transfer paused: only then let it go.
deadline=$((SECONDS + 60))
until [ "$(ss -Htn state established "( dport = :$proxy_PORT )" | wc -l)" -ge "$CLIENTS" ]; do
  [ "$SECONDS" -lt "$deadline" ] || dcp_fail "not all $CLIENTS clients connected within 60 s"
  sleep 0.1
done
dcp_wait_log "$slow_LOG" '^hold: GET .*/blobs/' 60 slow
touch "$slow_RELEASE"

for ((i = 0; i < CLIENTS; i++)); do
  dcp_wait "client$i" || dcp_fail "client $i: curl failed: $(cat "$DCP_TMP/client$i.log")"
  dcp_assert_eq "$(tail -n1 "$DCP_TMP/client$i.log")" 200 "client $i status"
  dcp_assert_eq "$(stat -c %s "$DCP_TMP/out/$i")" "$size" "client $i body size"
  dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/out/$i")" "$blob" "client $i body digest"
done
dcp_pass "$CLIENTS concurrent clients each received the whole blob with the right digest"

dcp_assert_eq "$(($(dcp_upstream_requests up GET "/blobs/$blob") - gets_before))" 1 \
  "upstream GETs of the blob for $CLIENTS concurrent misses"
dcp_pass "$CLIENTS concurrent misses cost the upstream exactly one blob download"
