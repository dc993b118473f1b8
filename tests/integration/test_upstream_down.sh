#!/usr/bin/env bash
# The upstream goes away. Proves: an expired tag is revalidated with a HEAD (no GET) while the
# upstream is up; once it is down, cached images still pull (tags served stale after a failed
# revalidation), uncached ones fail fast with an OCI error saying the upstream is unreachable;
# a proxy can start with its upstream down and serve its cache; when the upstream is back,
# uncached images pull again.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'

dcp_start_upstream up none
dcp_load_images up
storage="$DCP_TMP/cache"
cfg=$(dcp_proxy_config proxy "$storage" "docker.io=$up_URL,default=true,tag_ttl=1s")
dcp_start_proxy proxy "$cfg"
mkdir -p "$DCP_TMP/pull"

# pull REF DEST: skopeo through the proxy, then compare with the generated image.
pull() {
  rm -rf "$2"
  timeout 300 skopeo copy --quiet --src-tls-verify=false \
    "docker://127.0.0.1:$proxy_PORT/$1" "dir:$2" || return 1
  dcp_check_dir "$2" "$1"
}

pull library/ocisingle:v1 "$DCP_TMP/pull/a" || dcp_fail "first pull of library/ocisingle:v1"
dcp_pass "image cached while the upstream is up"

# Revalidation after the TTL: a HEAD, never a GET (Docker Hub counts GETs as pulls).
tag_path='/library/ocisingle/manifests/v1$'
heads=$(dcp_upstream_requests up HEAD "$tag_path")
gets=$(dcp_upstream_requests up GET "$tag_path")
sleep 2 # let the 1 s tag TTL run out
pull library/ocisingle:v1 "$DCP_TMP/pull/b" || dcp_fail "pull after the tag TTL"
# The revalidation may run in the background after answering: wait for it, bounded.
deadline=$((SECONDS + 20))
until [ "$(dcp_upstream_requests up HEAD "$tag_path")" -gt "$heads" ]; do
  [ "$SECONDS" -lt "$deadline" ] || dcp_fail "an expired tag was not revalidated with a HEAD"
  sleep 0.2
done
dcp_assert_eq "$(dcp_upstream_requests up GET "$tag_path")" "$gets" \
  "manifest GETs for revalidating an unchanged tag"
dcp_pass "an expired tag is revalidated with HEAD only"

dcp_stop_upstream up
sleep 2 # the tag is expired again: the next pull must try to revalidate and fail
pull library/ocisingle:v1 "$DCP_TMP/pull/c" ||
  dcp_fail "a cached image did not pull with the upstream down (stale tag not served)"
dcp_pass "upstream down: the cached image still pulls (stale tag served)"

code=$(dcp_http GET "$proxy_URL/v2/library/dockerv2/manifests/v1" -H "Accept: $ACCEPT")
dcp_assert_oci_error 503 '[A-Z_]+' "uncached manifest with the upstream down"
jq -r '.errors[0].message' "$DCP_TMP/body" | grep -Eiq 'unreachable|unavailable|refused|connect' ||
  dcp_fail "the 503 does not say the upstream is unreachable: $(cat "$DCP_TMP/body")"
blob=$(dcp_image_blob library/dockerv2:v1)
code=$(dcp_http GET "$proxy_URL/v2/library/dockerv2/blobs/$blob")
dcp_assert_oci_error 503 '[A-Z_]+' "uncached blob with the upstream down"
if pull library/dockerv2:v1 "$DCP_TMP/pull/d" 2>/dev/null; then
  dcp_fail "an uncached image pulled while the upstream is down"
fi
dcp_pass "upstream down: an uncached image fails with 503 and an 'unreachable' OCI error"

# A proxy started while its upstream is down must come up and serve what it has.
dcp_stop proxy
dcp_start_proxy proxy "$cfg"
pull library/ocisingle:v1 "$DCP_TMP/pull/e" ||
  dcp_fail "a proxy started with the upstream down does not serve its cache"
dcp_pass "a proxy started with the upstream down serves its cache"

dcp_restart_upstream up
pull library/dockerv2:v1 "$DCP_TMP/pull/f" || dcp_fail "uncached image after the upstream came back"
pull library/multiarch:v1 "$DCP_TMP/pull/g" || dcp_fail "uncached index after the upstream came back"
dcp_pass "upstream back: uncached images pull again"
