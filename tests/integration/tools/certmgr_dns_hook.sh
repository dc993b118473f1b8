#!/usr/bin/env bash
# A DNS-01 hook in lego's exec-provider form for the tests: `certmgr_dns_hook.sh present|cleanup
# <fqdn> <value>` publishes or removes the TXT record on pebble-challtestsrv's mock DNS through
# its management API ($CHALLTESTSRV_URL), and appends "<action> <fqdn> <value>" to
# $CERTMGR_HOOK_LOG.
set -euo pipefail
action=$1 fqdn=$2 value=$3
: "${CHALLTESTSRV_URL:?CHALLTESTSRV_URL must be set}"
case "$action" in
  present)
    curl -sf -X POST -d "{\"host\":\"$fqdn\",\"value\":\"$value\"}" "$CHALLTESTSRV_URL/set-txt"
    ;;
  cleanup)
    curl -sf -X POST -d "{\"host\":\"$fqdn\"}" "$CHALLTESTSRV_URL/clear-txt"
    ;;
  *)
    echo "unknown action: $action" >&2
    exit 2
    ;;
esac
if [ -n "${CERTMGR_HOOK_LOG:-}" ]; then
  echo "$action $fqdn $value" >>"$CERTMGR_HOOK_LOG"
fi
echo "hook: $action $fqdn done"
