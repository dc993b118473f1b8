#!/usr/bin/env bash
# The proxy's HTTPS listener on the certificate-manager's LAN CA files: curl trusting only
# ca.crt connects; a re-issue (names changed, certificate-manager --once) reaches the next
# connection without a restart (new serial, the new name accepted), while a download begun
# on the old certificate runs across the swap and completes with the right digest; a key that
# does not match the certificate is not loaded and the running pair keeps being served.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_pebble.sh"
dcp_setup
dcp_require_certmgr

certs="$DCP_TMP/certs"
# certmgr_once NAMES: one LAN CA check for these names; the run must succeed.
certmgr_once() {
  CERTMGR_OUTPUT_DIR="$certs" HOMELAB_APP_EXTERNAL_DOMAIN="$1" CERTMGR_LOG_LEVEL=debug \
    "$DCP_CERTMGR_BIN" --once >>"$DCP_TMP/certmgr.log" 2>&1 ||
    dcp_die "certificate-manager --once for $1 failed (log: $DCP_TMP/certmgr.log)"
}

# served_serial NAME: the serial of the certificate the proxy presents to a new connection for
# NAME, verified against ca.crt alone (empty when the handshake or the verification fails).
served_serial() {
  openssl s_client -connect "127.0.0.1:$tls_port" -servername "$1" -verify_hostname "$1" \
    -CAfile "$certs/ca.crt" -verify_return_error </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}

# https_status NAME PATH [curl args]: the status of a GET over HTTPS for NAME, trusting only
# ca.crt ("000" when the connection fails).
https_status() {
  local name=$1 path=$2
  shift 2
  curl -s -o /dev/null -w '%{http_code}' --max-time 30 --cacert "$certs/ca.crt" \
    --resolve "$name:$tls_port:127.0.0.1" "$@" "https://$name:$tls_port$path" || true
}

dcp_start_upstream up none
# One incompressible blob, pushed as a monolithic upload (distribution API: POST, then PUT with
# the digest): at 3 MB/s its download takes about 10 s, long enough to span a renewal.
blob="$DCP_TMP/blob.bin"
head -c $((32 * 1024 * 1024)) /dev/urandom >"$blob"
digest="sha256:$(dcp_sha256 "$blob")"
upload=$(curl -sS -D - -o /dev/null -X POST "$up_URL/v2/library/big/blobs/uploads/" |
  tr -d '\r' | sed -nE 's/^[Ll]ocation: //p')
[ -n "$upload" ] || dcp_die "the upstream gave no upload location"
curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
  --data-binary @"$blob" "$upload&digest=$digest" || dcp_die "blob upload to the upstream failed"

certmgr_once reg.test
serial1=$(dcp_cert_serial "$certs/tls.crt")
tls_port=$(dcp_free_port)
cfg=$(dcp_proxy_config proxy "$DCP_TMP/cache" "docker.io=$up_URL,default=true")
printf 'tls: {addr: "127.0.0.1:%s", certificate: "%s", key: "%s"}\n' "$tls_port" \
  "$certs/tls.crt" "$certs/tls.key" >>"$cfg"
dcp_start_proxy proxy "$cfg"
deadline=$((SECONDS + 30))
until [ "$(https_status reg.test /v2/)" = 200 ]; do
  dcp_running proxy || dcp_die "proxy exited before its HTTPS port answered"
  [ "$SECONDS" -lt "$deadline" ] || dcp_die "no HTTPS answer on port $tls_port within 30s"
  sleep 0.2
done

# 1. HTTPS with the LAN CA's certificate: trusted through ca.crt alone, for its names only.
dcp_assert_eq "$(served_serial reg.test)" "$serial1" "serial served before the renewal"
dcp_assert_eq "$(https_status reg.test /v2/)" 200 "GET /v2/ over HTTPS for reg.test"
dcp_assert_eq "$(https_status new.test /v2/)" 000 "new.test before it is in the certificate"
dcp_assert_eq "$(curl -s -o "$DCP_TMP/warm.out" -w '%{http_code}' \
  "$proxy_URL/v2/library/big/blobs/$digest")" 200 "blob over plain HTTP (fills the cache)"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/warm.out")" "$digest" "digest of the cached blob"
