#!/usr/bin/env bash
# The size limit, with real pulls (skopeo) through the proxy from a docker-registry upstream.
# Proves: pulling images one after another under a small limit evicts the least recently used
# image; a pinned (warm-listed) image and a layer shared with a kept image survive; pulling the
# evicted image again fetches it correctly (and costs the upstream only what was evicted); the
# last-use order survives a restart; a dry run names exactly what the real run then removes; a
# lower limit takes effect on reload (SIGHUP) without a restart.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

DCP_IMAGE_ARGS="--lru-set --big-size 65536"
dcp_start_upstream up none
dcp_load_images up

# Bytes an image puts in the cache: manifest, config and layers (each blob once).
image_bytes() {
  jq -r --arg r "$1" '.images[] | select(.reference == $r) | .platforms[0]
    | .size + .config.size + ([.layers[].size] | add)' "$DCP_TMP/images.json"
}
layer() { dcp_image_field "$1" "platforms[0].layers[$2].digest"; }
pin=$(image_bytes library/lru-pin:v1)
a=$(image_bytes library/lru-a:v1)
b=$(image_bytes library/lru-b:v1)
c=$(image_bytes library/lru-c:v1)
shared=$(dcp_image_field library/lru-b:v1 'platforms[0].layers[1].size')
dcp_assert_eq "$(layer library/lru-b:v1 1)" "$(layer library/lru-c:v1 1)" "b and c share a layer"
before_c=$((pin + a + b))
all=$((before_c + c - shared))
b_own=$((b - shared))
# A limit whose high watermark (95%) lies between the cache before c's layer and after it,
# and whose low watermark (85%) is reached by removing b's own content alone.
limit=$(((all - b_own) * 100 / 85 + 2048))
[ $((limit * 95 / 100)) -lt "$all" ] && [ $((limit * 95 / 100)) -gt $((before_c + 8192)) ] ||
  dcp_die "no limit separates the pulls: all=$all before_c=$before_c limit=$limit"

storage="$DCP_TMP/cache"
htpasswd -nbB admin "s3cret-admin" >"$DCP_TMP/admin.htpasswd" 2>/dev/null
cfg=$(dcp_proxy_config proxy "$storage" "docker.io=$up_URL,default=true,tag_ttl=10m")
cp "$cfg" "$DCP_TMP/proxy.base.yaml"
write_config() { # LIMIT
  cat "$DCP_TMP/proxy.base.yaml" - >"$cfg" <<YAML
auth: {admin_htpasswd: "$DCP_TMP/admin.htpasswd"}
cache: {max_size: $1, cleanup_interval: 1h}
warm: {images: [docker.io/library/lru-pin:v1], refresh_interval: 1h}
YAML
}
write_config "$limit"
dcp_start_proxy proxy "$cfg"
P="127.0.0.1:$proxy_PORT"
ADMIN=(-u admin:s3cret-admin)

blob_file() { printf '%s/blobs/sha256/%s/%s' "$storage" "${1:7:2}" "${1#sha256:}"; }
assert_cached() { [ -f "$(blob_file "$1")" ] || dcp_fail "$2 ($1) is not in the cache"; }
assert_gone() { [ ! -e "$(blob_file "$1")" ] || dcp_fail "$2 ($1) is still in the cache"; }
pull() { # REF
  local dest="$DCP_TMP/pull/${1//[:\/]/_}"
  rm -rf "$dest" && mkdir -p "$DCP_TMP/pull"
  skopeo copy --quiet --src-tls-verify=false "docker://$P/$1" "dir:$dest" ||
    dcp_fail "skopeo copy docker://$P/$1 failed"
  dcp_check_dir "$dest" "$1"
}
log_start=1
mark_log() { log_start=$(($(wc -l <"$proxy_LOG") + 1)); }
removed_log() { # DIGEST: the proxy logged this image's removal since mark_log
  local deadline=$((SECONDS + 30))
  until tail -n "+$log_start" "$proxy_LOG" | grep -q "image removed: .* digest=$1 "; do
    [ "$SECONDS" -lt "$deadline" ] || dcp_die "the proxy did not remove $1 within 30 s"
    sleep 0.1
  done
}

# The warm list caches the pinned image at start.
dcp_wait_log "$proxy_LOG" "warm image refreshed: image=docker.io/library/lru-pin:v1 " 30 proxy
assert_cached "$(dcp_image_field library/lru-pin:v1 digest)" "the pinned image's manifest"

pull library/lru-b:v1
pull library/lru-a:v1
if grep -q "image removed:" "$proxy_LOG"; then
  dcp_fail "an image was removed while the cache was still under its high watermark"
fi
pull library/lru-c:v1
removed_log "$(dcp_image_field library/lru-b:v1 digest)"
sleep 1
dcp_assert_eq "$(grep -c "image removed:" "$proxy_LOG")" 1 "images removed after pulling c"
assert_gone "$(dcp_image_field library/lru-b:v1 digest)" "b's manifest"
assert_gone "$(layer library/lru-b:v1 0)" "b's own layer"
assert_cached "$(layer library/lru-b:v1 1)" "the layer b shares with the kept image c"
assert_cached "$(dcp_image_field library/lru-pin:v1 digest)" "the pinned image (used first)"
assert_cached "$(layer library/lru-pin:v1 0)" "the pinned image's layer"
assert_cached "$(layer library/lru-a:v1 0)" "a's layer"
assert_cached "$(layer library/lru-c:v1 0)" "c's layer"
dcp_pass "over the limit, the least recently used image went; pinned and shared content stayed"

