#!/usr/bin/env bash
# The admin web page in headless Chromium (Debian's chromium, driven by playwright-core from
# npm, pinned by tests/browser/package-lock.json), on a phone-sized screen. Proves: the page
# shows the cached images, the size and the upstreams, fits the screen's width, and a delete
# through the page (confirmed in its dialog) removes the image from the cache. Screenshots are
# kept in $DCP_ARTIFACTS_DIR (default build/test-artifacts).
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL ... are set by lib.sh at run time
source "$(dirname "$0")/lib.sh"
dcp_setup

browser_dir="$DCP_REPO_ROOT/tests/browser"
artifacts=${DCP_ARTIFACTS_DIR:-$DCP_REPO_ROOT/build/test-artifacts}
mkdir -p "$artifacts"
command -v chromium >/dev/null || dcp_die "chromium is missing (scripts/install-deps.sh)"
command -v npm >/dev/null || dcp_die "npm is missing (scripts/install-deps.sh)"
# The lockfile decides the version; ci reinstalls exactly that.
npm ci --prefix "$browser_dir" --no-audit --no-fund --loglevel=error >/dev/null ||
  dcp_die "npm ci in tests/browser failed"

DCP_IMAGE_ARGS="--lru-set --big-size 65536"
dcp_start_upstream up none
dcp_load_images up
htpasswd -nbB admin "s3cret-admin" >"$DCP_TMP/admin.htpasswd" 2>/dev/null
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$up_URL,default=true")
echo "auth: {admin_htpasswd: \"$DCP_TMP/admin.htpasswd\"}" >>"$cfg"
dcp_start_proxy proxy "$cfg"
P="127.0.0.1:$proxy_PORT"
for ref in library/lru-a:v1 library/lru-c:v1; do
  skopeo copy --quiet --src-tls-verify=false "docker://$P/$ref" "dir:$DCP_TMP/${ref//[:\/]/_}" ||
    dcp_die "skopeo copy $ref failed"
done

node "$browser_dir/admin_page.mjs" "http://$P" admin s3cret-admin docker.io/library/lru-a \
  "$artifacts" >"$DCP_TMP/page.json" || dcp_die "the browser run failed"
jq . "$DCP_TMP/page.json" >&2
dcp_assert_eq "$(jq -r '.before | sort | join(" ")' "$DCP_TMP/page.json")" \
  "docker.io/library/lru-a docker.io/library/lru-c" "images the page listed"
dcp_assert_eq "$(jq -r .imageCount "$DCP_TMP/page.json")" 2 "image count on the page"
dcp_assert_match "$(jq -r .size "$DCP_TMP/page.json")" '^[0-9.]+ MiB$' "cache size on the page"
dcp_assert_match "$(jq -r '.upstreams[0] | gsub("\n"; " ")' "$DCP_TMP/page.json")" "docker.io.*$up_URL" \
  "upstream on the page"
dcp_assert_eq "$(jq -r .overflowX "$DCP_TMP/page.json")" 0 \
  "pixels the page is wider than a phone's screen"
dcp_assert_match "$(jq -r '.dialogs[0]' "$DCP_TMP/page.json")" '^Delete docker.io/library/lru-a:v1' \
  "the confirmation asked before deleting"
dcp_assert_eq "$(jq -r '.after | join(" ")' "$DCP_TMP/page.json")" "docker.io/library/lru-c" \
  "images the page listed after the delete"
layer=$(dcp_image_field library/lru-a:v1 'platforms[0].layers[0].digest')
[ ! -e "$DCP_TMP/cache/blobs/sha256/${layer:7:2}/${layer#sha256:}" ] ||
  dcp_fail "the image deleted through the page is still on disk"
curl -sf -u admin:s3cret-admin "http://$P/admin/api/images" >"$DCP_TMP/api.json"
dcp_assert_eq "$(jq -r '[.images[].repository] | join(" ")' "$DCP_TMP/api.json")" \
  "library/lru-c" "images the API lists after the delete through the page"
[ -s "$artifacts/admin-page-phone.png" ] || dcp_fail "no screenshot was kept"
dcp_pass "the admin page lists the cache, fits a phone, and deletes through its dialog"
