#!/usr/bin/env bash
# Who may pull: anonymous networks, pull users, X-Forwarded-For only from trusted proxies, the
# networks that may read /metrics, and content fetched with upstream credentials.
#
# Proves: with pull users configured, an anonymous client on an anonymous network pulls public
# content but not what an upstream with credentials serves (401 with a Basic challenge, unless
# that upstream says anonymous_pull: true); a pull user gets it; knowing the digest of such a
# blob does not make it readable through another upstream or repository; without pull users
# everyone on an anonymous network pulls everything, as with the reference registry. Outside the
# anonymous networks a pull is refused with 403; X-Forwarded-For moves the client into them only
# when the connection comes from a trusted proxy, and only its last hop counts; /metrics opens
# to the listed networks only.
source "$(dirname "$0")/lib.sh"
dcp_setup

dcp_start_upstream hub
dcp_load_images hub
dcp_start_upstream priv htpasswd
dcp_load_images priv
priv_name="127.0.0.1:$PRIV_PORT"
ref=library/ocisingle:v1
blob=$(dcp_image_blob "$ref")
manifest=$(dcp_image_field "$ref" digest)
accept='Accept: application/vnd.oci.image.manifest.v1+json'

alice_password=$(dcp__random 12)
htpasswd -bcB -C 5 "$DCP_TMP/pull.htpasswd" alice "$alice_password" 2>/dev/null

# get PROXY PATH [curl args]: status of a GET to the proxy's plain port.
get() {
  local url_var="${1^^}_URL"
  dcp_http GET "${!url_var}$2" -H "$accept" "${@:3}"
}

# --- pull users configured: the upstream with credentials is closed to anonymous clients ----------
cfg=$(dcp_proxy_config users "$DCP_TMP/cache-users" "docker.io=$HUB_URL,default=true" \
  "$priv_name=$PRIV_URL,username=$PRIV_USER,password=$PRIV_PASSWORD")
DCP_AUTH_HTPASSWD="$DCP_TMP/pull.htpasswd" dcp_start_proxy users "$cfg"

code=$(get users "/v2/library/ocisingle/manifests/v1")
dcp_assert_eq "$code" 200 "anonymous pull of public content from loopback"
code=$(get users "/v2/library/ocisingle/manifests/v1?ns=$priv_name")
dcp_assert_oci_error 401 UNAUTHORIZED "anonymous pull through the upstream with credentials"
dcp_assert_match "$(dcp_header WWW-Authenticate)" '^Basic realm=' "challenge for the pull user"
dcp_assert_match "$(jq -r '.errors[0].message' "$DCP_TMP/body")" "pulled with the proxy's credentials" \
  "the refusal says why"
code=$(get users "/v2/library/ocisingle/manifests/v1?ns=$priv_name" -u "alice:wrong")
dcp_assert_oci_error 401 UNAUTHORIZED "a wrong password"
code=$(get users "/v2/library/ocisingle/manifests/v1?ns=$priv_name" -u "alice:$alice_password")
dcp_assert_eq "$code" 200 "pull user, manifest through the upstream with credentials"
dcp_assert_eq "$(dcp_header Docker-Content-Digest)" "$manifest" "digest of that manifest"
code=$(get users "/v2/library/ocisingle/blobs/$blob?ns=$priv_name" -u "alice:$alice_password")
dcp_assert_eq "$code" 200 "pull user, blob through the upstream with credentials"
code=$(get users "/v2/library/ocisingle/blobs/$blob?ns=$priv_name")
dcp_assert_oci_error 401 UNAUTHORIZED "anonymous GET of the now cached private blob"
# The digest is known and the blob is on disk: another repository of the public upstream, which
# does not have it, must not hand it out.
code=$(get users "/v2/library/not-here/blobs/$blob")
dcp_assert_oci_error 404 BLOB_UNKNOWN "anonymous GET of the cached blob through another repository"
dcp_pass "with pull users, content fetched with upstream credentials needs a pull user"

cfg=$(dcp_proxy_config opened "$DCP_TMP/cache-opened" "docker.io=$HUB_URL,default=true" \
  "$priv_name=$PRIV_URL,username=$PRIV_USER,password=$PRIV_PASSWORD,anonymous_pull=true")
