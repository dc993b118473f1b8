#!/usr/bin/env bash
# The compose bundle end to end: the images built by Debian's docker-compose 1.29 from
# compose/compose.yml, the stack brought up with a test override, and a Docker daemon using it
# as its registry mirror.
#
# On a private dockerd (own data root, exec root, socket and pidfile; vfs, no iptables, no
# bridge), with a debian:bookworm-slim base made locally by mmdebstrap (no image can be pulled):
# - `docker-compose build` builds the three images, compiling the project once;
# - `up` with host networking on free loopback ports, the upstream a local docker-registry with
#   the generated images, every healthchecks URL a local recording server (admin-setup's given
#   as a secret file), the warm-up list set; the proxy and certificate-manager become healthy
#   (their own HEALTHCHECKs), admin-setup exits 0, all three images run as uid 10001;
# - the daemon, with the proxy's HTTPS port as registry mirror and the LAN CA in
#   /etc/docker/certs.d as admin-setup's client configuration gives them, pulls and runs the
#   busybox image; the proxy's log shows the pull and the upstream saw no blob GET for it (the
#   warm-up had cached it);
# - the recording server got /start and success from each program;
# - the uptime-kuma monitors of docs/monitoring.md are UP trusting the LAN CA;
# - `down` keeps the volumes; with the upstream stopped, the next `up` serves the cached image
#   (a fresh pull works) and the Json Query monitor reports the upstream's absence.
# The image sizes are printed (docs/install.md quotes them).
#
# It needs the Debian archive (mmdebstrap and apt-get in the image build), so it runs in the
# machine's network namespace (lib_clients.sh with DCP_CLIENTS_NETWORK=host) with every listener
# on 127.0.0.1; Docker Hub cannot be what served the pull: the proxy's log is checked.
#
# DCP_BUNDLE_DOCKER_DATA=DIR keeps the daemon's data root in DIR between runs (base image and
# build cache reused: for working on this test; the named volumes are removed first).
export DCP_CLIENTS_NETWORK=host
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_clients.sh"
dcp_setup

project=dcpbundle
compose_file="$DCP_REPO_ROOT/compose/compose.yml"
volumes=(docker-cache-proxy-cache docker-cache-proxy-certs docker-cache-proxy-credentials
  docker-cache-proxy-client-config)
command -v docker-compose >/dev/null || dcp_die "docker-compose not found (scripts/install-deps.sh)"
command -v mmdebstrap >/dev/null || dcp_die "mmdebstrap not found (scripts/install-deps.sh)"

# --- peers: recorder, upstream with the generated images, the daemon -------------------------------
dcp_start_recorder recorder
rec_port=$recorder_PORT
pings=$recorder_PINGS

dcp_start_upstream hub
dcp_load_images hub

http_port=$(dcp_free_port)
https_port=$(dcp_free_port)
mirror="https://127.0.0.1:$https_port"
if [ -n "${DCP_BUNDLE_DOCKER_DATA:-}" ]; then
  mkdir -p "$DCP_BUNDLE_DOCKER_DATA" "$DCP_TMP/dockerd"
  ln -s "$DCP_BUNDLE_DOCKER_DATA" "$DCP_TMP/dockerd/data"
fi
dcp_start_dockerd dockerd "$mirror"
export DOCKER_HOST=$DOCKERD_HOST DOCKER_CONFIG="$DCP_TMP/dockerd/client"
mkdir -p "$DOCKER_CONFIG"
# Debian's docker CLI (20.10), and the classic builder: what docker-compose 1.29 drives.
export PATH="/usr/bin:$PATH" COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
# A kept data root may hold the containers, volumes and pulled image of an earlier run.
"$DCP_DOCKER_CLI" ps -aq | xargs -r "$DCP_DOCKER_CLI" rm -f >/dev/null
"$DCP_DOCKER_CLI" image rm -f busybox:v1 >/dev/null 2>&1 || true
for volume in "${volumes[@]}"; do
  "$DCP_DOCKER_CLI" volume rm -f "$volume" >/dev/null 2>&1 || true
done

