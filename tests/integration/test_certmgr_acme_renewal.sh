#!/usr/bin/env bash
# certificate-manager renews when due and not before: pebble issues 30-second certificates,
# due at half their lifetime (<= 10 days: 1/2). The running manager (not --once) issues at
# start, schedules its next check at the due time, and renews then; the previous pair is kept
# and the new chain verifies.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_pebble.sh"
dcp_setup
dcp_require_certmgr

dcp_pebble_start --validity 30 --nonce-reject 0
dcp_pebble_root "$DCP_TMP/root.pem"
out="$DCP_TMP/certs"
mapfile -t acme_env < <(dcp_certmgr_acme_env "$out")
log="$DCP_TMP/certmgr.log"

dcp_spawn certmgr "$log" env "${acme_env[@]}" CERTMGR_CHECK_INTERVAL=1h \
  HOMELAB_APP_EXTERNAL_DOMAIN=renew.example.test "$DCP_CERTMGR_BIN"
dcp_wait_log "$log" 'certificate issued' 60 certmgr
first_serial=$(dcp_cert_serial "$out/tls.crt")
cp "$out/tls.crt" "$DCP_TMP/first.crt"
renew_at=$(jq -r .certificate.renew_at "$out/status.json")
not_before=$(date -d "$(openssl x509 -noout -startdate -in "$out/tls.crt" | cut -d= -f2)" +%s)
not_after=$(date -d "$(openssl x509 -noout -enddate -in "$out/tls.crt" | cut -d= -f2)" +%s)
dcp_assert_eq "$(date -d "$renew_at" +%s)" "$(((not_before + not_after) / 2))" \
  "renew_at of a short-lived certificate (half its lifetime)"
dcp_wait_log "$log" "next check scheduled: at=$renew_at" 10 certmgr
dcp_pass "first certificate issued, next check at its due time $renew_at"

# The renewal: a second issuance, no earlier than the due time.
deadline=$((SECONDS + 90))
until [ "$(grep -c 'certificate issued' "$log")" -ge 2 ]; do
  dcp_running certmgr || dcp_fail "certificate-manager exited"
  [ "$SECONDS" -lt "$deadline" ] || dcp_fail "no renewal within 90s of the first issuance"
  sleep 0.2
done
renewed_line=$(grep 'certificate issued' "$log" | sed -n 2p)
renewed_at=$(date -d "$(cut -d' ' -f1 <<<"$renewed_line")" +%s)
[ "$renewed_at" -ge "$(date -d "$renew_at" +%s)" ] ||
  dcp_fail "renewed at $(cut -d' ' -f1 <<<"$renewed_line"), before the due time $renew_at"
grep -q 'renewal due since' "$log" || dcp_fail "the renewal did not say why"
[ "$(dcp_cert_serial "$out/tls.crt")" != "$first_serial" ] || dcp_fail "serial did not change"
cmp -s "$out/tls.crt.prev" "$DCP_TMP/first.crt" || dcp_fail "tls.crt.prev is not the first certificate"
[ -f "$out/tls.key.prev" ] || dcp_fail "tls.key.prev missing"
dcp_assert_eq "$(stat -c %a "$out/tls.key")" 600 "mode of the renewed tls.key"
dcp_verify_chain "$DCP_TMP/root.pem" "$out/tls.crt"
dcp_pass "renewed when due, not before; previous pair kept"

dcp_stop certmgr
grep -q 'certificate-manager stopped' "$log" || dcp_fail "no clean stop on SIGTERM"
dcp_pass "stops on SIGTERM"
