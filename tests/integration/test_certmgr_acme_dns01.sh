#!/usr/bin/env bash
# certificate-manager against Debian's pebble by DNS-01: a hook in lego's exec-provider form
# publishes the TXT records on pebble-challtestsrv's mock DNS (/set-txt), the propagation check
# asks that DNS server, and the records are removed afterwards. Covers a wildcard name (two
# values at one record name). Then the same with the propagation check skipped.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_pebble.sh"
dcp_setup
dcp_require_certmgr

dcp_pebble_start --nonce-reject 0
dcp_pebble_root "$DCP_TMP/root.pem"
mapfile -t acme_env < <(dcp_certmgr_acme_env "$DCP_TMP/certs")
hook="$DCP_TOOLS_DIR/certmgr_dns_hook.sh"
export CERTMGR_HOOK_LOG="$DCP_TMP/hook.log"

env "${acme_env[@]}" CERTMGR_CHALLENGE=dns-01 CERTMGR_DNS01_COMMAND="$hook" \
  CERTMGR_DNS01_RESOLVERS="$PEBBLE_DNS" CERTMGR_HTTP01_ADDR= \
  HOMELAB_APP_EXTERNAL_DOMAIN='dns.example.test,*.dns.example.test' \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run1.log" 2>&1 ||
  { cat "$DCP_TMP/run1.log" >&2; dcp_fail "dns-01 issuance failed"; }

out="$DCP_TMP/certs"
dcp_verify_chain "$DCP_TMP/root.pem" "$out/tls.crt"
dcp_assert_eq "$(dcp_cert_sans "$out/tls.crt" | paste -sd,)" \
  "DNS:*.dns.example.test,DNS:dns.example.test" "SANs of the dns-01 certificate"
dcp_assert_eq "$(grep -c '^present _acme-challenge.dns.example.test. ' "$CERTMGR_HOOK_LOG")" 2 \
  "present calls (the name and its wildcard share one record name)"
dcp_assert_eq "$(grep -c '^cleanup _acme-challenge.dns.example.test. ' "$CERTMGR_HOOK_LOG")" 2 \
  "cleanup calls"
grep -q 'dns records visible at every resolver' "$DCP_TMP/run1.log" ||
  dcp_fail "the propagation check did not run against $PEBBLE_DNS"
dcp_pass "dns-01 issuance through the exec hook, with the propagation check"

# The propagation check can be skipped (split-horizon DNS); the hook contract is the same.
: >"$CERTMGR_HOOK_LOG"
env "${acme_env[@]}" CERTMGR_OUTPUT_DIR="$DCP_TMP/certs2" CERTMGR_CHALLENGE=dns-01 \
  CERTMGR_DNS01_COMMAND="$hook" CERTMGR_DNS01_SKIP_PROPAGATION=true CERTMGR_HTTP01_ADDR= \
  HOMELAB_APP_EXTERNAL_DOMAIN=skip.example.test \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run2.log" 2>&1 ||
  { cat "$DCP_TMP/run2.log" >&2; dcp_fail "dns-01 issuance without propagation check failed"; }
dcp_verify_chain "$DCP_TMP/root.pem" "$DCP_TMP/certs2/tls.crt"
grep -q 'dns propagation check skipped' "$DCP_TMP/run2.log" || dcp_fail "check was not skipped"
dcp_pass "dns-01 issuance with the propagation check skipped"

# A failing hook fails the check with exit 75 and names the record; nothing is written.
env "${acme_env[@]}" CERTMGR_OUTPUT_DIR="$DCP_TMP/certs3" CERTMGR_CHALLENGE=dns-01 \
  CERTMGR_DNS01_COMMAND="false" CERTMGR_HTTP01_ADDR= HOMELAB_APP_EXTERNAL_DOMAIN=fail.example.test \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run3.log" 2>&1 && dcp_fail "a failing hook went unnoticed"
status=$?
dcp_assert_eq "$status" 75 "exit code of a failed check"
grep -q 'dns hook failed to present the TXT record: fqdn=_acme-challenge.fail.example.test.' \
  "$DCP_TMP/run3.log" || dcp_fail "the failure does not say which record"
[ ! -e "$DCP_TMP/certs3/tls.crt" ] || dcp_fail "a certificate appeared after a failed order"
dcp_pass "a failing hook fails the check with exit 75"
