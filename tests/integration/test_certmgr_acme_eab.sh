#!/usr/bin/env bash
# certificate-manager against a pebble that requires external account binding (RFC 8555
# §7.3.4) and rejects half of all good nonces: without EAB credentials the check fails with a
# message that names the settings; with them (the HMAC key from a _FILE) it issues, retrying
# every rejected nonce.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_pebble.sh"
dcp_setup
dcp_require_certmgr

dcp_pebble_start --eab --nonce-reject 50
dcp_pebble_root "$DCP_TMP/root.pem"
mapfile -t acme_env < <(dcp_certmgr_acme_env "$DCP_TMP/certs")

env "${acme_env[@]}" HOMELAB_APP_EXTERNAL_DOMAIN=eab.example.test \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run1.log" 2>&1 && dcp_fail "issued without EAB"
status=$?
dcp_assert_eq "$status" 75 "exit code without EAB"
grep -q 'requires external account binding: set CERTMGR_ACME_EAB_KID' "$DCP_TMP/run1.log" ||
  dcp_fail "the failure does not say what to set"
dcp_pass "an EAB-only CA without EAB credentials fails with a clear message"

printf '%s\n' "$DCP_PEBBLE_EAB_KEY" >"$DCP_TMP/eab.key"
env "${acme_env[@]}" HOMELAB_APP_EXTERNAL_DOMAIN=eab.example.test \
  CERTMGR_ACME_EAB_KID="$DCP_PEBBLE_EAB_KID" CERTMGR_ACME_EAB_HMAC_KEY_FILE="$DCP_TMP/eab.key" \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run2.log" 2>&1 ||
  { cat "$DCP_TMP/run2.log" >&2; dcp_fail "issuance with EAB failed"; }
dcp_verify_chain "$DCP_TMP/root.pem" "$DCP_TMP/certs/tls.crt"
grep -q 'acme account created' "$DCP_TMP/run2.log" || dcp_fail "no account was created"
grep -q 'nonce rejected, retrying' "$DCP_TMP/run2.log" ||
  dcp_fail "with 50% of nonces rejected, no badNonce retry was logged"
grep -qF "$DCP_PEBBLE_EAB_KEY" "$DCP_TMP/run1.log" "$DCP_TMP/run2.log" &&
  dcp_fail "the EAB HMAC key appears in the log"
dcp_pass "issuance with EAB, retrying rejected nonces"

# A wrong HMAC key is refused by the CA, and the key does not leak into the message.
wrong=$(openssl rand 48 | basenc --base64url | tr -d '=\n')
env "${acme_env[@]}" CERTMGR_OUTPUT_DIR="$DCP_TMP/certs-wrong" \
  HOMELAB_APP_EXTERNAL_DOMAIN=eab.example.test CERTMGR_ACME_EAB_KID="$DCP_PEBBLE_EAB_KID" \
  CERTMGR_ACME_EAB_HMAC_KEY="$wrong" \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run3.log" 2>&1 && dcp_fail "a wrong EAB key was accepted"
grep -q 'account registration failed' "$DCP_TMP/run3.log" || dcp_fail "no registration error"
grep -qF "$wrong" "$DCP_TMP/run3.log" && dcp_fail "the wrong HMAC key appears in the log"
dcp_pass "a wrong EAB key is refused without leaking it"