dcp_pass "HTTPS serves the certificate-manager's certificate, trusted through ca.crt"

# 2. A re-issue while a download runs on the old certificate.
dcp_spawn download "$DCP_TMP/download.log" curl -sS --cacert "$certs/ca.crt" \
  --resolve "reg.test:$tls_port:127.0.0.1" --limit-rate 3M -o "$DCP_TMP/download.out" \
  -w '%{http_code}\n' "https://reg.test:$tls_port/v2/library/big/blobs/$digest"
deadline=$((SECONDS + 30))
until [ "$(stat -c %s "$DCP_TMP/download.out" 2>/dev/null || echo 0)" -gt $((1024 * 1024)) ]; do
  dcp_running download || dcp_die "the download ended before 1 MiB: $(cat "$DCP_TMP/download.log")"
  [ "$SECONDS" -lt "$deadline" ] || dcp_die "the download did not get going within 30s"
  sleep 0.1
done

certmgr_once reg.test,new.test
serial2=$(dcp_cert_serial "$certs/tls.crt")
[ "$serial2" != "$serial1" ] || dcp_die "certificate-manager did not re-issue for the new names"
grep -q 'names changed' "$DCP_TMP/certmgr.log" || dcp_fail "the re-issue did not say why"

# The proxy looks at the files again at most every 2 s, on a new connection.
deadline=$((SECONDS + 20))
while [ "$(served_serial new.test)" != "$serial2" ]; do
  [ "$SECONDS" -lt "$deadline" ] || break
  sleep 0.2
done
dcp_assert_eq "$(served_serial new.test)" "$serial2" "serial served to a new connection after the renewal"
dcp_running download ||
  dcp_die "the download ended before the new certificate was served: it did not span the swap"
dcp_assert_eq "$(https_status new.test /v2/)" 200 "GET /v2/ for new.test after the renewal"
dcp_assert_eq "$(https_status reg.test /v2/)" 200 "GET /v2/ for reg.test after the renewal"

rc=0
dcp_wait download || rc=$?
dcp_assert_eq "$rc" 0 "curl exit code of the download across the swap"
dcp_assert_eq "$(cat "$DCP_TMP/download.log")" 200 "status of the download across the swap"
dcp_assert_eq "sha256:$(dcp_sha256 "$DCP_TMP/download.out")" "$digest" \
  "digest of the download across the swap"
dcp_assert_eq "$(grep -c 'certificate loaded' "$proxy_LOG")" 2 "certificate loads logged"
dcp_pass "a renewal reaches new connections; a download across it completes intact"

# 3. A key that does not belong to the certificate (the old one put back, as a reader between
# the writer's two renames sees it): not loaded; the running pair keeps being served.
# (Counted: the proxy may have met the writer's own half-way state during the renewal above.)
refused() { grep -c 'certificate not loaded, keeping the previous one' "$proxy_LOG" || true; }
refused_before=$(refused)
cp "$certs/tls.key.prev" "$DCP_TMP/stale.key"
mv "$DCP_TMP/stale.key" "$certs/tls.key"
deadline=$((SECONDS + 20))
until [ "$(refused)" -gt "$refused_before" ]; do
  served_serial reg.test >/dev/null
  [ "$SECONDS" -lt "$deadline" ] || dcp_die "the proxy never looked at the mismatched pair"
  sleep 0.2
done
dcp_assert_eq "$(served_serial new.test)" "$serial2" "serial served with a mismatched key on disk"
dcp_assert_eq "$(https_status new.test /v2/)" 200 "GET /v2/ with a mismatched key on disk"
dcp_pass "a key that does not match its certificate is not loaded; the running pair stays"
