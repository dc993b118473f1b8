#!/usr/bin/env bash
# The admin API and the warm list, with real pulls through the proxy from a docker-registry
# upstream. Proves: unauthenticated, wrong-password and cross-site calls are refused; the
# listing names what was pulled; delete (image, tag, repository) then pull fetches again from
# the upstream; invalidating a tag makes the next pull ask the upstream; a warm-listed tag moved
# upstream is fetched on schedule without any client pull, and then served with the upstream
# down; eviction while a 100 MB blob is being served lets the download complete intact; the
# metrics show evictions, the limit and the warm list's freshness.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

DCP_IMAGE_ARGS="--lru-set --big-size $((100 * 1024 * 1024))"
dcp_start_upstream up none
dcp_load_images up
U="127.0.0.1:$up_PORT"
# The warm tag starts as lru-a.
skopeo copy --quiet --dest-tls-verify=false "oci:$DCP_TMP/images/oci:lru-a" \
  "docker://$U/library/moving:latest" || dcp_die "cannot push library/moving:latest"

storage="$DCP_TMP/cache"
htpasswd -nbB admin "s3cret-admin" >"$DCP_TMP/admin.htpasswd" 2>/dev/null
cfg=$(dcp_proxy_config proxy "$storage" "docker.io=$up_URL,default=true,tag_ttl=10m")
cp "$cfg" "$DCP_TMP/proxy.base.yaml"
extra_upstream=""
write_config() { # MAX_SIZE; $extra_upstream, when set, is one more upstream's YAML
  {
    cat "$DCP_TMP/proxy.base.yaml"
    printf '%s' "$extra_upstream"
    cat <<YAML
auth: {admin_htpasswd: "$DCP_TMP/admin.htpasswd"}
cache: {max_size: $1, cleanup_interval: 1h}
warm: {images: [docker.io/library/moving:latest], refresh_interval: 2s}
YAML
  } >"$cfg"
}
write_config 10GiB
dcp_start_proxy proxy "$cfg"
P="127.0.0.1:$proxy_PORT"
API="http://$P/admin/api"
ADMIN=(-u admin:s3cret-admin)

