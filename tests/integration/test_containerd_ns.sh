#!/usr/bin/env bash
# containerd 1.6 (ctr with a hosts directory) pulling through the proxy as a mirror.
#
# Proves: containerd puts ?ns=<registry> on every request to a mirror, and the proxy routes by
# it: docker.io/library/ocisingle:v1 comes from the upstream configured as docker.io, and
# 127.0.0.1:<port>/library/dockerv2:v1 from the upstream configured under that name (and not
# from the default upstream, which holds the same repository), both with the generated
# digests. Pulled again after ctr images rm, an image inside its tag lifetime costs the upstream
# no request at all. An ns the proxy has no upstream for (quay.io) is refused without touching
# any upstream.
# A multi-arch pull for linux/arm64 fetches exactly the arm64 manifest and blobs; an
# --all-platforms pull then fetches the amd64 ones. With the proxy stopped, pulls fail: the
# hosts.toml files name only the proxy, docker.io is unreachable, and the second upstream
# speaks plain http while containerd's fallback to the registry itself uses https.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_clients.sh"
dcp_setup

dcp_start_upstream hub
dcp_start_upstream other
dcp_load_images hub
dcp_load_images other # same seed, same digests: images.json stays valid for both
other_host="127.0.0.1:$OTHER_PORT"
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$HUB_URL,default=true" \
  "$other_host=$OTHER_URL")
dcp_start_proxy proxy "$cfg"

dcp_start_containerd ctd
hosts="$DCP_TMP/hosts.d"
dcp_write_hosts_dir "$hosts" "$PROXY_URL" docker.io "$other_host"

# ctr_pull ARGS... REF: pull into the private containerd through the hosts directory. No
# --plain-http: every host in hosts.toml names its scheme (http for the proxy), and ctr 1.6
# keeps an explicit scheme either way, so the fallback to server = https://127.0.0.1:<port>
# fails against the plain-http upstream ("server gave HTTP response to HTTPS client").
ctr_pull() {
  dcp_ctr ctd images pull --hosts-dir "$hosts" "$@" >"$DCP_TMP/ctr.out" 2>&1 ||
    dcp_fail "ctr images pull $* failed: $(tail -n 20 "$DCP_TMP/ctr.out")"
}

# ctr_digest REF: the digest containerd recorded for image REF.
ctr_digest() {
  dcp_ctr ctd images ls "name==$1" | awk 'NR > 1 { print $3 }'
}