# --- the base image ---------------------------------------------------------------------------------
if ! "$DCP_DOCKER_CLI" image inspect debian:bookworm-slim >/dev/null 2>&1; then
  start=$SECONDS
  # minbase with merged /usr, without documentation and locales, as the official slim image.
  mmdebstrap --variant=minbase --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --aptopt='Acquire::Retries "3"' \
    bookworm "$DCP_TMP/rootfs.tar" /etc/apt/sources.list.d/debian.sources \
    >"$DCP_TMP/mmdebstrap.log" 2>&1 ||
    dcp_die "mmdebstrap failed: $(tail -n 20 "$DCP_TMP/mmdebstrap.log")"
  "$DCP_DOCKER_CLI" import --change 'CMD ["bash"]' "$DCP_TMP/rootfs.tar" debian:bookworm-slim \
    >/dev/null || dcp_die "docker import of the base image failed"
  rm -f "$DCP_TMP/rootfs.tar"
  dcp_log "base image debian:bookworm-slim made in $((SECONDS - start))s"
fi

# --- the test override: host networking, the test's config and secrets -------------------------------
config_dir="$DCP_TMP/bundle-config"
secrets_dir="$DCP_TMP/bundle-secrets"
mkdir -p "$config_dir" "$secrets_dir"
cat >"$config_dir/config.yaml" <<EOF
upstreams:
  - name: docker.io
    url: $HUB_URL
    default: true
