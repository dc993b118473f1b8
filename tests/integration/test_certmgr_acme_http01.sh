#!/usr/bin/env bash
# certificate-manager against Debian's pebble: issuance by HTTP-01 (its own responder, then a
# webroot the proxy serves on the validation port), with pebble's default 5% nonce rejection;
# the chain verifies against pebble's root; a second check does not renew; the proxy's
# challenge path reads no file outside its directory; lego, issuing against the same pebble,
# is the reference our certificate is compared with.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_pebble.sh"
dcp_setup
dcp_require_certmgr
command -v lego >/dev/null || dcp_fail "lego is not installed (apt-get install lego)"

dcp_pebble_start # default nonce rejection: exercises the badNonce retry now and then
dcp_pebble_root "$DCP_TMP/root.pem"
mapfile -t acme_env < <(dcp_certmgr_acme_env "$DCP_TMP/certs")
names=a.example.test,b.example.test

# 1. Our own responder on pebble's validation port, DNS names and an IP address.
env "${acme_env[@]}" HOMELAB_APP_EXTERNAL_DOMAIN=$names HOMELAB_APP_EXTERNAL_IP=127.0.0.1 \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run1.log" 2>&1 ||
  { cat "$DCP_TMP/run1.log" >&2; dcp_fail "first issuance failed (exit $?)"; }
out="$DCP_TMP/certs"
dcp_verify_chain "$DCP_TMP/root.pem" "$out/tls.crt"
dcp_assert_eq "$(dcp_cert_sans "$out/tls.crt" | paste -sd,)" \
  "DNS:a.example.test,DNS:b.example.test,IP:127.0.0.1" "SANs of the issued certificate"
dcp_assert_eq "$(stat -c %a "$out/tls.key")" 600 "mode of tls.key"
dcp_assert_eq "$(stat -c %a "$out/acme-account.key")" 600 "mode of the account key"
openssl x509 -noout -pubkey -in "$out/tls.crt" >"$DCP_TMP/cert.pub"
openssl pkey -pubout -in "$out/tls.key" >"$DCP_TMP/key.pub"
cmp -s "$DCP_TMP/cert.pub" "$DCP_TMP/key.pub" || dcp_fail "tls.key does not match tls.crt"
grep -q 'http-01 request: path=/.well-known/acme-challenge/' "$DCP_TMP/run1.log" ||
  dcp_fail "pebble never fetched a challenge from our responder"
dcp_pass "http-01 issuance with the built-in responder"

# 2. A second check finds nothing to do: same certificate, same account.
serial=$(dcp_cert_serial "$out/tls.crt")
account_key=$(sha256sum <"$out/acme-account.key")
env "${acme_env[@]}" HOMELAB_APP_EXTERNAL_DOMAIN=$names HOMELAB_APP_EXTERNAL_IP=127.0.0.1 \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run2.log" 2>&1 || dcp_fail "second check failed"
grep -q 'renewal not due until' "$DCP_TMP/run2.log" || dcp_fail "second check did not say why"
dcp_assert_eq "$(dcp_cert_serial "$out/tls.crt")" "$serial" "serial after a check that is not due"
dcp_assert_eq "$(sha256sum <"$out/acme-account.key")" "$account_key" "account key kept"
mkdir -p "$DCP_TMP/empty"
CERTMGR_OUTPUT_DIR="$DCP_TMP/empty" "$DCP_CERTMGR_BIN" --healthcheck >/dev/null &&
  dcp_fail "healthcheck says healthy without a status file"
CERTMGR_OUTPUT_DIR=$out "$DCP_CERTMGR_BIN" --healthcheck || dcp_fail "healthcheck after issuance"
dcp_pass "a check before the due time changes nothing"

# 3. Webroot only: the proxy owns the validation port (port 80 in the bundle) and serves the
# token files the certificate-manager writes, from its http.acme_challenge_dir.
www="$DCP_TMP/www"
challenges="$www/.well-known/acme-challenge"
mkdir -p "$challenges"
cat >"$DCP_TMP/proxy.yaml" <<EOF
log: {level: debug}
http: {addr: "127.0.0.1:$PEBBLE_HTTP_PORT", acme_challenge_dir: "$challenges"}
storage: {root: "$DCP_TMP/cache"}
upstreams:
  - name: docker.io
    url: "http://127.0.0.1:$(dcp_free_port)"
    default: true