# a and c come from the cache; b comes back from the upstream, its shared layer does not.
blob_gets() { dcp_upstream_requests up GET "/blobs/$1"; }
a_before=$(blob_gets "$(layer library/lru-a:v1 0)")
b_before=$(blob_gets "$(layer library/lru-b:v1 0)")
shared_before=$(blob_gets "$(layer library/lru-b:v1 1)")
pull library/lru-a:v1
pull library/lru-c:v1
dcp_assert_eq "$(blob_gets "$(layer library/lru-a:v1 0)")" "$a_before" "upstream GETs of a's layer"
mark_log
pull library/lru-b:v1
dcp_assert_eq "$(blob_gets "$(layer library/lru-b:v1 0)")" $((b_before + 1)) \
  "upstream GETs of b's own layer when b is pulled again"
dcp_assert_eq "$(blob_gets "$(layer library/lru-b:v1 1)")" "$shared_before" \
  "upstream GETs of the shared layer when b is pulled again"
# b back pushes the cache over again: now a is the least recently used.
removed_log "$(dcp_image_field library/lru-a:v1 digest)"
assert_gone "$(layer library/lru-a:v1 0)" "a's layer"
dcp_pass "the evicted image pulls again correctly; the next least recently used one went"

# The listing matches the disk: every manifest on disk is listed, and nothing else.
curl -sf "${ADMIN[@]}" "http://$P/admin/api/images" >"$DCP_TMP/images-api.json" ||
  dcp_die "GET /admin/api/images failed"
listed=$(jq -r '.images[].digest' "$DCP_TMP/images-api.json" | sort -u | tr '\n' ' ')
on_disk=$(find "$storage/meta/manifests/sha256" -type f -printf 'sha256:%f\n' | sort | tr '\n' ' ')
dcp_assert_eq "$listed" "$on_disk" "images the admin API lists vs manifests on disk"
dcp_assert_eq "$(jq -r --arg d "$(dcp_image_field library/lru-pin:v1 digest)" \
  '.images[] | select(.digest == $d) | .pinned' "$DCP_TMP/images-api.json")" true \
  "the admin API marks the warm image as pinned"

# Last use survives a restart: c is used after b (whose content is newer on disk).
pull library/lru-c:v1
dcp_restart_proxy proxy
P="127.0.0.1:$proxy_PORT"
now_bytes=$(curl -sf "${ADMIN[@]}" "http://$P/admin/api/summary" | jq -r .bytes)
lower=$(((now_bytes - b_own) * 100 / 85 + 1024))
curl -sf "${ADMIN[@]}" -X POST "http://$P/admin/api/cleanup?dry_run=true&max_size=$lower" \
  >"$DCP_TMP/dry-run.json" || dcp_die "dry run failed"
dcp_assert_eq "$(jq -r '[.images[].digest] | join(" ")' "$DCP_TMP/dry-run.json")" \
  "$(dcp_image_field library/lru-b:v1 digest)" "the dry run names the least recently used image"
assert_cached "$(layer library/lru-b:v1 0)" "b's layer after the dry run (it removes nothing)"

# The real run, from a lower limit applied by SIGHUP, removes what the dry run named.
write_config "$lower"
mark_log
kill -HUP "$(dcp_pid proxy)"
dcp_wait_log "$proxy_LOG" "configuration reloaded" 30 proxy
removed_log "$(dcp_image_field library/lru-b:v1 digest)"
sleep 1
real=$(tail -n "+$log_start" "$proxy_LOG" | grep -o "image removed: .* digest=sha256:[0-9a-f]*" |
  sed 's/.*digest=//' | sort | tr '\n' ' ')
dry=$(jq -r '.content[]' "$DCP_TMP/dry-run.json" | sort | tr '\n' ' ')
for digest in $dry; do
  assert_gone "$digest" "content the dry run named"
done
dcp_assert_eq "$real" "$(dcp_image_field library/lru-b:v1 digest) " \
  "images the real run removed after the restart"
assert_cached "$(layer library/lru-c:v1 0)" "c's layer (used after b, before the restart)"
dcp_pass "last use survived the restart; the dry run matched the real run; SIGHUP applied the limit"

# A bad configuration on reload is refused and the running one kept.
write_config lots
code=$(curl -s "${ADMIN[@]}" -o "$DCP_TMP/reload.json" -w '%{http_code}' -X POST \
  "http://$P/admin/api/reload")
dcp_assert_eq "$code" 400 "reload of a bad configuration"
dcp_assert_match "$(jq -r .error "$DCP_TMP/reload.json")" 'cache.max_size: "lots" is not a size' \
  "the refusal names the key and value"
dcp_running proxy || dcp_fail "the proxy stopped on a bad configuration"
pull library/lru-c:v1
dcp_pass "a bad configuration on reload is refused and the running one kept"
