# shellcheck shell=bash
# Pebble (Debian's pebble 2.4) and pebble-challtestsrv for the certificate-manager tests, on
# free 127.0.0.1 ports. Source after lib.sh and call dcp_setup first.
#
# pebble resolves every name through challtestsrv's mock DNS, which answers 127.0.0.1 for any
# A query, so HTTP-01 validation connects to 127.0.0.1:$PEBBLE_HTTP_PORT, where the client
# under test must listen.

: "${DCP_CERTMGR_BIN:=$DCP_REPO_ROOT/build/release/certificate-manager/certificate-manager}"
export DCP_CERTMGR_BIN

# EAB credentials pebble is configured with when dcp_pebble_start gets --eab.
DCP_PEBBLE_EAB_KID=kid-1
DCP_PEBBLE_EAB_KEY=zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W

dcp_require_certmgr() {
  [ -x "$DCP_CERTMGR_BIN" ] ||
    dcp_fail "certificate-manager binary not found: $DCP_CERTMGR_BIN (set DCP_CERTMGR_BIN)"
}

# dcp_pebble_tls_cert DIR: a self-signed certificate for pebble's own HTTPS endpoint (Debian's
# package ships none), for localhost and 127.0.0.1. Writes DIR/pebble-tls.{crt,key}.
dcp_pebble_tls_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=pebble-test" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$1/pebble-tls.key" -out "$1/pebble-tls.crt" 2>/dev/null ||
    dcp_fail "openssl could not make pebble's TLS certificate"
}

# dcp_pebble_start [--eab] [--validity SECONDS] [--nonce-reject PERCENT]: challtestsrv and
# pebble. Without --nonce-reject pebble keeps its default (5% of good nonces rejected).
# Exports PEBBLE_DIR_URL, PEBBLE_CA (trust for the ACME endpoint), PEBBLE_MGMT_URL,
# PEBBLE_HTTP_PORT (where HTTP-01 is validated), PEBBLE_DNS (challtestsrv's DNS, host:port),
# CHALLTESTSRV_URL, PEBBLE_LOG.
dcp_pebble_start() {
  local eab=false validity="" reject=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --eab) eab=true ;;
      --validity) validity=$2; shift ;;
      --nonce-reject) reject=$2; shift ;;
      *) dcp_fail "dcp_pebble_start: unknown option $1" ;;
    esac
    shift
  done
  command -v pebble >/dev/null || dcp_fail "pebble is not installed (apt-get install pebble)"
  local dir="$DCP_TMP/pebble" acme_port mgmt_port http_port tls_port dns_port chall_port
  mkdir -p "$dir"
  dcp_pebble_tls_cert "$dir"
  acme_port=$(dcp_free_port)
  mgmt_port=$(dcp_free_port)
  http_port=$(dcp_free_port)
  tls_port=$(dcp_free_port)
  dns_port=$(dcp_free_port)
  chall_port=$(dcp_free_port)

  dcp_spawn challtestsrv "$DCP_TMP/challtestsrv.log" pebble-challtestsrv \
    -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$dns_port" -http01 "" \
    -https01 "" -tlsalpn01 "" -management "127.0.0.1:$chall_port"
  dcp_wait_http "http://127.0.0.1:$chall_port/" 30 challtestsrv

  {
    printf '{"pebble": {\n'
    printf '  "listenAddress": "127.0.0.1:%s",\n' "$acme_port"
    printf '  "managementListenAddress": "127.0.0.1:%s",\n' "$mgmt_port"
    printf '  "certificate": "%s",\n  "privateKey": "%s",\n' "$dir/pebble-tls.crt" \
      "$dir/pebble-tls.key"
    printf '  "httpPort": %s,\n  "tlsPort": %s,\n' "$http_port" "$tls_port"
    printf '  "ocspResponderURL": "",\n'
    [ -n "$validity" ] && printf '  "certificateValidityPeriod": %s,\n' "$validity"
    if [ "$eab" = true ]; then
      printf '  "externalAccountBindingRequired": true,\n'
      printf '  "externalAccountMACKeys": {"%s": "%s"}\n' "$DCP_PEBBLE_EAB_KID" "$DCP_PEBBLE_EAB_KEY"
    else
      printf '  "externalAccountBindingRequired": false\n'
    fi
    printf '}}\n'
  } >"$dir/pebble.json"

  local -a env_args=(PEBBLE_VA_NOSLEEP=1)
  [ -n "$reject" ] && env_args+=("PEBBLE_WFE_NONCEREJECT=$reject")
  dcp_spawn pebble "$DCP_TMP/pebble.log" env "${env_args[@]}" \
    pebble -config "$dir/pebble.json" -dnsserver "127.0.0.1:$dns_port"

  export PEBBLE_DIR_URL="https://127.0.0.1:$acme_port/dir"
  export PEBBLE_CA="$dir/pebble-tls.crt"
  export PEBBLE_MGMT_URL="https://127.0.0.1:$mgmt_port"
  export PEBBLE_HTTP_PORT=$http_port
  export PEBBLE_DNS="127.0.0.1:$dns_port"
  export CHALLTESTSRV_URL="http://127.0.0.1:$chall_port"
  export PEBBLE_LOG="$DCP_TMP/pebble.log"
  local deadline=$((SECONDS + 30))
  until curl -sf --cacert "$PEBBLE_CA" -o /dev/null "$PEBBLE_DIR_URL"; do
    dcp_running pebble || dcp_fail "pebble exited during start (log: $PEBBLE_LOG)"
    [ "$SECONDS" -lt "$deadline" ] || dcp_fail "pebble did not answer $PEBBLE_DIR_URL in 30s"
    sleep 0.1
  done
  dcp_log "pebble ready: $PEBBLE_DIR_URL (http-01 port $PEBBLE_HTTP_PORT, dns $PEBBLE_DNS)"
}

