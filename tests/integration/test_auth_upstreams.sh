#!/usr/bin/env bash
# One proxy in front of two authenticated upstreams: an htpasswd (Basic) registry and a
# token-auth registry with its own token server (the Docker Hub / ghcr.io flow). Proves that
# images pull through each with the configured credentials, by ?ns= and by path prefix, that
# the credentials are really used, that wrong or missing credentials give a prompt OCI error
# (UNAUTHORIZED/DENIED) rather than a hang, and that no secret reaches the proxy's log.
#
# skopeo cannot write a host:port as a path segment ("127.0.0.1:5000/127.0.0.1:5001/x" is an
# invalid reference), so its prefix-route pulls use dotted aliases (hp.dcp.test) configured
# for the same upstreams; curl covers the 127.0.0.1:PORT names by ?ns= and by prefix.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'

dcp_start_upstream hp htpasswd
dcp_start_upstream tk token
dcp_load_images hp
dcp_load_images tk

# The upstreams really insist on authentication, or this test would prove nothing.
dcp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$hp_URL/v2/library/ocisingle/manifests/v1")" \
  401 "htpasswd upstream without credentials"
dcp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$tk_URL/v2/library/ocisingle/manifests/v1")" \
  401 "token upstream without a token"

HP="127.0.0.1:$hp_PORT"
TK="127.0.0.1:$tk_PORT"
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" \
  "$HP=$hp_URL,username=dcpuser,password=$hp_PASSWORD,default=true" \
  "$TK=$tk_URL,username=dcpuser,password=$tk_PASSWORD" \
  "hp.dcp.test=$hp_URL,username=dcpuser,password=$hp_PASSWORD" \
  "tk.dcp.test=$tk_URL,username=dcpuser,password=$tk_PASSWORD" \
  "anontk.dcp.test=$tk_URL" \
  "badhp.dcp.test=$hp_URL,username=dcpuser,password=wrong-$hp_PASSWORD" \
  "badtk.dcp.test=$tk_URL,username=dcpuser,password=wrong-$tk_PASSWORD" \
  "anonhp.dcp.test=$hp_URL")
dcp_start_proxy proxy "$cfg"
P=$proxy_URL

# pull_curl LABEL MANIFEST_URL BLOB_URL REF: manifest and largest layer by curl.
pull_curl() {
  local label=$1 murl=$2 burl=$3 ref=$4 blob
  blob=$(dcp_image_blob "$ref")
  dcp_http GET "$murl" -H "Accept: $ACCEPT" >/dev/null
  dcp_assert_eq "$(cat "$DCP_TMP/status")" 200 "$label: manifest status"
  dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/body")" "$(dcp_image_field "$ref" digest)" \
    "$label: manifest digest"
  dcp_http GET "${burl/@BLOB@/$blob}" >/dev/null
  dcp_assert_eq "$(cat "$DCP_TMP/status")" 200 "$label: blob status"
  cmp -s "$DCP_TMP/body" "$(dcp_blob_file "$blob")" || dcp_fail "$label: blob bytes differ"
}

for up in hp tk; do
  port_var="${up}_PORT"
  name="127.0.0.1:${!port_var}"
  pull_curl "$up by ?ns=" "$P/v2/library/ocisingle/manifests/v1?ns=$name" \
    "$P/v2/library/ocisingle/blobs/@BLOB@?ns=$name" library/ocisingle:v1
  pull_curl "$up by prefix" "$P/v2/$name/library/dockerv2/manifests/v1" \
    "$P/v2/$name/library/dockerv2/blobs/@BLOB@" library/dockerv2:v1
done
dcp_pass "curl pulls through the htpasswd and the token upstream, by ?ns= and by prefix"

mkdir -p "$DCP_TMP/pull"
for up in hp tk; do
  for ref in library/busybox:v1 library/multiarch:v1; do
    dest="$DCP_TMP/pull/$up-${ref//[:\/]/_}"
    skopeo copy --quiet --src-tls-verify=false --override-os linux --override-arch arm64 \
      "docker://127.0.0.1:$proxy_PORT/$up.dcp.test/$ref" "dir:$dest" ||
      dcp_fail "skopeo pull of $ref through $up.dcp.test failed"
    idx=$(jq -r --arg r "$ref" '.images[] | select(.reference == $r) | .platforms
      | (map(.architecture) | index("arm64")) // 0' "$DCP_TMP/images.json")
    dcp_check_dir "$dest" "$ref" "$idx"
  done
done
dcp_pass "skopeo pulls through both authenticated upstreams by prefix route"

# Anonymous pull tokens are what Docker Hub gives a client without an account.
pull_curl "token upstream, no credentials" \
  "$P/v2/anontk.dcp.test/library/ocisingle/manifests/v1" \
  "$P/v2/anontk.dcp.test/library/ocisingle/blobs/@BLOB@" library/ocisingle:v1
grep -q 'account=dcpuser' "$tk_TOKEN_LOG" ||
  dcp_fail "the token server never saw the configured account: credentials not sent to the realm"
dcp_pass "the proxy authenticates to the token realm with its credentials, and anonymously without"

# Wrong or missing credentials: an OCI error, promptly (dcp_http gives up after 60 s: 000).
for route in badhp.dcp.test badtk.dcp.test anonhp.dcp.test; do
  dcp_http GET "$P/v2/$route/library/busybox/manifests/v1" -H "Accept: $ACCEPT" >/dev/null
  dcp_assert_oci_error '401|403|502' 'UNAUTHORIZED|DENIED' "$route (bad or no credentials)"
  rc=0
  timeout 120 skopeo inspect --raw --tls-verify=false \
    "docker://127.0.0.1:$proxy_PORT/$route/library/busybox:v1" >/dev/null 2>"$DCP_TMP/skopeo.err" ||
    rc=$?
  [ "$rc" -ne 0 ] || dcp_fail "skopeo pulled through $route although its credentials are wrong"
  [ "$rc" -ne 124 ] || dcp_fail "skopeo hung on $route (no answer in 120 s)"
done
dcp_pass "wrong or missing upstream credentials give UNAUTHORIZED/DENIED, no hang"

# Secrets stay out of the log: passwords, the Basic credentials the proxy sends (base64 of
# user:password, padding left off so an unpadded copy counts too) and bearer tokens (JWTs start
# with eyJ).
for secret in "$hp_PASSWORD" "$tk_PASSWORD"; do
  if grep -qF -- "$secret" "$proxy_LOG"; then
    dcp_fail "an upstream password appears in the proxy log"
  fi
  basic=$(printf 'dcpuser:%s' "$secret" | base64 -w0 | tr -d '=')
  # The needle is what really goes over the wire, or not finding it would prove nothing.
  curl -sv -o /dev/null -u "dcpuser:$secret" "$hp_URL/v2/" 2>&1 | grep -qF -- "Basic $basic" ||
    dcp_die "the Basic credentials computed here are not the ones curl sends"
  if grep -qF -- "$basic" "$proxy_LOG"; then
    dcp_fail "upstream Basic credentials (base64) appear in the proxy log"
  fi
done
if grep -q 'eyJ[A-Za-z0-9_-]\{20,\}' "$proxy_LOG"; then
  dcp_fail "a bearer token appears in the proxy log"
fi
dcp_pass "no password, Basic credentials or token in the proxy log"
