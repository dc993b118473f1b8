#!/usr/bin/env bash
# dockerd 20.10 (classic image store) with the proxy as its registry mirror.
#
# Proves: `docker pull busybox:v1` (and a Docker schema2, an OCI and a multi-arch image) goes
# to the mirror as library/<name>, every manifest and blob of it passes through the proxy, the
# image has the digest we generated, and the pulled busybox runs. A second dockerd with an
# empty data root pulls the same image without a single new blob GET on the upstream, nor any
# manifest HEAD or GET (the tag is inside its lifetime, for Docker's Accept headers). With the
# proxy stopped, a pull fails: the daemon has no other way to the images.
#
# dockerd falls back to Docker Hub silently when the mirror fails; Hub is unreachable here (own
# network namespace, see lib_clients.sh), and the proxy's and the daemon's logs are checked, so
# a pull that bypassed the proxy cannot pass.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_clients.sh"
dcp_setup

dcp_start_upstream hub
dcp_load_images hub
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$HUB_URL,default=true")
dcp_start_proxy proxy "$cfg"

# check_pulled_through_proxy NAME IMAGE: every blob of the amd64 image library/IMAGE:v1 and a
# manifest were served by the proxy with a success status.
check_pulled_through_proxy() {
  local image=$1 ref="library/$1:v1" digest n blob
  digest=$(dcp_image_field "$ref" digest)
  n=$(dcp_proxy_served proxy GET "^/v2/library/$image/manifests/(v1|$digest)\$" 200)
  dcp_assert_ge "$n" 1 "manifest GETs of $ref answered 200 by the proxy"
  for blob in $(dcp_image_blobs "$ref" amd64); do
    n=$(dcp_proxy_served proxy GET "^/v2/library/$image/blobs/$blob\$" '200|206')
    dcp_assert_ge "$n" 1 "GETs of blob $blob of $ref answered by the proxy"
  done
}

# check_digest DAEMON IMAGE: the daemon recorded the generated manifest digest for IMAGE:v1.
check_digest() {
  local got
  got=$(dcp_docker "$1" image inspect --format '{{join .RepoDigests " "}}' "$2:v1")
  dcp_assert_eq "$got" "$2@$(dcp_image_field "library/$2:v1" digest)" "RepoDigests of $2:v1 on $1"
}

# docker_pull DAEMON REF: pull, with the CLI's output in the failure message.
docker_pull() {
  dcp_docker "$1" pull "$2" >"$DCP_TMP/pull.out" 2>&1 ||
    dcp_fail "docker pull $2 on $1 failed: $(cat "$DCP_TMP/pull.out")"
}

# no_mirror_fallback DAEMON: the daemon never gave up on the mirror for another endpoint.
no_mirror_fallback() {
  local log_var="${1^^}_LOG"
  if grep -q 'Attempting next endpoint for pull' "${!log_var}"; then
    grep 'Attempting next endpoint' "${!log_var}" >&2
    dcp_fail "$1 fell back from the mirror to another endpoint"
  fi
}

# --- first daemon: cold cache -----------------------------------------------------------------
dcp_start_dockerd dockerd1 "$PROXY_URL"

# Short names: Docker turns busybox:v1 into docker.io/library/busybox:v1 and asks the mirror for
# library/busybox. multiarch is an OCI index; Docker fetches the amd64 manifest from it.
for image in busybox dockerv2 ocisingle multiarch; do
  docker_pull dockerd1 "$image:v1"
  check_digest dockerd1 "$image"
  check_pulled_through_proxy "$image"
done
n=$(dcp_proxy_served proxy GET "^/v2/library/multiarch/manifests/$(dcp_platform_digest library/multiarch:v1 amd64)\$" 200)
dcp_assert_ge "$n" 1 "GETs of the amd64 manifest of multiarch:v1 answered 200 by the proxy"

out=$(dcp_docker dockerd1 run --rm --network none busybox:v1)
dcp_assert_eq "$out" hello-from-dcp "output of busybox:v1 on dockerd1"
no_mirror_fallback dockerd1

# --- second daemon, empty data root: the blobs come from the proxy's cache ----------------------
upstream_blob_gets=$(dcp_upstream_requests hub GET '^/v2/library/busybox/blobs/')
dcp_assert_ge "$upstream_blob_gets" 1 "busybox blob GETs on the upstream after the first pull"
# Inside the tag's lifetime (5 minutes by default) the second pull, with the Accept headers
# Docker sends, costs the upstream no manifest request at all: not even a HEAD.
upstream_manifest_heads=$(dcp_upstream_requests hub HEAD '^/v2/library/busybox/manifests/')
upstream_manifest_gets=$(dcp_upstream_requests hub GET '^/v2/library/busybox/manifests/')
proxy_manifest_heads=$(dcp_proxy_served proxy HEAD '^/v2/library/busybox/manifests/v1$' 200)
declare -A cache_hits=()
for blob in $(dcp_image_blobs library/busybox:v1 amd64); do
  cache_hits[$blob]=$(dcp_proxy_served proxy GET "^/v2/library/busybox/blobs/$blob\$" '200|206' cache)
done

dcp_start_dockerd dockerd2 "$PROXY_URL"
docker_pull dockerd2 busybox:v1
check_digest dockerd2 busybox
out=$(dcp_docker dockerd2 run --rm --network none busybox:v1)
dcp_assert_eq "$out" hello-from-dcp "output of busybox:v1 on dockerd2"
no_mirror_fallback dockerd2

dcp_assert_eq "$(dcp_upstream_requests hub GET '^/v2/library/busybox/blobs/')" \
  "$upstream_blob_gets" "busybox blob GETs on the upstream after the second daemon's pull"
for blob in $(dcp_image_blobs library/busybox:v1 amd64); do
  n=$(dcp_proxy_served proxy GET "^/v2/library/busybox/blobs/$blob\$" '200|206' cache)
  dcp_assert_ge "$n" $((cache_hits[$blob] + 1)) "GETs of blob $blob served from the proxy's cache"
done
dcp_assert_ge "$(dcp_proxy_served proxy HEAD '^/v2/library/busybox/manifests/v1$' 200)" \
  $((proxy_manifest_heads + 1)) "HEADs of busybox:v1 the proxy answered for the second daemon"
dcp_assert_eq "$(dcp_upstream_requests hub HEAD '^/v2/library/busybox/manifests/')" \
  "$upstream_manifest_heads" "busybox manifest HEADs on the upstream after the second daemon's pull"
dcp_assert_eq "$(dcp_upstream_requests hub GET '^/v2/library/busybox/manifests/')" \
  "$upstream_manifest_gets" "busybox manifest GETs on the upstream after the second daemon's pull"

# --- control: without the proxy the daemon cannot get an image it does not have ----------------
dcp_stop proxy
if dcp_docker dockerd2 pull dockerv2:v1 >"$DCP_TMP/pull.out" 2>&1; then
  dcp_fail "dockerd2 pulled dockerv2:v1 with the proxy stopped: some other path reaches the images"
fi

dcp_pass "docker pulls through the proxy as a registry mirror; a second daemon is served from cache"
