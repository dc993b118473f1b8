#!/usr/bin/env bash
# podman 4.3 (rootful, vfs) with the proxy as a registries.conf mirror under a path prefix:
# [[registry.mirror]] location = "127.0.0.1:<proxy>/docker.io". Podman works in this sandbox
# (runc only needs the lower nofile/nproc limits that dcp_write_podman_conf sets), so this is
# podman itself, plus skopeo 1.9 reading the same registries.conf.
#
# Proves: podman sends no ns parameter but the prefix, /v2/docker.io/library/busybox/...; the
# proxy routes the host-like first segment to its docker.io upstream; the fully qualified name,
# the short name busybox:v1 and docker.io/busybox:v1 all arrive there and give the generated
# digest; the image runs; pulled again after podman rmi, it costs the upstream no manifest
# request (the tag is inside its lifetime). The proxy also adds library/ to a single-segment
# name under the prefix (asked directly: podman and skopeo normalise the name before they send
# it). With the proxy stopped a pull fails: podman's fallback, docker.io itself, is unreachable
# here.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_clients.sh"
dcp_setup

dcp_start_upstream hub
dcp_load_images hub
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$HUB_URL,default=true")
dcp_start_proxy proxy "$cfg"
dcp_write_podman_conf podman "127.0.0.1:$PROXY_PORT"

busybox_digest=$(dcp_image_field library/busybox:v1 digest)
prefix=/v2/docker.io/library/busybox

podman_pull() {
  podman pull "$1" >"$DCP_TMP/podman.out" 2>&1 ||
    dcp_fail "podman pull $1 failed: $(tail -n 20 "$DCP_TMP/podman.out")"
}

manifest_gets() {
  dcp_proxy_served proxy GET "^$prefix/manifests/(v1|$busybox_digest)\$" 200
}

# --- the fully qualified name -----------------------------------------------------------------
podman_pull docker.io/library/busybox:v1
dcp_assert_eq "$(podman image inspect --format '{{.Digest}}' docker.io/library/busybox:v1)" \
  "$busybox_digest" "digest of docker.io/library/busybox:v1 in podman"
dcp_assert_ge "$(manifest_gets)" 1 "manifest GETs under $prefix answered 200"
for blob in $(dcp_image_blobs library/busybox:v1 amd64); do
  n=$(dcp_proxy_served proxy GET "^$prefix/blobs/$blob\$" '200|206')
  dcp_assert_ge "$n" 1 "GETs of blob $blob under $prefix answered by the proxy"
done
# Nothing reached the proxy without the prefix (it would be the default-upstream route).
dcp_assert_eq "$(dcp_proxy_served proxy GET '^/v2/library/busybox/')" 0 \
  "GETs for busybox without the docker.io prefix"

out=$(podman run --rm --network none docker.io/library/busybox:v1)
dcp_assert_eq "$out" hello-from-dcp "output of busybox:v1 under podman"

# --- the short names resolve to docker.io/library/busybox and take the same route --------------
# Each pull after `podman rmi` comes from the cache: the tag is inside its lifetime, so podman's
# GET by tag (with its Accept list) costs the upstream no manifest request, not even a HEAD.
up_heads=$(dcp_upstream_requests hub HEAD '^/v2/library/busybox/manifests/')
up_gets=$(dcp_upstream_requests hub GET '^/v2/library/busybox/manifests/')
for name in busybox:v1 docker.io/busybox:v1; do
  podman rmi --force docker.io/library/busybox:v1 >/dev/null
  before=$(manifest_gets)
  podman_pull "$name"
  dcp_assert_eq "$(podman image inspect --format '{{.Digest}}' "$name")" "$busybox_digest" \
    "digest of $name in podman"
  dcp_assert_ge "$(manifest_gets)" $((before + 1)) "manifest GETs under $prefix after pulling $name"
done
dcp_assert_eq "$(dcp_upstream_requests hub HEAD '^/v2/library/busybox/manifests/')" "$up_heads" \
  "busybox manifest HEADs on the upstream for the pulls after podman rmi"
dcp_assert_eq "$(dcp_upstream_requests hub GET '^/v2/library/busybox/manifests/')" "$up_gets" \
  "busybox manifest GETs on the upstream for the pulls after podman rmi"

# --- a multi-arch index through the prefix: podman takes the amd64 manifest --------------------
podman_pull docker.io/library/multiarch:v1
amd64=$(dcp_platform_digest library/multiarch:v1 amd64)
n=$(dcp_proxy_served proxy GET "^/v2/docker.io/library/multiarch/manifests/$amd64\$" 200)
dcp_assert_ge "$n" 1 "GETs of the amd64 manifest of multiarch:v1 under the prefix"
for blob in $(dcp_image_blobs library/multiarch:v1 amd64); do
  n=$(dcp_proxy_served proxy GET "^/v2/docker.io/library/multiarch/blobs/$blob\$" '200|206')
  dcp_assert_ge "$n" 1 "GETs of multiarch blob $blob under the prefix"
done

# --- skopeo with the same registries.conf ------------------------------------------------------
skopeo --registries-conf "$PODMAN_REGISTRIES_CONF" copy --quiet \
  docker://docker.io/library/dockerv2:v1 "dir:$DCP_TMP/skopeo-dockerv2" ||
  dcp_fail "skopeo copy of docker.io/library/dockerv2:v1 through the mirror failed"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/skopeo-dockerv2/manifest.json")" \
  "$(dcp_image_field library/dockerv2:v1 digest)" "digest of dockerv2:v1 copied by skopeo"
n=$(dcp_proxy_served proxy GET "^/v2/docker.io/library/dockerv2/manifests/" 200)
dcp_assert_ge "$n" 1 "skopeo's manifest GETs for dockerv2 under the prefix"

# --- a single-segment name under the prefix, as a client that does not normalise sends it -----
code=$(dcp_http GET "$PROXY_URL/v2/docker.io/busybox/manifests/v1" \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json')
dcp_assert_eq "$code" 200 "GET /v2/docker.io/busybox/manifests/v1"
dcp_assert_eq "$(dcp_header Docker-Content-Digest)" "$busybox_digest" \
  "Docker-Content-Digest of /v2/docker.io/busybox/manifests/v1"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/body")" "$busybox_digest" \
  "body of /v2/docker.io/busybox/manifests/v1"

# --- control: without the proxy podman cannot get an image it does not have --------------------
dcp_stop proxy
if podman pull docker.io/library/ocisingle:v1 >"$DCP_TMP/podman.out" 2>&1; then
  dcp_fail "podman pulled ocisingle:v1 with the proxy stopped: some other path reaches the images"
fi

dcp_pass "podman and skopeo pull through the proxy's docker.io path prefix"
