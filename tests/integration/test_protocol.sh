#!/usr/bin/env bash
# The distribution API as curl sees it through the proxy: every route (with and without
# ?ns=docker.io), the headers clients depend on, ranges, list endpoints, the read-only rule,
# the open-proxy guard, and hostile names/digests/paths. Each section proves one property; the
# upstream's access log proves what the proxy did or did not send.
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
# The sections are independent checks of one API: report every failing one, then exit 1.
export DCP_SOFT_FAIL=${DCP_SOFT_FAIL:-1}
dcp_setup

ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, */*'

dcp_start_upstream up none
dcp_load_images up
# More tags, so tags/list has pages.
for t in v2 v3 v4 v5; do
  skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false \
    "docker://127.0.0.1:$up_PORT/library/ocisingle:v1" "docker://127.0.0.1:$up_PORT/library/ocisingle:$t"
done
# A registry the proxy is not configured for: a request naming it must never reach it.
dcp_start_upstream bystander none

storage="$DCP_TMP/cache"
cfg=$(dcp_proxy_config proxy "$storage" "docker.io=$up_URL,default=true,tag_ttl=10m")
dcp_start_proxy proxy "$cfg"
P=$proxy_URL

req() { dcp_http "$@" >/dev/null; }
status() { cat "$DCP_TMP/status"; }

# check_api_version: Docker-Distribution-API-Version on the last answer (every response).
check_api_version() {
  dcp_assert_eq "$(dcp_header Docker-Distribution-API-Version)" "registry/2.0" \
    "$1: Docker-Distribution-API-Version"
}

# ------------------------------------------------------------------------------------ /v2/
for q in "" "?ns=docker.io"; do
  req GET "$P/v2/$q"
  dcp_assert_eq "$(status)" 200 "GET /v2/$q status"
  dcp_assert_eq "$(jq -c . "$DCP_TMP/body")" "{}" "GET /v2/$q body"
  check_api_version "GET /v2/$q"
done
dcp_pass "GET /v2/ answers 200 {} with the API version header"

# -------------------------------------------------------------- HEAD on an uncached blob
# Done first: nothing has touched the busybox image yet.
blob=$(dcp_image_blob library/busybox:v1)
size=$(jq -r --arg d "$blob" '[.images[].platforms[].layers[] | select(.digest == $d)][0].size' \
  "$DCP_TMP/images.json")
path_re="/library/busybox/blobs/$blob"
req HEAD "$P/v2/library/busybox/blobs/$blob"
dcp_assert_eq "$(status)" 200 "HEAD uncached blob status"
dcp_assert_eq "$(dcp_header Content-Length)" "$size" "HEAD uncached blob Content-Length"
dcp_assert_eq "$(dcp_header Docker-Content-Digest)" "$blob" "HEAD uncached blob digest header"
[ "$(dcp_upstream_requests up HEAD "$path_re")" -ge 1 ] ||
  dcp_fail "HEAD on an uncached blob did not reach the upstream as a HEAD"
dcp_assert_eq "$(dcp_upstream_requests up GET "$path_re")" 0 \
  "upstream GETs caused by a HEAD on an uncached blob"
dcp_pass "HEAD on an uncached blob costs the upstream a HEAD and no download"

# ------------------------------------------------------------------------------ manifests
# check_manifest REF: HEAD and GET, by tag and by digest, with and without ?ns=docker.io.
check_manifest() {
  local ref=$1 repo tag digest mt size url method q
  repo=$(dcp_image_field "$ref" name)
  tag=$(dcp_image_field "$ref" tag)
  digest=$(dcp_image_field "$ref" digest)
  mt=$(dcp_image_field "$ref" media_type)
  size=$(dcp_image_field "$ref" size)
  for q in "" "?ns=docker.io"; do
    for url in "$P/v2/$repo/manifests/$tag$q" "$P/v2/$repo/manifests/$digest$q"; do
      for method in GET HEAD; do
        req "$method" "$url" -H "Accept: $ACCEPT"
        dcp_assert_eq "$(status)" 200 "$method $url status"
        dcp_assert_eq "$(dcp_header Docker-Content-Digest)" "$digest" "$method $url digest header"
        dcp_assert_eq "$(dcp_header Content-Type)" "$mt" "$method $url Content-Type"
        dcp_assert_eq "$(dcp_header Content-Length)" "$size" "$method $url Content-Length"
        check_api_version "$method $url"
        if [ "$method" = GET ]; then
          dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/body")" "$digest" "$method $url body digest"
        fi
      done
    done
  done
}
check_manifest library/ocisingle:v1
check_manifest library/dockerv2:v1
check_manifest library/multiarch:v1
dcp_pass "manifests: HEAD and GET by tag and digest, exact bytes, Content-Type as stored, lengths"

req GET "$P/v2/library/ocisingle/manifests/nosuchtag" -H "Accept: $ACCEPT"
dcp_assert_oci_error 404 MANIFEST_UNKNOWN "unknown tag"
check_api_version "unknown tag"
dcp_pass "an unknown tag answers 404 MANIFEST_UNKNOWN"

# ---------------------------------------------------------------------------------- blobs
blob=$(dcp_image_blob library/ocisingle:v1)
blob_file=$(dcp_blob_file "$blob")
size=$(stat -c %s "$blob_file")
for q in "" "?ns=docker.io"; do
  url="$P/v2/library/ocisingle/blobs/$blob$q"
  for method in GET HEAD; do
    req "$method" "$url"
    dcp_assert_eq "$(status)" 200 "$method $url status"
    dcp_assert_eq "$(dcp_header Content-Length)" "$size" "$method $url Content-Length"
    dcp_assert_eq "$(dcp_header Docker-Content-Digest)" "$blob" "$method $url digest header"
    dcp_assert_eq "$(dcp_header Accept-Ranges)" bytes "$method $url Accept-Ranges"
  done
  req GET "$url"
  cmp -s "$DCP_TMP/body" "$blob_file" || dcp_fail "GET $url: body differs from the blob"
done
req GET "$P/v2/library/ocisingle/blobs/sha256:$(printf '0%.0s' {1..64})"
dcp_assert_oci_error 404 BLOB_UNKNOWN "unknown blob"
dcp_pass "blobs: exact bytes, Content-Length, Docker-Content-Digest, Accept-Ranges; unknown 404"

# ---------------------------------------------------------------------------------- Range
url="$P/v2/library/ocisingle/blobs/$blob"
req GET "$url" -H "Range: bytes=10-19"
dcp_assert_eq "$(status)" 206 "Range bytes=10-19 status"
dcp_assert_eq "$(dcp_header Content-Range)" "bytes 10-19/$size" "Range bytes=10-19 Content-Range"
cmp -s "$DCP_TMP/body" <(tail -c +11 "$blob_file" | head -c 10) ||
  dcp_fail "Range bytes=10-19: wrong bytes"

start=$((size - 1000))
req GET "$url" -H "Range: bytes=$start-"
dcp_assert_eq "$(status)" 206 "Range bytes=$start- status"
dcp_assert_eq "$(dcp_header Content-Range)" "bytes $start-$((size - 1))/$size" \
  "Range bytes=$start- Content-Range"
cmp -s "$DCP_TMP/body" <(tail -c 1000 "$blob_file") || dcp_fail "Range bytes=$start-: wrong bytes"

req GET "$url" -H "Range: bytes=-10"
dcp_assert_eq "$(status)" 206 "Range bytes=-10 status"
cmp -s "$DCP_TMP/body" <(tail -c 10 "$blob_file") || dcp_fail "Range bytes=-10: wrong bytes"

req GET "$url" -H "Range: bytes=999999999-"
dcp_assert_oci_error 416 RANGE_INVALID "unsatisfiable Range bytes=999999999-"
dcp_assert_eq "$(dcp_header Content-Range)" "bytes */$size" "unsatisfiable Range Content-Range"

