#!/usr/bin/env bash
# certificate-manager reports to a healthchecks.io-style URL: /start then success for a good
# check, /start then /fail with the tail of the run's log as body for a failed one, each pair
# sharing one ?rid=; an unreachable ping URL neither fails nor holds up the run, whether it
# refuses the connection or accepts it and never answers.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_pebble.sh"
dcp_setup
dcp_require_certmgr

dcp_start_recorder recorder
port=$recorder_PORT
pings=$recorder_PINGS
check_url="http://127.0.0.1:$port/ping/6f0f3a9e-0000-4000-8000-000000000001"

# 1. A good check: /start, then success, same rid.
CERTMGR_OUTPUT_DIR="$DCP_TMP/certs" HOMELAB_HEALTHCHECK_URL="$check_url" \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run1.log" 2>&1 || dcp_fail "LAN CA check failed"
dcp_assert_eq "$(jq -r .path "$pings" | paste -sd' ')" \
  "/ping/6f0f3a9e-0000-4000-8000-000000000001/start /ping/6f0f3a9e-0000-4000-8000-000000000001" \
  "pings of a good check"
rids=$(jq -r '.query | capture("rid=(?<r>[0-9a-f-]+)").r' "$pings" | sort -u)
dcp_assert_eq "$(wc -l <<<"$rids")" 1 "one rid for start and success"
grep -qF "$check_url" "$DCP_TMP/run1.log" && dcp_fail "the ping URL (a credential) was logged"
dcp_pass "/start then success with one rid"

# 2. A failed check (the ACME server is unreachable): /start, then /fail with the log tail.
: >"$pings"
closed=$(dcp_free_port)
CERTMGR_MODE=acme CERTMGR_OUTPUT_DIR="$DCP_TMP/certs-acme" \
  CERTMGR_ACME_DIRECTORY="http://127.0.0.1:$closed/dir" HOMELAB_APP_EXTERNAL_DOMAIN=x.example.test \
  HOMELAB_HEALTHCHECK_URL="$check_url" "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run2.log" 2>&1 &&
  dcp_fail "a check against an unreachable CA succeeded"
dcp_assert_eq "$(jq -r .path "$pings" | paste -sd' ')" \
  "/ping/6f0f3a9e-0000-4000-8000-000000000001/start /ping/6f0f3a9e-0000-4000-8000-000000000001/fail" \
  "pings of a failed check"
body=$(jq -r 'select(.path | endswith("/fail")) | .body' "$pings")
dcp_assert_match "$body" 'acme server unreachable' "the /fail body carries the run's log"
dcp_assert_match "$body" 'issuance failed, no valid certificate in place' "the /fail body says what failed"
rids=$(jq -r '.query | capture("rid=(?<r>[0-9a-f-]+)").r' "$pings" | sort -u)
dcp_assert_eq "$(wc -l <<<"$rids")" 1 "one rid for start and fail"
dcp_pass "/start then /fail with the log tail as body"

# 3. An unreachable ping URL: the check still succeeds, promptly.
start=$SECONDS
CERTMGR_OUTPUT_DIR="$DCP_TMP/certs-unreachable" \
  HOMELAB_HEALTHCHECK_URL="http://127.0.0.1:$closed/ping/x" \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run3.log" 2>&1 ||
  { cat "$DCP_TMP/run3.log" >&2; dcp_fail "an unreachable ping URL failed the run"; }
[ -s "$DCP_TMP/certs-unreachable/tls.crt" ] || dcp_fail "no certificate with an unreachable ping URL"
grep -q 'healthcheck ping failed' "$DCP_TMP/run3.log" || dcp_fail "the failed ping was not logged"
[ $((SECONDS - start)) -lt 30 ] || dcp_fail "an unreachable ping URL held the run up"
dcp_pass "an unreachable ping URL does not fail the run"

# 4. A ping URL that accepts the connection and never answers (a firewall that swallows
# requests): each attempt runs into its timeout and would be retried for a minute and a half.
# --once still ends within its bounded wait, with the check's own exit code.
blackhole=$(dcp_free_port)
dcp_spawn blackhole "$DCP_TMP/blackhole.log" python3 "$DCP_TOOLS_DIR/blackhole.py" \
  --port "$blackhole"
dcp_wait_log "$DCP_TMP/blackhole.log" '^listening' 30 blackhole
start=$SECONDS
rc=0
CERTMGR_OUTPUT_DIR="$DCP_TMP/certs-blackhole" \
  HOMELAB_HEALTHCHECK_URL="http://127.0.0.1:$blackhole/ping/x" \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run4.log" 2>&1 || rc=$?
elapsed=$((SECONDS - start))
dcp_assert_eq "$rc" 0 "exit code of a good check with a blackholed ping URL"
[ -s "$DCP_TMP/certs-blackhole/tls.crt" ] || dcp_fail "no certificate with a blackholed ping URL"
grep -q '^accepted' "$DCP_TMP/blackhole.log" || dcp_fail "the pinger never reached the blackhole"
grep -q 'healthcheck pings not delivered in time' "$DCP_TMP/run4.log" ||
  dcp_fail "giving up on the pings at exit was not logged"
[ "$elapsed" -le 20 ] || dcp_fail "a blackholed ping URL held --once up for ${elapsed}s"
start=$SECONDS
rc=0
CERTMGR_MODE=acme CERTMGR_OUTPUT_DIR="$DCP_TMP/certs-blackhole-acme" \
  CERTMGR_ACME_DIRECTORY="http://127.0.0.1:$closed/dir" HOMELAB_APP_EXTERNAL_DOMAIN=x.example.test \
  HOMELAB_HEALTHCHECK_URL="http://127.0.0.1:$blackhole/ping/x" \
  "$DCP_CERTMGR_BIN" --once >"$DCP_TMP/run5.log" 2>&1 || rc=$?
elapsed=$((SECONDS - start))
dcp_assert_eq "$rc" 75 "exit code of a failed check with a blackholed ping URL"
[ "$elapsed" -le 20 ] || dcp_fail "a blackholed ping URL held a failed --once up for ${elapsed}s"
dcp_pass "a ping URL that never answers does not hold up --once or change its exit code"

# 5. No URL, no pings.
: >"$pings"
CERTMGR_OUTPUT_DIR="$DCP_TMP/certs" "$DCP_CERTMGR_BIN" --once >/dev/null 2>&1 || dcp_fail "check failed"
[ ! -s "$pings" ] || dcp_fail "pinged without HOMELAB_HEALTHCHECK_URL"
dcp_pass "no pings without HOMELAB_HEALTHCHECK_URL"