# dcp_pebble_root FILE: pebble's current root (it makes a new one at every start).
dcp_pebble_root() {
  curl -sf --cacert "$PEBBLE_CA" "$PEBBLE_MGMT_URL/roots/0" >"$1" ||
    dcp_fail "cannot fetch pebble's root from $PEBBLE_MGMT_URL/roots/0"
}

# dcp_verify_chain ROOT CHAIN: the first certificate of CHAIN verifies up to ROOT through the
# others.
dcp_verify_chain() {
  openssl verify -purpose sslserver -CAfile "$1" -untrusted "$2" "$2" >/dev/null 2>&1 ||
    dcp_fail "chain $2 does not verify against $1: $(openssl verify -CAfile "$1" -untrusted "$2" "$2" 2>&1)"
}

# dcp_cert_sans FILE: the SANs of the first certificate, sorted, one a line ("DNS:a", "IP:b").
dcp_cert_sans() {
  openssl x509 -noout -ext subjectAltName -in "$1" 2>/dev/null | tail -n +2 | tr ',' '\n' |
    sed -e 's/^ *//' -e 's/IP Address:/IP:/' | grep -v '^$' | sort
}

dcp_cert_serial() { openssl x509 -noout -serial -in "$1" | cut -d= -f2; }

# dcp_certmgr_acme_env OUT_DIR: the environment of a certificate-manager against the running pebble
# (http-01 on pebble's validation port), printed as NAME=VALUE lines for `env`.
dcp_certmgr_acme_env() {
  printf '%s\n' \
    CERTMGR_MODE=acme \
    "CERTMGR_OUTPUT_DIR=$1" \
    "CERTMGR_ACME_DIRECTORY=$PEBBLE_DIR_URL" \
    "CERTMGR_ACME_CA_BUNDLE=$PEBBLE_CA" \
    CERTMGR_ACME_EMAIL=admin@example.test \
    "CERTMGR_HTTP01_ADDR=127.0.0.1:$PEBBLE_HTTP_PORT" \
    CERTMGR_LOG_LEVEL=debug
}