# RFC 9110 14.2: a range unit the server does not know MUST be ignored: a full 200.
req GET "$url" -H "Range: items=0-5"
dcp_assert_eq "$(status)" 200 "Range with an unknown unit (items=0-5) status"
cmp -s "$DCP_TMP/body" "$blob_file" || dcp_fail "Range items=0-5: body is not the full blob"
# An invalid ranges-specifier may be ignored (200 full) or rejected (416); nothing else.
for bad in "bytes=abc" "bytes=5-2" "bytes=--1"; do
  req GET "$url" -H "Range: $bad"
  case "$(status)" in
    200) cmp -s "$DCP_TMP/body" "$blob_file" || dcp_fail "Range $bad: 200 without the full blob" ;;
    416)
      dcp_log "note: the proxy rejects Range: $bad with 416 (allowed by RFC 9110 14.2)"
      dcp_assert_oci_error 416 RANGE_INVALID "Range $bad"
      ;;
    *) dcp_fail "Range $bad: status $(status), expected 200 (ignored) or 416 (rejected)" ;;
  esac
done
# Multi-range (zstd:chunked partial pulls): 206 multipart or a plain full 200 are both fine.
req GET "$url" -H "Range: bytes=0-1,5-6"
case "$(status)" in
  200) cmp -s "$DCP_TMP/body" "$blob_file" || dcp_fail "multi-range: 200 without the full blob" ;;
  206) dcp_assert_match "$(dcp_header Content-Type)" '^multipart/byteranges' "multi-range 206 type" ;;
  *) dcp_fail "multi-range: status $(status), expected 206 or 200" ;;
