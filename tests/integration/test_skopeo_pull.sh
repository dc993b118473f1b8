#!/usr/bin/env bash
# skopeo pulls every generated image through the proxy, by the default route
# (127.0.0.1:P/library/x) and by the prefix route podman/skopeo mirrors use
# (127.0.0.1:P/docker.io/library/x, and docker.io/x for an official image without library/).
# Proves: the bytes are the upstream's (manifest digests and every blob), multi-arch children
# resolve per platform, and once cached a pull costs the upstream no manifest or blob GET.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

dcp_start_upstream up none
dcp_load_images up
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$up_URL,default=true,tag_ttl=10m")
dcp_start_proxy proxy "$cfg"
P="127.0.0.1:$proxy_PORT"

# pull_and_check ROUTE_PREFIX REF: copy to a dir and compare with what was generated.
pull_and_check() {
  local prefix=$1 ref=$2 n i dest
  local src="$P/$prefix$ref"
  dcp_assert_eq "$(dcp_raw_digest "$src")" "$(dcp_image_field "$ref" digest)" \
    "manifest digest of $src"
  n=$(dcp_image_field "$ref" 'platforms | length')
  for ((i = 0; i < n; i++)); do
    local arch
    arch=$(dcp_image_field "$ref" "platforms[$i].architecture")
    dest="$DCP_TMP/pull/${prefix//\//_}${ref//[:\/]/_}-$arch"
    rm -rf "$dest" && mkdir -p "$DCP_TMP/pull"
    skopeo copy --quiet --src-tls-verify=false --override-os linux --override-arch "$arch" \
      "docker://$src" "dir:$dest" || dcp_fail "skopeo copy docker://$src ($arch) failed"
    dcp_check_dir "$dest" "$ref" "$i"
  done
}

mapfile -t refs < <(dcp_image_refs)

# Cold: everything comes from the upstream through the default route.
for ref in "${refs[@]}"; do
  pull_and_check "" "$ref"
done
dcp_pass "cold pulls by the default route give the upstream's bytes (${#refs[@]} images)"

proxy_upstream_before=$(dcp_proxy_requests proxy GET '/blobs/' upstream)
proxy_cache_before=$(dcp_proxy_requests proxy GET '/blobs/' cache)
manifests_before=$(dcp_upstream_requests up GET '/manifests/')
blobs_before=$(dcp_upstream_requests up GET '/blobs/')
[ "$blobs_before" -gt 0 ] || dcp_fail "the upstream log shows no blob GET after cold pulls"

# Warm: the same images again, by both routes, plus the short official name.
for ref in "${refs[@]}"; do
  pull_and_check "" "$ref"
  pull_and_check "docker.io/" "$ref"
done
short="$DCP_TMP/pull/short-busybox"
mkdir -p "$DCP_TMP/pull"
skopeo copy --quiet --src-tls-verify=false "docker://$P/docker.io/busybox:v1" "dir:$short" ||
  dcp_fail "prefix route without library/ (docker.io/busybox:v1) failed"
dcp_check_dir "$short" library/busybox:v1

dcp_assert_eq "$(dcp_upstream_requests up GET '/manifests/')" "$manifests_before" \
  "upstream manifest GETs during warm pulls (must be served from the cache)"
dcp_assert_eq "$(dcp_upstream_requests up GET '/blobs/')" "$blobs_before" \
  "upstream blob GETs during warm pulls (must be served from the cache)"
# The proxy's own account agrees: warm blob answers say source=cache.
dcp_assert_eq "$(dcp_proxy_requests proxy GET '/blobs/' upstream)" "$proxy_upstream_before" \
  "blob answers the proxy logged as source=upstream during warm pulls"
[ "$(dcp_proxy_requests proxy GET '/blobs/' cache)" -gt "$proxy_cache_before" ] ||
  dcp_fail "the proxy logged no blob answer from its cache during warm pulls"
dcp_pass "warm pulls by both routes cost the upstream no manifest or blob GET"

# Each platform of the index was pulled by its own digest too.
for arch in amd64 arm64; do
  idx=$(jq -r --arg a "$arch" '.images[] | select(.reference == "library/multiarch:v1")
    | .platforms | map(.architecture) | index($a)' "$DCP_TMP/images.json")
  child=$(dcp_image_field library/multiarch:v1 "platforms[$idx].digest")
  dcp_assert_eq "$(dcp_raw_digest "$P/library/multiarch@$child")" "$child" \
    "multiarch $arch child by digest"
done
dcp_pass "multi-arch index: amd64 and arm64 children pulled and addressable by digest"