EOF
dcp_start_proxy proxy "$DCP_TMP/proxy.yaml"
env "${acme_env[@]}" CERTMGR_OUTPUT_DIR="$DCP_TMP/certs-webroot" CERTMGR_HTTP01_ADDR= \
  CERTMGR_HTTP01_WEBROOT="$challenges" HOMELAB_APP_EXTERNAL_DOMAIN=webroot.example.test \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run3.log" 2>&1 ||
  { cat "$DCP_TMP/run3.log" >&2; dcp_fail "issuance through the proxy's challenge path failed"; }
dcp_verify_chain "$DCP_TMP/root.pem" "$DCP_TMP/certs-webroot/tls.crt"
[ "$(dcp_proxy_requests proxy GET '^/\.well-known/acme-challenge/[A-Za-z0-9_-]+$')" -ge 1 ] ||
  dcp_fail "pebble never fetched a token file through the proxy"
[ -z "$(ls -A "$challenges")" ] || dcp_fail "token files left in the webroot"
dcp_pass "http-01 issuance through the proxy serving the webroot"

# The challenge path serves token files from that directory and nothing else: a name that
# climbs out of it, spelled plainly or percent-encoded, is a 404 and never reads the file.
printf 'outside-secret\n' >"$www/.well-known/outside"
printf 'token-body' >"$challenges/Good_token-1"
dcp_assert_eq "$(dcp_http GET "$proxy_URL/.well-known/acme-challenge/Good_token-1")" 200 \
  "a token file in the challenge directory"
dcp_assert_eq "$(cat "$DCP_TMP/body")" token-body "body of the token file"
for bad in ../outside %2e%2e/outside %2E%2E%2Foutside ..%2foutside .%2e/outside \
  ..%5coutside Good_token-1/../../outside; do
  dcp_assert_eq "$(dcp_http GET "$proxy_URL/.well-known/acme-challenge/$bad" --path-as-is)" \
    404 "challenge path $bad"
  if grep -q outside-secret "$DCP_TMP/body"; then
    dcp_fail "challenge path $bad read a file outside the directory"
  fi
done
rm -f "$challenges/Good_token-1"
dcp_stop proxy
dcp_pass "the challenge path reads no file outside its directory"

# 4. The reference: lego (4.9, no IP identifiers) for the same DNS names against the same pebble.
env "${acme_env[@]}" CERTMGR_OUTPUT_DIR="$DCP_TMP/certs-dns-only" HOMELAB_APP_EXTERNAL_DOMAIN=$names \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run4.log" 2>&1 ||
  { cat "$DCP_TMP/run4.log" >&2; dcp_fail "issuance for the lego comparison failed"; }
LEGO_CA_CERTIFICATES=$PEBBLE_CA timeout 120 lego --server "$PEBBLE_DIR_URL" \
  --email admin@example.test --accept-tos --domains a.example.test --domains b.example.test \
  --http --http.port "127.0.0.1:$PEBBLE_HTTP_PORT" --path "$DCP_TMP/lego" run \
  >"$DCP_TMP/lego.log" 2>&1 || { cat "$DCP_TMP/lego.log" >&2; dcp_fail "lego could not issue"; }
lego_crt="$DCP_TMP/lego/certificates/a.example.test.crt"
dcp_verify_chain "$DCP_TMP/root.pem" "$lego_crt"
dcp_assert_eq "$(dcp_cert_sans "$DCP_TMP/certs-dns-only/tls.crt" | paste -sd,)" \
  "$(dcp_cert_sans "$lego_crt" | paste -sd,)" "SANs: ours vs lego's"
dcp_assert_eq "$(openssl x509 -noout -issuer -in "$DCP_TMP/certs-dns-only/tls.crt")" \
  "$(openssl x509 -noout -issuer -in "$lego_crt")" "issuer: ours vs lego's"
dcp_assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$DCP_TMP/certs-dns-only/tls.crt")" \
  "$(grep -c 'BEGIN CERTIFICATE' "$lego_crt")" "chain length: ours vs lego's"
dcp_pass "same names, issuer and chain shape as lego"