esac
dcp_pass "Range on a cached blob: 206 with exact bytes, suffix and open ranges, 416 RANGE_INVALID, RFC 9110 ignores"

# ------------------------------------------------------------------------------ tags/list
req GET "$P/v2/library/ocisingle/tags/list"
dcp_assert_eq "$(status)" 200 "tags/list status"
dcp_assert_eq "$(jq -r .name "$DCP_TMP/body")" library/ocisingle "tags/list name"
dcp_assert_eq "$(jq -c '.tags | sort' "$DCP_TMP/body")" '["v1","v2","v3","v4","v5"]' "tags/list tags"

# Pages of 2 in lexical order (distribution spec: n and last), following Link rel="next".
pages=()
next="/v2/library/ocisingle/tags/list?n=2"
for ((i = 0; i < 5 && ${#next} > 0; i++)); do
  req GET "$P$next"
  dcp_assert_eq "$(status)" 200 "tags/list page $next status"
  pages+=("$(jq -c .tags "$DCP_TMP/body")")
  link=$(dcp_header Link)
  next=""
  if [ -n "$link" ]; then
    dcp_assert_match "$link" 'rel="?next"?' "Link header of $P$next"
    next=$(printf '%s' "$link" | sed -E 's/^<([^>]*)>.*/\1/')
    next=${next#"$P"}
    next=${next#"http://127.0.0.1:$proxy_PORT"}
  fi
done
dcp_assert_eq "${pages[*]}" '["v1","v2"] ["v3","v4"] ["v5"]' "tags/list pages with n=2"
req GET "$P/v2/library/ocisingle/tags/list?n=2&last=v2&ns=docker.io"
dcp_assert_eq "$(jq -c .tags "$DCP_TMP/body")" '["v3","v4"]' "tags/list n=2 last=v2 with ns"
dcp_pass "tags/list: all tags, pages with n/last and Link rel=next"

# ------------------------------------------------------------------------------- _catalog
for q in "" "?ns=docker.io"; do
  req GET "$P/v2/_catalog$q"
  dcp_assert_eq "$(status)" 200 "_catalog$q status"
  for repo in library/ocisingle library/dockerv2 library/multiarch; do
    jq -e --arg r "$repo" '.repositories | index($r)' "$DCP_TMP/body" >/dev/null ||
      dcp_fail "_catalog$q lacks cached $repo: $(cat "$DCP_TMP/body")"
  done
  if jq -e '.repositories | index("library/dockerv2alias")' "$DCP_TMP/body" >/dev/null; then
    dcp_fail "_catalog$q lists library/dockerv2alias, which was never pulled through this proxy"
  fi
done
dcp_pass "_catalog lists the cached repositories only"

# ------------------------------------------------------------------------------ referrers
digest=$(dcp_image_field library/ocisingle:v1 digest)
for q in "" "?ns=docker.io"; do
  req GET "$P/v2/library/ocisingle/referrers/$digest$q"
  dcp_assert_eq "$(status)" 200 "referrers$q status"
  dcp_assert_match "$(dcp_header Content-Type)" '^application/vnd\.oci\.image\.index\.v1\+json' \
    "referrers$q Content-Type"
  dcp_assert_eq "$(jq -r '.schemaVersion' "$DCP_TMP/body")" 2 "referrers$q schemaVersion"
  dcp_assert_eq "$(jq -r '.manifests | type' "$DCP_TMP/body")" array "referrers$q manifests"
done
dcp_pass "referrers answers an OCI index"

# --------------------------------------------------------------------------- read-only
writes_before=$(( $(dcp_upstream_requests up POST .) + $(dcp_upstream_requests up PUT .) +
  $(dcp_upstream_requests up PATCH .) + $(dcp_upstream_requests up DELETE .) ))
blob=$(dcp_image_blob library/ocisingle:v1)
for w in "POST /v2/library/ocisingle/blobs/uploads/" \
  "PUT /v2/library/ocisingle/manifests/v1" \
  "PATCH /v2/library/ocisingle/blobs/uploads/0bd4c5a0-0000-4000-8000-000000000000" \
  "DELETE /v2/library/ocisingle/manifests/$digest" \
  "DELETE /v2/library/ocisingle/blobs/$blob" \
  "PUT /v2/library/ocisingle/manifests/v1?ns=docker.io"; do
  req "${w%% *}" "$P${w#* }" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary '{}'
  dcp_assert_oci_error 405 UNSUPPORTED "$w"
  check_api_version "$w"
done
writes_after=$(( $(dcp_upstream_requests up POST .) + $(dcp_upstream_requests up PUT .) +
  $(dcp_upstream_requests up PATCH .) + $(dcp_upstream_requests up DELETE .) ))
dcp_assert_eq "$writes_after" "$writes_before" "write requests forwarded to the upstream"
req GET "$P/v2/library/ocisingle/manifests/$digest" -H "Accept: $ACCEPT"
dcp_assert_eq "$(status)" 200 "manifest still served after a refused DELETE"
dcp_pass "writes answer 405 UNSUPPORTED and never reach the upstream"

# --------------------------------------------------------------------- open-proxy guard
# The bystander has only seen our own readiness probe so far.
bystander_before=$(( $(dcp_upstream_requests bystander GET .) + $(dcp_upstream_requests bystander HEAD .) ))
for url in "$P/v2/library/nsprobe/manifests/v1?ns=unknown.example" \
  "$P/v2/library/nsprobe/blobs/$blob?ns=unknown.example" \
  "$P/v2/library/nsprobe/tags/list?ns=unknown.example" \
  "$P/v2/library/nsprobe/manifests/v1?ns=127.0.0.1:$bystander_PORT" \
  "$P/v2/library/nsprobe/blobs/$blob?ns=127.0.0.1:$bystander_PORT" \
  "$P/v2/127.0.0.1:$bystander_PORT/library/nsprobe/manifests/v1" \
  "$P/v2/unknown.example/library/nsprobe/manifests/v1"; do
  req GET "$url" -H "Accept: $ACCEPT"
  dcp_assert_oci_error '4[0-9][0-9]' '[A-Z_]+' "unknown upstream in $url"
done
dcp_assert_eq "$(( $(dcp_upstream_requests bystander GET .) + $(dcp_upstream_requests bystander HEAD .) ))" \
  "$bystander_before" "requests that reached an upstream the proxy is not configured for"
if dcp_upstream_log_has up 'nsprobe|unknown\.example'; then
  dcp_fail "a request for an unknown upstream was sent to the default upstream"
fi
dcp_pass "?ns= and prefixes naming an unconfigured registry are refused and contact nothing"

# -------------------------------------------------------------- hostile names and digests
# Sentinels beside the storage root: a path escaping the root would reach them.
mkdir -p "$DCP_TMP/outside/secret"
sentinel="dcp-sentinel-$(openssl rand -hex 8)"
printf '%s\n' "$sentinel" >"$DCP_TMP/outside/secret/data"
printf '%s\n' "$sentinel" >"$DCP_TMP/outside/secret.txt"
cp "$DCP_TMP/outside/secret/data" "$DCP_TMP/sentinel-copy"
listing_before=$(cd "$DCP_TMP/outside" && find . -printf '%p %s %T@\n' | sort)

hex63=$(printf 'a%.0s' {1..63})
hex65=$(printf 'a%.0s' {1..65})
bad_digest_paths=(
  "/v2/library/ocisingle/blobs/sha256:xyz"
  "/v2/library/ocisingle/blobs/sha256:$hex63"
  "/v2/library/ocisingle/blobs/sha256:$hex65"
  "/v2/library/ocisingle/blobs/md5:d41d8cd98f00b204e9800998ecf8427e"
)
for p in "${bad_digest_paths[@]}"; do
  req GET "$P$p" --path-as-is
  dcp_assert_oci_error 400 DIGEST_INVALID "$p"
done
bad_name_paths=(
  "/v2/UPPER/manifests/v1"
  "/v2/library/UPPER/blobs/$blob"
  "/v2/a//b/manifests/v1"
  "/v2/library/ocisingle/manifests/sha256:xyz"
  "/v2/../outside/secret/manifests/v1"
  "/v2/library/../../outside/secret/manifests/v1"
  "/v2/library/ocisingle/../../../outside/secret/tags/list"
  "/v2/library/ocisingle/blobs/sha256:../../../outside/secret.txt"
  "/v2/library/ocisingle/manifests/../../../../outside/secret.txt"
  "/v2/%2e%2e/%2e%2e/outside/secret/manifests/v1"
  "/v2/library/%2e%2e%2f%2e%2e%2foutside%2fsecret/manifests/v1"
  "/v2/library/ocisingle/manifests/..%2f..%2f..%2f..%2foutside%2fsecret.txt"
  "/v2/library/ocisingle/blobs/sha256%3a..%2f..%2f..%2foutside%2fsecret.txt"
  "/v2/%2E%2E%2F%2E%2E%2Foutside/tags/list"
  "/v2/library/ocisingle%00/manifests/v1"
)
for p in "${bad_name_paths[@]}"; do
  req GET "$P$p" --path-as-is -H "Accept: $ACCEPT"
  case "$(status)" in
    400) dcp_assert_oci_error 400 'NAME_INVALID|DIGEST_INVALID|TAG_INVALID|MANIFEST_INVALID' "$p" ;;
    404) dcp_assert_oci_error 404 'NAME_UNKNOWN' "$p" ;;
    *) dcp_fail "$p: status $(status), expected 400 NAME_INVALID/DIGEST_INVALID or 404 NAME_UNKNOWN" ;;
  esac
  if grep -qF "$sentinel" "$DCP_TMP/body"; then
    dcp_fail "$p: the answer contains the sentinel file outside the storage root"
  fi
done
dcp_assert_eq "$(cd "$DCP_TMP/outside" && find . -printf '%p %s %T@\n' | sort)" "$listing_before" \
  "files outside the storage root after hostile paths"
cmp -s "$DCP_TMP/outside/secret/data" "$DCP_TMP/sentinel-copy" || dcp_fail "sentinel changed"
if dcp_upstream_log_has up '\.\.|%2[eE]|UPPER|sha256:xyz|//'; then
  dcp_fail "a hostile path was forwarded to the upstream"
fi
dcp_pass "malformed names, digests and traversal attempts: 400/404 OCI errors, nothing touched"

# ---------------------------------------------------------------------------- status lines
# RFC 9110 15: the reason phrase describes the status; "404 OK" misleads whoever reads a trace.
for probe in "404|GET|$P/v2/library/ocisingle/manifests/nosuchtag" \
  "405|DELETE|$P/v2/library/ocisingle/manifests/v1" \
  "416|GET|$P/v2/library/ocisingle/blobs/$blob"; do
  IFS='|' read -r code method url <<<"$probe"
  req "$method" "$url" -H "Accept: $ACCEPT" -H "Range: bytes=999999999-"
  line=$(head -n1 "$DCP_TMP/headers")
  dcp_assert_match "$line" "^HTTP/1\.[01] $code( |\$)" "status line of $method $url"
  if [[ $line =~ ^HTTP/1\.[01]\ [0-9]+\ OK$ ]]; then
    dcp_fail "status line of $method $url says OK for a $code: '$line'"
  fi
done
dcp_pass "status lines carry the reason phrase of their status"
