#!/usr/bin/env bash
# certificate-manager in LAN CA mode (the default): the leaf verifies with the published CA for
# every configured name and IP; a name change re-issues from the same CA; a missing key
# re-issues; the CA survives all of it; --healthcheck reads the status file.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_pebble.sh"
dcp_setup
dcp_require_certmgr

out="$DCP_TMP/certs"
run() {
  env CERTMGR_OUTPUT_DIR="$out" "$@" "$DCP_CERTMGR_BIN" --once >>"$DCP_TMP/certmgr.log" 2>&1 ||
    { cat "$DCP_TMP/certmgr.log" >&2; dcp_fail "certificate-manager --once failed"; }
}
verify_leaf() {
  openssl verify -x509_strict -purpose sslserver -CAfile "$out/ca.crt" "$out/tls.crt" \
    >/dev/null || dcp_fail "openssl verify rejects the leaf"
}

CERTMGR_OUTPUT_DIR="$out" "$DCP_CERTMGR_BIN" --healthcheck >/dev/null &&
  dcp_fail "healthy before the first check"
run HOMELAB_APP_EXTERNAL_DOMAIN=registry.home.test HOMELAB_APP_EXTERNAL_IP=192.168.77.10
verify_leaf
dcp_assert_eq "$(dcp_cert_sans "$out/tls.crt" | paste -sd,)" \
  "DNS:localhost,DNS:registry.home.test,IP:127.0.0.1,IP:192.168.77.10" "SANs of the LAN leaf"
dcp_assert_eq "$(stat -c %a "$out/ca.key")" 600 "mode of ca.key"
dcp_assert_eq "$(stat -c %a "$out/tls.key")" 600 "mode of tls.key"
openssl x509 -noout -text -in "$out/ca.crt" | grep -q 'CA:TRUE, pathlen:0' ||
  dcp_fail "the CA is not limited to path length 0"
CERTMGR_OUTPUT_DIR="$out" "$DCP_CERTMGR_BIN" --healthcheck >/dev/null ||
  dcp_fail "--healthcheck is not healthy after issuance"
dcp_pass "leaf verifies with the LAN CA, for every name and IP"

# A TLS client that trusts only ca.crt accepts the leaf for each name and IP.
port=$(dcp_free_port)
dcp_spawn tls_server "$DCP_TMP/tls_server.log" openssl s_server -quiet -accept "127.0.0.1:$port" \
  -cert "$out/tls.crt" -key "$out/tls.key" -www
deadline=$((SECONDS + 20))
until curl -s -o /dev/null --cacert "$out/ca.crt" "https://localhost:$port/"; do
  dcp_running tls_server || dcp_fail "openssl s_server exited"
  [ "$SECONDS" -lt "$deadline" ] || dcp_fail "openssl s_server did not answer"
  sleep 0.1
done
for name in registry.home.test localhost; do
  curl -sf -o /dev/null --cacert "$out/ca.crt" --resolve "$name:$port:127.0.0.1" \
    "https://$name:$port/" || dcp_fail "curl trusting ca.crt rejects the leaf for $name"
done
curl -sf -o /dev/null --cacert "$out/ca.crt" "https://127.0.0.1:$port/" ||
  dcp_fail "curl trusting ca.crt rejects the leaf for 127.0.0.1"
dcp_stop tls_server
dcp_pass "curl trusting only ca.crt accepts the leaf"

ca_before=$(sha256sum <"$out/ca.crt")
serial=$(dcp_cert_serial "$out/tls.crt")
run HOMELAB_APP_EXTERNAL_DOMAIN=registry.home.test HOMELAB_APP_EXTERNAL_IP=192.168.77.10
dcp_assert_eq "$(dcp_cert_serial "$out/tls.crt")" "$serial" "serial when nothing changed"

run HOMELAB_APP_EXTERNAL_DOMAIN=registry.home.test,cache.home.test \
  HOMELAB_APP_EXTERNAL_IP=192.168.77.10
grep -q 'names changed, renewing: missing=cache.home.test' "$DCP_TMP/certmgr.log" ||
  dcp_fail "the name change was not logged with its reason"
[ "$(dcp_cert_serial "$out/tls.crt")" != "$serial" ] || dcp_fail "no re-issue after a name change"
dcp_cert_sans "$out/tls.crt" | grep -qx 'DNS:cache.home.test' || dcp_fail "new name missing"
verify_leaf
dcp_assert_eq "$(sha256sum <"$out/ca.crt")" "$ca_before" "ca.crt after a re-issue"
dcp_pass "a name change re-issues from the same CA"

rm "$out/tls.key"
run HOMELAB_APP_EXTERNAL_DOMAIN=registry.home.test,cache.home.test \
  HOMELAB_APP_EXTERNAL_IP=192.168.77.10
grep -q 'certificate files missing, issuing: tls.key missing' "$DCP_TMP/certmgr.log" ||
  dcp_fail "the missing key was not logged"
verify_leaf
dcp_assert_eq "$(sha256sum <"$out/ca.crt")" "$ca_before" "ca.crt after a lost key"
dcp_pass "a missing key re-issues; the CA survives"

# ca.crt without ca.key: refuse to start (exit 73) rather than silently make a new CA.
mv "$out/ca.key" "$DCP_TMP/ca.key.saved"
CERTMGR_OUTPUT_DIR="$out" "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/noca.log" 2>&1 &&
  dcp_fail "started without ca.key"
status=$?
dcp_assert_eq "$status" 73 "exit code without ca.key"
grep -q 'ca.key is missing' "$DCP_TMP/noca.log" || dcp_fail "the message does not name ca.key"
dcp_assert_eq "$(sha256sum <"$out/ca.crt")" "$ca_before" "ca.crt after a refused start"
dcp_pass "a CA without its key stops the program instead of being replaced"

CERTMGR_MODE=lan CERTMGR_OUTPUT_DIR="$out" "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/bad.log" 2>&1 &&
  dcp_fail "a bad mode was accepted"
status=$?
dcp_assert_eq "$status" 78 "exit code of a bad setting"
grep -q 'CERTMGR_MODE: bad value "lan", expected lan-ca or acme' "$DCP_TMP/bad.log" ||
  dcp_fail "the config error does not name variable, value and expectation"
dcp_pass "bad configuration exits 78 naming the variable"