EOF
printf 'http://127.0.0.1:%s/ping/admin-setup\n' "$rec_port" >"$secrets_dir/admin_setup_ping"
admin_password=$(dcp__random 12)
printf '%s\n' "$admin_password" >"$secrets_dir/admin_password"
# The containers run as uid/gid 10001.
chgrp -R 10001 "$config_dir" "$secrets_dir"
chmod 0750 "$config_dir" "$secrets_dir"
chmod 0640 "$config_dir"/* "$secrets_dir"/*

cat >"$DCP_TMP/bundle.env" <<EOF
BUILD_JOBS=$(nproc)
DCP_HTTP_PORT=$http_port
DCP_HTTPS_PORT=$https_port
DCP_LISTEN_ADDRESS=127.0.0.1
DCP_CONFIG_DIR=$config_dir
DCP_SECRETS_DIR=$secrets_dir
DCP_CONFIG=/etc/docker-cache-proxy/config.yaml
DCP_LOG_LEVEL=debug
DCP_TAG_TTL=0s
DCP_HEARTBEAT_INTERVAL=5s
HOMELAB_APP_EXTERNAL_IP=127.0.0.1
DCP_WARM_IMAGES=library/busybox:v1
SETUP_BCRYPT_COST=5
DCP_ADMIN_PASSWORD_FILE=/run/secrets/admin_password
PROXY_HEALTHCHECK_URL=http://127.0.0.1:$rec_port/ping/proxy
CERTMGR_HEALTHCHECK_URL=http://127.0.0.1:$rec_port/ping/certificate-manager
ADMIN_SETUP_HEALTHCHECK_URL_FILE=/run/secrets/admin_setup_ping
EOF
cat >"$DCP_TMP/override.yml" <<EOF
services:
  proxy:
    network_mode: host
  certificate-manager:
    network_mode: host
  admin-setup:
    network_mode: host
EOF

# The stack as Compose resolves compose.yml + the override + the env file. With host networking
# the published ports must go: Docker refuses port bindings on the host's network, and
# docker-compose 1.29 has no way to drop a list entry in an override (v2.24 has !reset).
docker-compose --project-directory "$DCP_REPO_ROOT" -p "$project" -f "$compose_file" \
  -f "$DCP_TMP/override.yml" --env-file "$DCP_TMP/bundle.env" config >"$DCP_TMP/resolved.yml" \
  2>"$DCP_TMP/config.err" || dcp_die "docker-compose config failed: $(cat "$DCP_TMP/config.err")"
python3 - "$DCP_TMP/resolved.yml" "$DCP_TMP/host-network.yml" <<'PY' || dcp_die "cannot drop the ports"
import sys, yaml
stack = yaml.safe_load(open(sys.argv[1]))
for service in stack["services"].values():
    assert service.get("network_mode") == "host", service
    service.pop("ports", None)
yaml.safe_dump(stack, open(sys.argv[2], "w"), sort_keys=False)
PY

# compose ARGS...: docker-compose on the resolved stack.
compose() {
  docker-compose --project-directory "$DCP_REPO_ROOT" -p "$project" -f "$DCP_TMP/host-network.yml" \
    --env-file "$DCP_TMP/bundle.env" --ansi never "$@"
}

# container SERVICE: the id of the service's (only) container.
container() { compose ps -q "$1" 2>/dev/null | head -n 1; }

# wait_setup LABEL: waits for admin-setup's container to exit; prints its exit status.
wait_setup() {
  local id deadline=$((SECONDS + 300))
  until id=$(container admin-setup) && [ -n "$id" ] &&
    [ "$("$DCP_DOCKER_CLI" inspect -f '{{.State.Status}}' "$id")" = exited ]; do
    [ "$SECONDS" -lt "$deadline" ] || dcp_die "$1: admin-setup did not finish within 300s"
    sleep 1
  done
  "$DCP_DOCKER_CLI" inspect -f '{{.State.ExitCode}}' "$id"
}

# save_logs SUFFIX: every service's log into $DCP_TMP/bundle-<service>SUFFIX.log.
save_logs() {
  local service
  for service in proxy certificate-manager admin-setup; do
    compose logs --no-color "$service" >"$DCP_TMP/bundle-$service$1.log" 2>&1 || true
  done
}

# --- build --------------------------------------------------------------------------------------------
start=$SECONDS
compose build >"$DCP_TMP/build.log" 2>&1 || dcp_die "docker-compose build failed: $(tail -n 40 "$DCP_TMP/build.log")"
dcp_log "images built in $((SECONDS - start))s"
compiles=$(grep -c 'Linking CXX executable' "$DCP_TMP/build.log" || true)
dcp_assert_match "$compiles" '^(0|3)$' "executables linked by the build (3 when not cached, once)"
sizes=""
for image in proxy certificate-manager admin-setup; do
  ref="docker-cache-proxy/$image:local"
  bytes=$("$DCP_DOCKER_CLI" image inspect -f '{{.Size}}' "$ref") || dcp_die "no image $ref"
  sizes+="$image=$((bytes / 1000000))MB "
  dcp_assert_eq "$("$DCP_DOCKER_CLI" image inspect -f '{{.Config.User}}' "$ref")" dcp:dcp "user of $ref"
  [ "$("$DCP_DOCKER_CLI" image inspect -f '{{len .Config.Healthcheck.Test}}' "$ref")" -gt 0 ] ||
    dcp_fail "$ref has no HEALTHCHECK"
done
base=$("$DCP_DOCKER_CLI" image inspect -f '{{.Size}}' debian:bookworm-slim)
# The three share the base and the runtime libraries' layer: count each layer once.
together=$(for image in proxy certificate-manager admin-setup; do
  "$DCP_DOCKER_CLI" history -H=false --no-trunc --format '{{.ID}} {{.Size}}' \
    "docker-cache-proxy/$image:local"
done | sort -u | awk '{ n += $2 } END { print int(n / 1000000) }')
echo "image sizes: ${sizes}together=${together}MB (base debian:bookworm-slim $((base / 1000000))MB)"
dcp_pass "docker-compose builds the three images, non-root, with HEALTHCHECKs"

# --- up -----------------------------------------------------------------------------------------------
start=$SECONDS
compose up -d >"$DCP_TMP/up1.log" 2>&1 || {
  save_logs -up1
  dcp_die "docker-compose up failed: $(tail -n 30 "$DCP_TMP/up1.log"; tail -n 20 "$DCP_TMP"/bundle-*-up1.log)"
}
rc=$(wait_setup "first up")
save_logs ""
dcp_log "stack up and provisioned in $((SECONDS - start))s"
[ "$rc" = 0 ] || dcp_die "admin-setup exited $rc: $(tail -n 30 "$DCP_TMP/bundle-admin-setup.log")"
for service in proxy certificate-manager; do
  health=$("$DCP_DOCKER_CLI" inspect -f '{{.State.Health.Status}}' "$(container "$service")")
  dcp_assert_eq "$health" healthy "health of $service"
done
for service in proxy certificate-manager; do
  pid=$("$DCP_DOCKER_CLI" inspect -f '{{.State.Pid}}' "$(container "$service")")
  dcp_assert_eq "$(stat -c %u:%g "/proc/$pid")" 10001:10001 "uid:gid of $service's process"
done
grep -q 'admin-setup done' "$DCP_TMP/bundle-admin-setup.log" ||
  dcp_fail "admin-setup printed no summary"
dcp_pass "up: proxy and certificate-manager healthy, admin-setup exits 0"

# --- a Docker daemon with the bundle as its mirror ------------------------------------------------------
client="$DCP_TMP/client-config"
"$DCP_DOCKER_CLI" cp "$(container admin-setup):/client-config" "$client" ||
  dcp_die "cannot copy admin-setup's client configuration"
dcp_assert_eq "$(jq -c '."registry-mirrors"' "$client/docker/daemon.json")" "[\"$mirror\"]" \
  "registry-mirrors of the client daemon.json"
dcp_assert_eq "$(jq -c '."registry-mirrors"' "$DOCKERD_CONFIG")" "[\"$mirror\"]" \
  "the daemon's registry-mirrors"
mkdir -p /etc/docker/certs.d
cp -r "$client/docker/certs.d/." /etc/docker/certs.d/
[ -f "/etc/docker/certs.d/127.0.0.1:$https_port/ca.crt" ] ||
  dcp_fail "the client configuration has no certs.d entry for 127.0.0.1:$https_port"

hub_blob_gets=$(dcp_upstream_requests hub GET '^/v2/library/busybox/blobs/')
dcp_assert_ge "$hub_blob_gets" 1 "busybox blob GETs on the upstream (the warm-up)"
"$DCP_DOCKER_CLI" pull busybox:v1 >"$DCP_TMP/pull1.out" 2>&1 ||
  dcp_fail "docker pull busybox:v1 through the bundle failed: $(cat "$DCP_TMP/pull1.out")"
out=$("$DCP_DOCKER_CLI" run --rm --network none busybox:v1 2>&1) || true
dcp_assert_eq "$out" hello-from-dcp "output of busybox:v1"
save_logs ""
proxy_log="$DCP_TMP/bundle-proxy.log"
digest=$(dcp_image_field library/busybox:v1 digest)
dcp_assert_ge "$(dcp_log_requests "$proxy_log" GET "^/v2/library/busybox/manifests/(v1|$digest)\$" '[a-z-]+')" 1 \
  "manifest GETs of busybox:v1 in the proxy's log"
for blob in $(dcp_image_blobs library/busybox:v1 amd64); do
  dcp_assert_ge "$(dcp_log_requests "$proxy_log" GET "^/v2/library/busybox/blobs/$blob\$" cache)" 1 \
    "blob $blob served from the cache"
done
dcp_assert_eq "$(dcp_upstream_requests hub GET '^/v2/library/busybox/blobs/')" "$hub_blob_gets" \
  "upstream blob GETs caused by the daemon's pull"
grep -q 'Attempting next endpoint for pull' "$DOCKERD_LOG" && dcp_fail "dockerd fell back from the mirror"
dcp_pass "a daemon with the bundle as mirror (https, LAN CA in certs.d) pulls and runs busybox from the cache"

# --- pings, monitors -------------------------------------------------------------------------------------
for check in proxy certificate-manager admin-setup; do
  got=$(jq -r --arg c "/ping/$check" 'select(.path | startswith($c)) | .path' "$pings" | head -n 2 |
    sed "s#^/ping/$check##" | paste -sd' ')
  dcp_assert_eq "$got" "/start " "first pings of $check (/start, then success)"
done
grep -q '/fail' "$pings" && dcp_fail "a program pinged /fail: $(grep /fail "$pings" | head -n 3)"
grep -qF "$admin_password" "$DCP_TMP"/bundle-*.log && dcp_fail "a program logged the admin password"
dcp_kuma_check "$mirror" "$client/ca.crt" >"$DCP_TMP/kuma1.out"
cat "$DCP_TMP/kuma1.out" >&2
dcp_assert_eq "$(cut -d' ' -f1 "$DCP_TMP/kuma1.out" | paste -sd' ')" "UP UP UP" \
  "uptime-kuma monitors of docs/monitoring.md"
code=$(dcp_http GET "http://127.0.0.1:$http_port/metrics" -u "admin:$admin_password")
dcp_assert_eq "$code" 200 "/metrics with the admin password from the secret file"
dcp_pass "each program pinged /start and success; the uptime-kuma monitors are UP"

# --- down keeps the volumes; up again serves the cache with the upstream gone ----------------------------
compose down >"$DCP_TMP/down.log" 2>&1 || dcp_fail "docker-compose down failed: $(tail "$DCP_TMP/down.log")"
dcp_assert_eq "$(compose ps -q | wc -l)" 0 "containers after down"
for volume in "${volumes[@]}"; do
  "$DCP_DOCKER_CLI" volume inspect "$volume" >/dev/null 2>&1 || dcp_fail "volume $volume gone after down"
done
ca_before=$(sha256sum <"$client/ca.crt")

# The backup and restore of docs/backup-and-upgrade.md, as written there (plus --network none:
# this daemon has no bridge network).
"$DCP_DOCKER_CLI" run --rm --network none -v docker-cache-proxy-certs:/certs:ro --entrypoint tar \
  docker-cache-proxy/certificate-manager:local -C /certs -czf - . >"$DCP_TMP/dcp-certs.tar.gz" ||
  dcp_fail "the documented backup of the certs volume failed"
tar -tzf "$DCP_TMP/dcp-certs.tar.gz" | grep -qx './ca.key' || dcp_fail "the certs backup lacks ca.key"
"$DCP_DOCKER_CLI" run --rm -i --network none -v dcp-restore-test:/certs --entrypoint tar \
  docker-cache-proxy/certificate-manager:local -C /certs -xzf - <"$DCP_TMP/dcp-certs.tar.gz" ||
  dcp_fail "the documented restore of the certs volume failed"
restored=$("$DCP_DOCKER_CLI" run --rm --network none -v dcp-restore-test:/certs:ro --entrypoint sh \
  docker-cache-proxy/certificate-manager:local -c 'stat -c %u:%a /certs/ca.key; sha256sum </certs/ca.crt')
dcp_assert_eq "$restored" "10001:600
$ca_before" "owner, mode of ca.key and ca.crt in the restored volume"
"$DCP_DOCKER_CLI" volume rm dcp-restore-test >/dev/null
dcp_pass "the documented backup and restore of the LAN CA work"

dcp_stop_upstream hub
"$DCP_DOCKER_CLI" rmi busybox:v1 >/dev/null || dcp_fail "docker rmi busybox:v1"

compose up -d >"$DCP_TMP/up2.log" 2>&1 || dcp_die "second docker-compose up failed: $(tail -n 30 "$DCP_TMP/up2.log")"
rc=$(wait_setup "second up")
save_logs -2
dcp_assert_eq "$rc" 0 "admin-setup's exit status with the upstream stopped (the cache has the images)"
"$DCP_DOCKER_CLI" pull busybox:v1 >"$DCP_TMP/pull2.out" 2>&1 ||
  dcp_fail "docker pull busybox:v1 with the upstream stopped failed: $(cat "$DCP_TMP/pull2.out")"
out=$("$DCP_DOCKER_CLI" run --rm --network none busybox:v1 2>&1) || true
dcp_assert_eq "$out" hello-from-dcp "output of busybox:v1 pulled with the upstream stopped"
save_logs -2
dcp_assert_ge "$(dcp_log_requests "$DCP_TMP/bundle-proxy-2.log" GET '^/v2/library/busybox/manifests/' 'stale|cache')" 1 \
  "busybox manifests served from the cache after the second up"
"$DCP_DOCKER_CLI" cp "$(container admin-setup):/client-config/ca.crt" "$DCP_TMP/ca-after.crt"
dcp_assert_eq "$(sha256sum <"$DCP_TMP/ca-after.crt")" "$ca_before" "the LAN CA after down and up"
dcp_kuma_check "$mirror" "$client/ca.crt" >"$DCP_TMP/kuma2.out"
cat "$DCP_TMP/kuma2.out" >&2
dcp_assert_eq "$(cut -d' ' -f1 "$DCP_TMP/kuma2.out" | paste -sd' ')" "UP DOWN DOWN" \
  "uptime-kuma monitors with the upstream stopped (the Json Query one notices)"
dcp_pass "down keeps the volumes; the next up serves the cached image with the upstream stopped"

compose down >/dev/null 2>&1 || true