blob_file() { printf '%s/blobs/sha256/%s/%s' "$storage" "${1:7:2}" "${1#sha256:}"; }
layer() { dcp_image_field "$1" "platforms[0].layers[$2].digest"; }
pull() { # REF [DEST]
  local dest=${2:-$DCP_TMP/pull/${1//[:\/]/_}}
  rm -rf "$dest" && mkdir -p "$(dirname "$dest")"
  skopeo copy --quiet --src-tls-verify=false "docker://$P/$1" "dir:$dest" ||
    dcp_fail "skopeo copy docker://$P/$1 failed"
}

# ------------------------------------------------------------------------------ access
dcp_assert_eq "$(dcp_http GET "$API/summary")" 401 "admin API without credentials"
dcp_assert_match "$(dcp_header WWW-Authenticate)" '^Basic ' "the 401 asks for Basic credentials"
dcp_assert_eq "$(dcp_http GET "$API/summary" -u admin:wrong)" 401 "admin API, wrong password"
dcp_assert_eq "$(dcp_http GET "$API/summary" "${ADMIN[@]}")" 200 "admin API, right password"
dcp_assert_eq "$(dcp_http GET "http://$P/admin/" -u admin:wrong)" 401 "admin page, wrong password"
dcp_assert_eq "$(dcp_http POST "$API/cleanup" "${ADMIN[@]}" -H "Origin: http://evil.example")" \
  403 "a change from another site's page"
dcp_assert_eq "$(dcp_http POST "$API/cleanup?dry_run=true" "${ADMIN[@]}" \
  -H "Origin: http://$P")" 200 "a change from the admin page's own origin"
dcp_assert_eq "$(dcp_http DELETE "$API/images?upstream=docker.io&repository=Bad..Name&tag=v1" \
  "${ADMIN[@]}")" 400 "a delete with a bad repository name"
dcp_assert_match "$(jq -r .error "$DCP_TMP/body")" 'repository="Bad..Name"' "the 400 names it"
dcp_pass "the admin API refuses missing and wrong credentials, other sites and bad names"

# ------------------------------------------------------------------------------ warm list
a_digest=$(dcp_image_field library/lru-a:v1 digest)
b_digest=$(dcp_image_field library/lru-b:v1 digest)
dcp_wait_log "$proxy_LOG" "warm image refreshed: image=docker.io/library/moving:latest digest=$a_digest" 30 proxy
skopeo copy --quiet --dest-tls-verify=false "oci:$DCP_TMP/images/oci:lru-b" \
  "docker://$U/library/moving:latest" || dcp_die "cannot move library/moving:latest"
dcp_wait_log "$proxy_LOG" "warm image refreshed: image=docker.io/library/moving:latest digest=$b_digest" 30 proxy
if grep -Eq "request served: method=(GET|HEAD) path=/v2/library/moving/" "$proxy_LOG"; then
  dcp_fail "a client request for library/moving reached the proxy: the refresh proves nothing"
fi
for digest in "$b_digest" "$(layer library/lru-b:v1 0)" "$(layer library/lru-b:v1 1)"; do
  [ -f "$(blob_file "$digest")" ] || dcp_fail "the moved tag's $digest was not fetched"
done
curl -sf "${ADMIN[@]}" "$API/warm" >"$DCP_TMP/warm.json" || dcp_die "GET /admin/api/warm failed"
dcp_assert_eq "$(jq -r '.images[0].digest' "$DCP_TMP/warm.json")" "$b_digest" \
  "the warm list's digest in the admin API"
curl -sf "${ADMIN[@]}" "http://$P/metrics" >"$DCP_TMP/metrics.txt"
dcp_assert_match "$(cat "$DCP_TMP/metrics.txt")" $'dcp_warm_images 1\n' "metrics: warm images"
dcp_assert_match "$(cat "$DCP_TMP/metrics.txt")" $'dcp_warm_images_stale 0\n' "metrics: none stale"
dcp_assert_match "$(cat "$DCP_TMP/metrics.txt")" \
  'dcp_warm_image_age_seconds\{image="docker.io/library/moving:latest"\} [0-9]+' \
  "metrics: the warm image's age"
dcp_pass "a warm-listed tag moved upstream was fetched on schedule, with no client pull"

# ------------------------------------------------------------------------------ listing, delete
pull library/lru-c:v1
c_digest=$(dcp_image_field library/lru-c:v1 digest)
curl -sf "${ADMIN[@]}" "$API/images" >"$DCP_TMP/images-api.json"
entry() { jq -c --arg r "$1" '.images[] | select(.repository == $r)' "$DCP_TMP/images-api.json"; }
dcp_assert_eq "$(entry library/lru-c | jq -r '.digest + " " + (.tags | join(","))')" \
  "$c_digest v1" "the listing's entry for lru-c"
dcp_assert_eq "$(entry library/lru-c | jq -r .bytes)" \
  "$(jq -r '.images[] | select(.reference == "library/lru-c:v1") | .platforms[0]
    | .size + .config.size + ([.layers[].size] | add)' "$DCP_TMP/images.json")" \
  "the listing's size for lru-c (manifest, config and layers)"
dcp_assert_match "$(entry library/lru-c | jq -r .last_used)" '^20[0-9-]+T[0-9:]+Z$' \
  "the listing's last use for lru-c"

gets_before=$(dcp_upstream_requests up GET "/blobs/$(layer library/lru-c:v1 0)")
dcp_assert_eq "$(dcp_http DELETE "$API/images?upstream=docker.io&repository=library/lru-c&digest=$c_digest" \
  "${ADMIN[@]}")" 200 "delete an image"
[ ! -e "$(blob_file "$(layer library/lru-c:v1 0)")" ] || dcp_fail "the deleted image's layer stays"
# lru-b (the warm image, as library/moving) shares a layer with lru-c: it stays.
[ -f "$(blob_file "$(layer library/lru-c:v1 1)")" ] || dcp_fail "a layer of a kept image went"
pull library/lru-c:v1 "$DCP_TMP/pull/c-again"
dcp_check_dir "$DCP_TMP/pull/c-again" library/lru-c:v1
dcp_assert_eq "$(dcp_upstream_requests up GET "/blobs/$(layer library/lru-c:v1 0)")" \
  $((gets_before + 1)) "upstream GETs of the deleted layer after the next pull"

dcp_assert_eq "$(dcp_http DELETE "$API/tags?upstream=docker.io&repository=library/lru-c&tag=v1" \
  "${ADMIN[@]}")" 200 "delete a tag"
gets=$(dcp_upstream_requests up GET "/v2/library/lru-c/manifests/v1")
pull library/lru-c:v1
dcp_assert_eq "$(dcp_upstream_requests up GET "/v2/library/lru-c/manifests/v1")" $((gets + 1)) \
  "upstream GETs of a deleted tag at its next pull"
[ -f "$(blob_file "$(layer library/lru-c:v1 0)")" ] || dcp_fail "deleting a tag removed content"

dcp_assert_eq "$(dcp_http DELETE "$API/repositories?upstream=docker.io&repository=library/lru-c" \
  "${ADMIN[@]}")" 200 "delete a repository"
dcp_assert_eq "$(curl -sf "http://$P/v2/_catalog" | jq -r '.repositories | index("library/lru-c")')" \
  null "the deleted repository in the catalog"
dcp_assert_eq "$(dcp_http DELETE "$API/repositories?upstream=docker.io&repository=library/lru-c" \
  "${ADMIN[@]}")" 404 "delete a repository that is not cached"
dcp_pass "delete of an image, a tag and a repository; the next pull fetches again"

# ------------------------------------------------------------------------------ invalidate
pull library/lru-a:v1
heads=$(dcp_upstream_requests up HEAD "/v2/library/lru-a/manifests/v1")
pull library/lru-a:v1
dcp_assert_eq "$(dcp_upstream_requests up HEAD "/v2/library/lru-a/manifests/v1")" "$heads" \
  "upstream HEADs for a tag inside its lifetime"
dcp_assert_eq "$(dcp_http POST "$API/tags/invalidate?upstream=docker.io&repository=library/lru-a&tag=v1" \
  "${ADMIN[@]}")" 200 "invalidate a tag"
pull library/lru-a:v1
dcp_assert_eq "$(dcp_upstream_requests up HEAD "/v2/library/lru-a/manifests/v1")" \
  $((heads + 1)) "upstream HEADs for the invalidated tag's next pull"
dcp_pass "an invalidated tag is revalidated at its next pull"

# ------------------------------------------------------------------------------ upstreams
curl -sf "${ADMIN[@]}" "$API/upstreams" >"$DCP_TMP/upstreams.json"
dcp_assert_eq "$(jq -r '.upstreams[0] | "\(.name) \(.url) \(.default) \(.reachable)"' \
  "$DCP_TMP/upstreams.json")" "docker.io $up_URL true true" "the upstreams in the admin API"

# ------------------------------------------------------------------------------ reload upstreams
mirror="http://$P/v2/library/lru-a/manifests/v1?ns=mirror.test"
dcp_assert_eq "$(dcp_http GET "$mirror")" 403 "an ns that names no upstream"
dcp_assert_oci_error 403 DENIED "an ns that names no upstream"
extra_upstream=$'  - name: "mirror.test"\n    url: "'"$up_URL"$'"\n'
write_config 10GiB
dcp_assert_eq "$(dcp_http POST "$API/reload" "${ADMIN[@]}")" 200 "reload through the API"
dcp_assert_eq "$(dcp_http GET "$mirror")" 200 "the upstream added by the reload"
dcp_assert_eq "$(curl -sf "${ADMIN[@]}" "$API/upstreams" | jq -r '[.upstreams[].name] | join(" ")')" \
  "docker.io mirror.test" "upstreams after the reload"
dcp_pass "a reload adds an upstream without a restart"

# ------------------------------------------------------------------------------ eviction mid-read
big=$(layer library/big:v1 0)
big_size=$(dcp_image_field library/big:v1 'platforms[0].layers[0].size')
curl -sf "http://$P/v2/library/big/manifests/v1" -o /dev/null || dcp_die "big manifest"
curl -sf "http://$P/v2/library/big/blobs/$big" -o /dev/null || dcp_die "big blob, cold"
pull library/lru-pin:v1 # newer than big: big is the least recently used
curl -s --limit-rate 20M "http://$P/v2/library/big/blobs/$big" -o "$DCP_TMP/big.slow" &
slow=$!
sleep 1
now_bytes=$(curl -sf "${ADMIN[@]}" "$API/summary" | jq -r .bytes)
write_config $((now_bytes - big_size / 2))
kill -HUP "$(dcp_pid proxy)"
dcp_wait_log "$proxy_LOG" "image removed: .* names=docker.io/library/big:v1 " 30 proxy
[ ! -e "$(blob_file "$big")" ] || dcp_fail "the big blob is still on disk after its eviction"
kill -0 "$slow" 2>/dev/null || dcp_fail "the slow download ended before the eviction: no proof"
wait "$slow" || dcp_fail "the download running across the eviction failed"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/big.slow")" "$big" \
  "digest of the 100 MB blob downloaded across its eviction"
curl -sf "${ADMIN[@]}" "http://$P/metrics" >"$DCP_TMP/metrics.txt"
dcp_assert_match "$(cat "$DCP_TMP/metrics.txt")" 'dcp_cache_evictions_total\{reason="over-limit"\} [1-9]' \
  "metrics: evictions"
dcp_assert_match "$(cat "$DCP_TMP/metrics.txt")" "dcp_cache_limit_bytes $((now_bytes - big_size / 2))" \
  "metrics: the limit"
dcp_pass "eviction while a 100 MB blob is served: the download completes with the right digest"

# ------------------------------------------------------------------------------ upstream down
dcp_stop_upstream up
pull library/moving:latest "$DCP_TMP/pull/moving"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/pull/moving/manifest.json")" "$b_digest" \
  "the warm tag served with the upstream down"
dcp_check_dir "$DCP_TMP/pull/moving" library/lru-b:v1
dcp_pass "the refreshed warm image is served from the cache with the upstream down"