# ns_re REGISTRY: the query a mirror request for REGISTRY carries. containerd encodes the
# value with url.Values, so host:port arrives as host%3Aport.
ns_re() {
  local v=${1//./\\.}
  printf '\\?ns=%s$' "${v//:/(:|%3A)}"
}

# check_through_proxy_with_ns REF REGISTRY ARCH: the manifest for ARCH and every blob of it were
# answered by the proxy with ?ns=REGISTRY on the request.
check_through_proxy_with_ns() {
  local ref=$1 ns name digest blob n
  ns=$(ns_re "$2")
  name=${ref%:*}
  digest=$(dcp_platform_digest "$ref" "$3")
  n=$(dcp_proxy_served proxy GET "^/v2/$name/manifests/$digest$ns" 200)
  dcp_assert_ge "$n" 1 "GETs of the $3 manifest of $ref with ns=$2 answered 200 by the proxy"
  for blob in $(dcp_image_blobs "$ref" "$3"); do
    n=$(dcp_proxy_served proxy GET "^/v2/$name/blobs/$blob$ns" '200|206')
    dcp_assert_ge "$n" 1 "GETs of blob $blob of $ref with ns=$2 answered by the proxy"
  done
}

# --- docker.io through ?ns=docker.io ----------------------------------------------------------
ctr_pull docker.io/library/ocisingle:v1
dcp_assert_eq "$(ctr_digest docker.io/library/ocisingle:v1)" \
  "$(dcp_image_field library/ocisingle:v1 digest)" "digest of docker.io/library/ocisingle:v1"
check_through_proxy_with_ns library/ocisingle:v1 docker.io amd64
n=$(dcp_proxy_served proxy HEAD "^/v2/library/ocisingle/manifests/v1$(ns_re docker.io)" 200)
dcp_assert_ge "$n" 1 "HEADs resolving ocisingle:v1 with ns=docker.io answered 200"
# Every request containerd made for the repository carried ns.
for method in GET HEAD; do
  n=$(dcp_proxy_served proxy "$method" '^/v2/library/ocisingle/[^?]*$')
  dcp_assert_eq "$n" 0 "$method requests for library/ocisingle without a query"
done
n=$(dcp_upstream_requests hub GET "^/v2/library/ocisingle/blobs/")
dcp_assert_ge "$n" 1 "ocisingle blob GETs on the docker.io upstream"

# --- the same pull again, with nothing left in containerd: all from the proxy's cache -----------
# The tag is inside its lifetime: containerd's resolve (HEAD, with its Accept list) and every
# fetch cost the upstream nothing, not even a HEAD.
manifest=$(dcp_image_field library/ocisingle:v1 digest)
dcp_ctr ctd images rm --sync docker.io/library/ocisingle:v1 >/dev/null ||
  dcp_fail "ctr images rm of ocisingle:v1 failed"
dcp_ctr ctd content prune references >/dev/null 2>&1 || true
if dcp_ctr ctd content ls -q | grep -qx "$manifest"; then
  dcp_die "containerd kept the manifest of ocisingle:v1: a second pull would not fetch it"
fi
up_heads=$(dcp_upstream_requests hub HEAD '^/v2/library/ocisingle/manifests/')
up_gets=$(dcp_upstream_requests hub GET '^/v2/library/ocisingle/')
proxy_heads=$(dcp_proxy_served proxy HEAD "^/v2/library/ocisingle/manifests/v1$(ns_re docker.io)" 200)
ctr_pull docker.io/library/ocisingle:v1
dcp_assert_eq "$(ctr_digest docker.io/library/ocisingle:v1)" "$manifest" \
  "digest of docker.io/library/ocisingle:v1 pulled again"
dcp_assert_ge "$(dcp_proxy_served proxy HEAD "^/v2/library/ocisingle/manifests/v1$(ns_re docker.io)" 200)" \
  $((proxy_heads + 1)) "HEADs resolving ocisingle:v1 again, answered by the proxy"
dcp_assert_eq "$(dcp_upstream_requests hub HEAD '^/v2/library/ocisingle/manifests/')" "$up_heads" \
  "ocisingle manifest HEADs on the upstream for the second pull"
dcp_assert_eq "$(dcp_upstream_requests hub GET '^/v2/library/ocisingle/')" "$up_gets" \
  "ocisingle manifest and blob GETs on the upstream for the second pull"

# --- a second upstream, named by host:port, through ?ns=127.0.0.1:<port> -----------------------
# (dcp_load_images read the manifest back from each upstream: count from here on.)
hub_dockerv2_gets=$(dcp_upstream_requests hub GET '^/v2/library/dockerv2/')
hub_dockerv2_heads=$(dcp_upstream_requests hub HEAD '^/v2/library/dockerv2/')
ctr_pull "$other_host/library/dockerv2:v1"
dcp_assert_eq "$(ctr_digest "$other_host/library/dockerv2:v1")" \
  "$(dcp_image_field library/dockerv2:v1 digest)" "digest of $other_host/library/dockerv2:v1"
check_through_proxy_with_ns library/dockerv2:v1 "$other_host" amd64
for blob in $(dcp_image_blobs library/dockerv2:v1 amd64); do
  n=$(dcp_upstream_requests other GET "^/v2/library/dockerv2/blobs/$blob\$")
  dcp_assert_ge "$n" 1 "GETs of blob $blob on the upstream named $other_host"
done
dcp_assert_eq "$(dcp_upstream_requests hub GET '^/v2/library/dockerv2/')" "$hub_dockerv2_gets" \
  "dockerv2 GETs on the docker.io upstream (the pull named $other_host)"
dcp_assert_eq "$(dcp_upstream_requests hub HEAD '^/v2/library/dockerv2/')" "$hub_dockerv2_heads" \
  "dockerv2 HEADs on the docker.io upstream (the pull named $other_host)"

# --- an ns the proxy has no upstream for is refused, not dialled ------------------------------
dcp_write_hosts_dir "$hosts" "$PROXY_URL" quay.io
hub_gets=$(dcp_upstream_requests hub GET '^/v2/library/ocisingle/manifests/')
hub_heads=$(dcp_upstream_requests hub HEAD '^/v2/library/ocisingle/manifests/')
if dcp_ctr ctd images pull --hosts-dir "$hosts" quay.io/library/ocisingle:v1 \
  >"$DCP_TMP/ctr.out" 2>&1; then
  dcp_fail "ctr pulled quay.io/library/ocisingle:v1, a registry the proxy has no upstream for"
fi
n=$(dcp_proxy_served proxy HEAD "^/v2/library/ocisingle/manifests/v1$(ns_re quay.io)" '4[0-9][0-9]')
dcp_assert_ge "$n" 1 "HEADs for ns=quay.io refused with a 4xx by the proxy"
dcp_assert_eq "$(dcp_proxy_served proxy HEAD "$(ns_re quay.io)" '[23][0-9][0-9]')" 0 \
  "requests for ns=quay.io answered with success"
dcp_assert_eq "$(dcp_upstream_requests hub GET '^/v2/library/ocisingle/manifests/')" "$hub_gets" \
  "ocisingle manifest GETs on the docker.io upstream after the quay.io pull"
dcp_assert_eq "$(dcp_upstream_requests hub HEAD '^/v2/library/ocisingle/manifests/')" \
  "$hub_heads" "ocisingle manifest HEADs on the docker.io upstream after the quay.io pull"

# --- multi-arch: one platform, then all --------------------------------------------------------
ctr_pull --platform linux/arm64 docker.io/library/multiarch:v1
dcp_assert_eq "$(ctr_digest docker.io/library/multiarch:v1)" \
  "$(dcp_image_field library/multiarch:v1 digest)" "digest of docker.io/library/multiarch:v1"
n=$(dcp_proxy_served proxy GET \
  "^/v2/library/multiarch/manifests/$(dcp_image_field library/multiarch:v1 digest)$(ns_re docker.io)" 200)
dcp_assert_ge "$n" 1 "GETs of the multiarch index with ns=docker.io answered 200"
check_through_proxy_with_ns library/multiarch:v1 docker.io arm64
# The platforms share a layer; what only amd64 has must not have been fetched.
amd64_only=$(comm -23 <(dcp_image_blobs library/multiarch:v1 amd64 | sort) \
  <(dcp_image_blobs library/multiarch:v1 arm64 | sort))
dcp_assert_ge "$(echo "$amd64_only" | wc -w)" 1 "blobs of multiarch:v1 only amd64 has"
for blob in $(dcp_platform_digest library/multiarch:v1 amd64) $amd64_only; do
  dcp_assert_eq "$(dcp_proxy_served proxy GET "^/v2/library/multiarch/[a-z]+/$blob")" 0 \
    "GETs of amd64 content $blob in an arm64 pull"
done

ctr_pull --all-platforms docker.io/library/multiarch:v1
check_through_proxy_with_ns library/multiarch:v1 docker.io amd64
for blob in $(dcp_image_blobs library/multiarch:v1); do
  dcp_ctr ctd content get "$blob" | sha256sum | grep -q "^${blob#sha256:} " ||
    dcp_fail "content $blob of multiarch:v1 missing or corrupt in containerd"
done

# --- control: the proxy is the only way to the images -----------------------------------------
dcp_stop proxy
for ref in docker.io/library/dockerv2:v1 "$other_host/library/ocisingle:v1"; do
  if dcp_ctr ctd images pull --hosts-dir "$hosts" "$ref" >"$DCP_TMP/ctr.out" 2>&1; then
    dcp_fail "ctr pulled $ref with the proxy stopped: some other path reaches the images"
  fi
done

dcp_pass "containerd mirror requests carry ns and the proxy routes them to the named upstream"