DCP_AUTH_HTPASSWD="$DCP_TMP/pull.htpasswd" dcp_start_proxy opened "$cfg"
code=$(get opened "/v2/library/ocisingle/manifests/v1?ns=$priv_name")
dcp_assert_eq "$code" 200 "anonymous pull through an upstream with anonymous_pull: true"

cfg=$(dcp_proxy_config nousers "$DCP_TMP/cache-nousers" "docker.io=$HUB_URL,default=true" \
  "$priv_name=$PRIV_URL,username=$PRIV_USER,password=$PRIV_PASSWORD")
dcp_start_proxy nousers "$cfg"
code=$(get nousers "/v2/library/ocisingle/manifests/v1?ns=$priv_name")
dcp_assert_eq "$code" 200 "anonymous pull through the upstream with credentials, no pull users"
dcp_stop opened
dcp_stop nousers
dcp_pass "anonymous_pull: true opens it; without pull users every anonymous client pulls it"

# --- anonymous networks, trusted proxies, metrics networks ------------------------------------------
admin_password=$(dcp__random 12)
htpasswd -bcB -C 5 "$DCP_TMP/admin.htpasswd" admin "$admin_password" 2>/dev/null
cfg=$(dcp_proxy_config strict "$DCP_TMP/cache-strict" "docker.io=$HUB_URL,default=true")
DCP_ANONYMOUS_NETWORKS=10.0.0.0/8 DCP_TRUSTED_PROXIES=127.0.0.1/32 \
  DCP_METRICS_NETWORKS=127.0.0.2/32 DCP_ADMIN_HTPASSWD="$DCP_TMP/admin.htpasswd" \
  dcp_start_proxy strict "$cfg"
path=/v2/library/ocisingle/manifests/v1

code=$(get strict "$path")
dcp_assert_oci_error 403 DENIED "a client outside the anonymous networks"
dcp_assert_match "$(jq -r '.errors[0].message' "$DCP_TMP/body")" '127\.0\.0\.1' \
  "the refusal names the client's address"
code=$(get strict "$path" -H 'X-Forwarded-For: 10.1.2.3')
dcp_assert_eq "$code" 200 "X-Forwarded-For from a trusted proxy naming an anonymous network"
code=$(get strict "$path" -H 'X-Forwarded-For: 192.168.7.7, 10.1.2.3')
dcp_assert_eq "$code" 200 "only the last hop counts (an earlier entry is the client's word)"
code=$(get strict "$path" -H 'X-Forwarded-For: 10.1.2.3, 192.168.7.7')
dcp_assert_oci_error 403 DENIED "a last hop outside the anonymous networks"
code=$(get strict "$path" -H 'X-Forwarded-For: 10.1.2.3' --interface 127.0.0.2)
dcp_assert_oci_error 403 DENIED "X-Forwarded-For from a peer that is not a trusted proxy"
dcp_assert_match "$(jq -r '.errors[0].message' "$DCP_TMP/body")" '127\.0\.0\.2' \
  "an untrusted peer is judged by its own address"

code=$(get strict /metrics --interface 127.0.0.2)
dcp_assert_eq "$code" 200 "/metrics from a metrics network, no credentials"
code=$(get strict /metrics)
dcp_assert_eq "$code" 401 "/metrics from elsewhere, no credentials"
code=$(get strict /metrics -u "admin:$admin_password")
dcp_assert_eq "$code" 200 "/metrics from elsewhere with the admin user"
code=$(get strict /metrics -H 'X-Forwarded-For: 127.0.0.2')
dcp_assert_eq "$code" 200 "/metrics for a metrics network address forwarded by a trusted proxy"
code=$(get strict /metrics -H 'X-Forwarded-For: 192.168.7.7' --interface 127.0.0.2)
dcp_assert_eq "$code" 200 "/metrics: X-Forwarded-For from an untrusted metrics peer is ignored"
dcp_pass "anonymous networks, X-Forwarded-For only from trusted proxies, metrics networks"
