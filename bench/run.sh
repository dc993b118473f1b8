#!/usr/bin/env bash
# Benchmark of docker-cache-proxy against the reference cache (docker-registry with a `proxy:`
# section) and against nginx serving the same files with `sendfile on` (the limit), all on this
# machine, in one run, over plain HTTP on 127.0.0.1 (the LAN mirror case).
#
#   bench/run.sh            full benchmark: several runs, medians; rewrites docs/benchmarks.md
#                           and docs/benchmarks.png (only between the generated-section markers)
#   bench/run.sh --short    tiny sizes, one run, 1 s wrk: proves the benchmark still works (CI,
#                           ctest -L bench). Asserts nothing about speed; leaves docs/ alone.
#
# Options: --runs N, --wrk-seconds N, --doc FILE (write the report there), --no-doc.
# Environment: DCP_PROXY_BIN (default build/release/proxy/docker-cache-proxy, the
# RelWithDebInfo build of scripts/test.sh), DCP_KEEP_TMP=1 keeps the work directory.
#
# It exits non-zero only on a functional failure: a process that does not start, a download
# whose digest or size is wrong, an HTTP error. Every process it starts goes through lib.sh's
# dcp_spawn and is stopped by PID on any exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DCP_REPO_ROOT=${DCP_REPO_ROOT:-$(cd "$BENCH_DIR/.." && pwd)}
: "${DCP_PROXY_BIN:=$DCP_REPO_ROOT/build/release/proxy/docker-cache-proxy}"
export DCP_REPO_ROOT DCP_PROXY_BIN
DCP_PROXY_LOG_LEVEL=info
DCP_IMAGE_SEED=dcp-bench-1

short=0
runs=""
wrk_seconds=""
doc=""
no_doc=0
while [ $# -gt 0 ]; do
  case "$1" in
    --short) short=1 ;;
    --runs) runs=$2; shift ;;
    --wrk-seconds) wrk_seconds=$2; shift ;;
    --doc) doc=$2; shift ;;
    --no-doc) no_doc=1 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
  esac
  shift
done

MiB=$((1024 * 1024))
if [ "$short" = 1 ]; then
  IMAGE_DATA=$((5 * MiB))    # random bytes in the pulled image, over IMAGE_LAYERS layers
  BLOB_DATA=$((4 * MiB))     # the cached blob whose throughput is measured
  MISS_DATA=$((2 * MiB))     # the blob 20 clients miss at once
  HUGE_DATA=$((16 * MiB))    # the blob served while memory is watched
  SEQ_REPS=2                 # transfers in the sequential throughput figure
  PAR_REPS=2                 # transfers per client in the parallel figure
  ROUNDS=1                   # alternating rounds of each comparison inside a run
  : "${runs:=1}" "${wrk_seconds:=1}"
  no_doc=1
else
  IMAGE_DATA=$((200 * MiB))
  BLOB_DATA=$((100 * MiB))
  MISS_DATA=$((50 * MiB))
  HUGE_DATA=$((1024 * MiB))
  SEQ_REPS=4
  PAR_REPS=2
  ROUNDS=3
  : "${runs:=5}" "${wrk_seconds:=4}"
fi
IMAGE_LAYERS=5
PAR_CLIENTS=4
MISS_CLIENTS=20
WRK_CONNECTIONS=32
[ -n "$doc" ] || doc=$DCP_REPO_ROOT/docs/benchmarks.md

# shellcheck source=../tests/integration/lib.sh
source "$DCP_REPO_ROOT/tests/integration/lib.sh"
# shellcheck disable=SC2154 # NAME_PORT, NAME_URL, NAME_LOG are exported by lib.sh at run time

REFERENCE_BIN="$DCP_TOOLS_DIR/reference_proxy.sh"
export DCP_REFERENCE_LOG_LEVEL=info
CLK_TCK=$(getconf CLK_TCK)
declare -gA BENCH_WRK_CPU=()     # server -> CPU seconds it spent under wrk in this run
declare -gA BENCH_EARLIER_CPU=() # server -> CPU seconds of its instances stopped in this run
BENCH_ROUND=""                   # the round inside the run, for bench_record
WRK_REQUESTS=0               # requests answered in the last bench_wrk

for tool in skopeo wrk nginx curl jq gnuplot python3 ss; do
  command -v "$tool" >/dev/null || dcp_die "bench needs $tool (scripts/install-deps.sh)"
done

# ---------------------------------------------------------------------------------------------
# small helpers

bench_now() { date +%s.%N; }

# bench_elapsed START: seconds since START (from bench_now), 3 decimals.
bench_elapsed() { awk -v a="$1" -v b="$(bench_now)" 'BEGIN { printf "%.3f", b - a }'; }

# bench_record KEY VALUE: one figure of the current run, or of the current round inside it
# (BENCH_ROUND): the report takes every ratio between figures of the same run and round.
bench_record() {
  local run=$BENCH_RUN${BENCH_ROUND:+.$BENCH_ROUND}
  # An empty value means the command that measured it failed in its $(...) subshell.
  [ -n "$2" ] || dcp_die "no value measured for $1 (see the messages above)"
  printf '%s\t%s\t%s\n' "$run" "$1" "$2" >>"$DCP_TMP/results.tsv"
  dcp_log "run $run: $1 = $2"
}

# bench_status_kib PID FIELD: a field of /proc/PID/status in KiB (VmRSS, VmHWM, RssAnon).
bench_status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# bench_cpu_seconds PID: user+sys CPU seconds the process has used so far, threads included.
bench_cpu_seconds() {
  sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$CLK_TCK" '{ printf "%.2f", ($12 + $13) / hz }'
}

# bench_push_blob FILE REPOSITORY: a monolithic blob upload (distribution spec, "pushing a blob
# monolithically") to the upstream; prints the digest.
bench_push_blob() {
  local file=$1 repo=$2 digest location
  digest="sha256:$(dcp_sha256 "$file")"
  location=$(curl -sS -f -X POST -D - -o /dev/null "$up_URL/v2/$repo/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
  [ -n "$location" ] || dcp_die "upstream gave no upload location for $repo"
  case "$location" in /*) location="$up_URL$location" ;; esac
  case "$location" in *\?*) location="$location&digest=$digest" ;; *) location="$location?digest=$digest" ;; esac
  curl -sS -f -X PUT -H 'Content-Type: application/octet-stream' -T "$file" -o /dev/null \
    "$location" || dcp_die "upload of $file to the upstream failed"
  printf '%s\n' "$digest"
}

# bench_random_file FILE BYTES LABEL: reproducible incompressible bytes.
bench_random_file() {
  # head closes the pipe when it has enough: openssl's SIGPIPE is expected.
  (
    set +o pipefail
    openssl enc -aes-128-ctr -nosalt -pass "pass:dcp-bench-$3" -pbkdf2 -in /dev/zero 2>/dev/null |
      head -c "$2" >"$1"
  )
  [ "$(stat -c %s "$1")" = "$2" ] || dcp_die "could not write $2 random bytes to $1"
}

# bench_upstream_quiet: wait until the upstream has no transfer in flight. The reference cache
# stores a blob with a second download in the background after the client has it, so a count
# taken at once would miss it. Quiet means: no new access-log line and nothing queued on any
# upstream socket for a whole second.
bench_upstream_quiet() {
  local lines prev="" quiet=0 deadline=$((SECONDS + 120)) queued
  while [ "$quiet" -lt 10 ]; do
    lines=$(wc -l <"$up_LOG")
    queued=$(ss -Htn state established "( sport = :$up_PORT )" | awk '{ s += $1 + $2 } END { print s + 0 }')
    if [ "$lines" = "$prev" ] && [ "$queued" = 0 ]; then
      quiet=$((quiet + 1))
    else
      quiet=0
    fi
    prev=$lines
    [ "$SECONDS" -lt "$deadline" ] || dcp_die "the upstream never went quiet"
    sleep 0.1
  done
}

# bench_up_mark: the upstream access log's current length, for bench_up_since.
bench_up_mark() { wc -l <"$up_LOG"; }

# bench_up_since MARK bytes|requests: body bytes the upstream sent, or requests it answered,
# since MARK (barrier requests excluded).
bench_up_since() {
  bench_upstream_quiet
  dcp__barrier up
  tail -n +"$(($1 + 1))" "$up_LOG" | awk -v what="$2" '
    match($0, /\] "[A-Z]+ [^ ]+ HTTP\/[0-9.]+" [0-9]+ [0-9-]+/) {
      # f: method, path, protocol", status, body bytes
      split(substr($0, RSTART + 3, RLENGTH - 3), f, " ")
      if (f[2] ~ /^\/v2\/_dcp_barrier\//) next
      n++
      if (f[1] != "HEAD" && f[5] != "-") bytes += f[5]
    }
    END { if (what == "bytes") print bytes + 0; else print n + 0 }'
}

# bench_get_check URL DIGEST [CURL_ARGS...]: one download, which must be exactly the blob.
bench_get_check() {
  local got
  got=$(curl -sS -f --max-time 600 "${@:3}" "$1" | sha256sum | cut -d' ' -f1) ||
    dcp_die "GET $1 failed"
  [ "sha256:$got" = "$2" ] || dcp_die "GET $1: digest sha256:$got, expected $2"
}

# ---------------------------------------------------------------------------------------------
# the peers that live for the whole benchmark: upstream with the images, nginx

bench_prepare() {
  local image_json
  dcp_log "generating images: $IMAGE_DATA bytes in $IMAGE_LAYERS layers"
  python3 "$DCP_TOOLS_DIR/make_images.py" --out "$DCP_TMP/images" --seed "$DCP_IMAGE_SEED" \
    --busybox /bin/busybox --big-size "$IMAGE_DATA" --big-layers "$IMAGE_LAYERS" >/dev/null
  dcp_start_upstream up none
  dcp_load_images up
  image_json=$(jq -c '.images[] | select(.reference == "library/big:v1")' "$DCP_TMP/images.json")
  IMAGE_REF=library/big:v1
  IMAGE_DIGEST=$(jq -r .digest <<<"$image_json")
  IMAGE_TYPE=$(jq -r .media_type <<<"$image_json")
  IMAGE_BYTES=$(jq '.size + .platforms[0].config.size + ([.platforms[0].layers[].size] | add)' \
    <<<"$image_json")

  bench_random_file "$DCP_TMP/blob.bin" "$BLOB_DATA" blob
  bench_random_file "$DCP_TMP/miss.bin" "$MISS_DATA" miss
  bench_random_file "$DCP_TMP/huge.bin" "$HUGE_DATA" huge
  BLOB_DIGEST=$(bench_push_blob "$DCP_TMP/blob.bin" library/big)
  MISS_DIGEST=$(bench_push_blob "$DCP_TMP/miss.bin" library/big)
  HUGE_DIGEST=$(bench_push_blob "$DCP_TMP/huge.bin" library/big)
  BLOB_BYTES=$(stat -c %s "$DCP_TMP/blob.bin")
  MISS_BYTES=$(stat -c %s "$DCP_TMP/miss.bin")
  HUGE_BYTES=$(stat -c %s "$DCP_TMP/huge.bin")
  rm -f "$DCP_TMP/miss.bin" "$DCP_TMP/huge.bin"
  printf 'image_bytes\t%s\nblob_bytes\t%s\nmiss_bytes\t%s\nhuge_bytes\t%s\n' "$IMAGE_BYTES" \
    "$BLOB_BYTES" "$MISS_BYTES" "$HUGE_BYTES" >"$DCP_TMP/sizes.tsv"

  bench_start_nginx
  # The first read of the upstream's files from disk is not what we measure.
  bench_pull direct "$up_URL" warmup
}

bench_start_nginx() {
  local dir="$DCP_TMP/nginx"
  mkdir -p "$dir/www/blobs" "$dir/www/manifests" "$dir/tmp"
  NGINX_PORT=$(dcp_free_port)
  NGINX_TLS_PORT=$(dcp_free_port)
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=127.0.0.1 \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
  cat >"$dir/nginx.conf" <<EOF
user root;
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 60s;
  keepalive_requests 10000000;
  default_type application/octet-stream;
  types {}
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $dir/www;
    location /manifests/ { default_type $IMAGE_TYPE; }
  }
  server {
    listen 127.0.0.1:$NGINX_TLS_PORT ssl;
    ssl_certificate $dir/tls.crt;
    ssl_certificate_key $dir/tls.key;
    root $dir/www;
  }
}
EOF
  dcp_spawn nginx "$DCP_TMP/nginx.log" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
  dcp_wait_http "http://127.0.0.1:$NGINX_PORT/" 30 nginx
  NGINX_URL="http://127.0.0.1:$NGINX_PORT"
  NGINX_TLS_URL="https://127.0.0.1:$NGINX_TLS_PORT"
}

# ---------------------------------------------------------------------------------------------
# the caches, fresh for every run

# bench_start_caches [ROUND]: both caches on empty storage; without ROUND (the first start of a
# run) their idle memory is recorded.
bench_start_caches() {
  local cfg round=${1:-}
  BENCH_CACHE_DIR="$DCP_TMP/run$BENCH_RUN/start${round:-0}"
  mkdir -p "$BENCH_CACHE_DIR"
  cfg=$(dcp_proxy_config dcp "$BENCH_CACHE_DIR/cache" "docker.io=$up_URL,default=true,tag_ttl=5m")
  sed -i -E 's/^http: \{addr: ("[^"]+")\}$/http: {addr: \1, threads: 64}/' "$cfg"
  grep -q 'threads: 64' "$cfg" || dcp_die "could not set http.threads in $cfg"
  # HTTPS beside plain HTTP, with nginx's certificate, for the information rows.
  DCP_TLS_PORT=$(dcp_free_port)
  printf 'tls: {addr: "127.0.0.1:%s", certificate: "%s", key: "%s"}\n' "$DCP_TLS_PORT" \
    "$DCP_TMP/nginx/tls.crt" "$DCP_TMP/nginx/tls.key" >>"$cfg"
  dcp_start_proxy dcp "$cfg"
  cfg=$(dcp_proxy_config ref "$BENCH_CACHE_DIR/ref" "docker.io=$up_URL,default=true")
  DCP_PROXY_BIN=$REFERENCE_BIN dcp_start_proxy ref "$cfg"
  dcp_wait_log "$dcp_LOG" 'listening: .* tls=true' 30 dcp
  [ -z "$round" ] || return 0
  # The reference's process is docker-registry itself (the wrapper execs it).
  sleep 1
  local name pid
  for name in dcp ref; do
    pid=$(dcp_pid "$name")
    bench_record "rss_idle_mib.$name" "$(awk -v k="$(bench_status_kib "$pid" VmRSS)" 'BEGIN { printf "%.1f", k / 1024 }')"
    bench_record "rssanon_idle_mib.$name" "$(awk -v k="$(bench_status_kib "$pid" RssAnon)" 'BEGIN { printf "%.1f", k / 1024 }')"
  done
}

# bench_restart_caches ROUND: both caches again on new empty storage (a cold pull needs one);
# the CPU of the stopped instances still counts for the run.
bench_restart_caches() {
  local name
  for name in dcp ref; do
    BENCH_EARLIER_CPU[$name]=$(awk -v a="${BENCH_EARLIER_CPU[$name]:-0}" \
      -v b="$(bench_cpu_seconds "$(dcp_pid "$name")")" 'BEGIN { printf "%.2f", a + b }')
    dcp_stop "$name"
  done
  bench_start_caches "$1"
}

bench_stop_caches() {
  local name pid cpu
  for name in dcp ref; do
    pid=$(dcp_pid "$name")
    bench_record "rss_peak_mib.$name" "$(awk -v k="$(bench_status_kib "$pid" VmHWM)" 'BEGIN { printf "%.1f", k / 1024 }')"
    cpu=$(awk -v a="${BENCH_EARLIER_CPU[$name]:-0}" -v b="$(bench_cpu_seconds "$pid")" \
      'BEGIN { printf "%.2f", a + b }')
    bench_record "cpu_s.$name" "$cpu"
    bench_record "cpu_same_work_s.$name" "$(awk -v a="$cpu" -v w="${BENCH_WRK_CPU[$name]}" \
      'BEGIN { printf "%.2f", a - w }')"
    dcp_stop "$name"
  done
}

# ---------------------------------------------------------------------------------------------
# measures

# bench_pull NAME BASE_URL LABEL: skopeo copy of the image to a new dir:, timed; checks every
# file against the generated digests. Prints nothing; records pull_s.LABEL.NAME unless LABEL is
# warmup.
bench_pull() {
  local name=$1 base=$2 label=$3 out start secs
  out="$DCP_TMP/pull-$name-$label"
  rm -rf "$out"
  start=$(bench_now)
  skopeo copy --quiet --src-tls-verify=false "docker://${base#http://}/$IMAGE_REF" "dir:$out" ||
    dcp_die "skopeo copy of $IMAGE_REF through $name failed"
  secs=$(bench_elapsed "$start")
  dcp_check_dir "$out" "$IMAGE_REF"
  rm -rf "$out"
  [ "$label" = warmup ] || bench_record "${label}_pull_s.$name" "$secs"
}

# bench_pulls: ROUNDS rounds of cold then warm pulls, direct, ours and the reference one after
# the other, each round on new empty caches: a ratio compares pulls a few seconds apart.
bench_pulls() {
  local mark round
  for ((round = 1; round <= ROUNDS; round++)); do
    [ "$round" = 1 ] || bench_restart_caches "$round"
    BENCH_ROUND=p$round
    mark=$(bench_up_mark)
    bench_pull direct "$up_URL" cold
    bench_record "cold_up_bytes.direct" "$(bench_up_since "$mark" bytes)"
    mark=$(bench_up_mark)
    bench_pull dcp "$dcp_URL" cold
    bench_record "cold_up_bytes.dcp" "$(bench_up_since "$mark" bytes)"
    mark=$(bench_up_mark)
    bench_pull ref "$ref_URL" cold
    bench_record "cold_up_bytes.ref" "$(bench_up_since "$mark" bytes)"

    bench_pull direct "$up_URL" warm
    mark=$(bench_up_mark)
    bench_pull dcp "$dcp_URL" warm
    bench_record "warm_up_requests.dcp" "$(bench_up_since "$mark" requests)"
    mark=$(bench_up_mark)
    bench_pull ref "$ref_URL" warm
    bench_record "warm_up_requests.ref" "$(bench_up_since "$mark" requests)"
  done
  BENCH_ROUND=""
}

# bench_curl_throughput LABEL URL [curl args]: MB/s (10^6 bytes) of SEQ_REPS transfers on one
# connection, then of PAR_CLIENTS clients doing PAR_REPS transfers each at once.
bench_curl_throughput() {
  local label=$1 url=$2 i start secs bad
  shift 2
  local -a args=()
  for ((i = 0; i < SEQ_REPS; i++)); do args+=(-o /dev/null "$url"); done
  start=$(bench_now)
  curl -sS --max-time 600 "$@" -w '%{http_code} %{size_download}\n' "${args[@]}" \
    >"$DCP_TMP/seq.out" || dcp_die "sequential GETs of $url failed"
  secs=$(bench_elapsed "$start")
  bad=$(awk -v s="$BLOB_BYTES" '$1 != 200 || $2 != s' "$DCP_TMP/seq.out")
  [ -z "$bad" ] || dcp_die "GET $url: wrong answer: $bad"
  bench_record "seq_mbs.$label" "$(awk -v b=$((BLOB_BYTES * SEQ_REPS)) -v t="$secs" 'BEGIN { printf "%.0f", b / t / 1e6 }')"

  args=()
  for ((i = 0; i < PAR_REPS; i++)); do args+=(-o /dev/null "$url"); done
  start=$(bench_now)
  for ((i = 0; i < PAR_CLIENTS; i++)); do
    dcp_spawn "par$i" "$DCP_TMP/par$i.out" curl -sS --max-time 600 "$@" \
      -w '%{http_code} %{size_download}\n' "${args[@]}"
  done
  for ((i = 0; i < PAR_CLIENTS; i++)); do
    dcp_wait "par$i" || dcp_die "parallel GETs of $url failed: $(cat "$DCP_TMP/par$i.out")"
  done
  secs=$(bench_elapsed "$start")
  bad=$(cat "$DCP_TMP"/par*.out | awk -v s="$BLOB_BYTES" '$1 != 200 || $2 != s')
  rm -f "$DCP_TMP"/par*.out
  [ -z "$bad" ] || dcp_die "GET $url: wrong answer: $bad"
  bench_record "par_mbs.$label" "$(awk -v b=$((BLOB_BYTES * PAR_REPS * PAR_CLIENTS)) -v t="$secs" 'BEGIN { printf "%.0f", b / t / 1e6 }')"
}

# bench_https_url NAME: the HTTPS URL of a server's copy of the cached blob, or nothing.
bench_https_url() {
  case "$1" in
    nginx) printf '%s/blobs/%s\n' "$NGINX_TLS_URL" "${BLOB_DIGEST#sha256:}" ;;
    dcp) printf 'https://127.0.0.1:%s/v2/library/big/blobs/%s\n' "$DCP_TLS_PORT" "$BLOB_DIGEST" ;;
    # One listener per docker-registry instance: a TLS twin of the reference is not started.
    ref) ;;
  esac
}

bench_throughput() {
  local stored
  # Cache the blob in both caches (checking what they send) and give nginx the proxy's file.
  bench_get_check "$dcp_URL/v2/library/big/blobs/$BLOB_DIGEST" "$BLOB_DIGEST"
  bench_get_check "$ref_URL/v2/library/big/blobs/$BLOB_DIGEST" "$BLOB_DIGEST"
  bench_upstream_quiet
  stored=$(find "$BENCH_CACHE_DIR/cache/blobs" -type f -name "${BLOB_DIGEST#sha256:}*" | head -n1)
  [ -n "$stored" ] || dcp_die "the proxy's copy of $BLOB_DIGEST is not in its store"
  # A hard link: nginx reads the very file (and page cache) the proxy sends.
  ln -f "$stored" "$DCP_TMP/nginx/www/blobs/${BLOB_DIGEST#sha256:}"
  bench_get_check "$NGINX_URL/blobs/${BLOB_DIGEST#sha256:}" "$BLOB_DIGEST"

  local name url round
  for name in nginx dcp ref; do
    url=$(bench_https_url "$name")
    [ -z "$url" ] || bench_get_check "$url" "$BLOB_DIGEST" -k
  done
  for ((round = 1; round <= ROUNDS; round++)); do
    BENCH_ROUND=t$round
    bench_curl_throughput nginx "$NGINX_URL/blobs/${BLOB_DIGEST#sha256:}"
    bench_curl_throughput dcp "$dcp_URL/v2/library/big/blobs/$BLOB_DIGEST"
    bench_curl_throughput ref "$ref_URL/v2/library/big/blobs/$BLOB_DIGEST"
    for name in nginx dcp ref; do
      url=$(bench_https_url "$name")
      if [ -z "$url" ]; then
        bench_record "seq_mbs.https_$name" n/a
        bench_record "par_mbs.https_$name" n/a
        continue
      fi
      bench_curl_throughput "https_$name" "$url" -k
    done
  done
  BENCH_ROUND=""
}

# bench_wrk FIGURE SERVER URL: req/s and p99 latency (ms) of WRK_CONNECTIONS keep-alive
# connections, recorded as FIGURE_rps.SERVER and FIGURE_p99_ms.SERVER.
bench_wrk() {
  local figure=$1 server=$2 url=$3 out="$DCP_TMP/wrk.out"
  wrk -t 2 -c "$WRK_CONNECTIONS" -d "${wrk_seconds}s" --latency -H "Accept: $IMAGE_TYPE" \
    "$url" >"$out" 2>&1 || dcp_die "wrk against $url failed: $(cat "$out")"
  if grep -q 'Non-2xx or 3xx responses' "$out"; then
    dcp_die "wrk against $url got error answers: $(grep 'Non-2xx' "$out")"
  fi
  bench_record "${figure}_rps.$server" "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
  WRK_REQUESTS=$(awk '/ requests in / { print $1 }' "$out")
  [ -n "$WRK_REQUESTS" ] || dcp_die "no request count in the output of wrk: $(cat "$out")"
  bench_record "${figure}_p99_ms.$server" "$(awk '$1 == "99%" {
      v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u)
      if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
      printf "%.2f", v }' "$out")"
  if grep -q 'Socket errors' "$out"; then
    dcp_log "wrk $figure $server: $(grep 'Socket errors' "$out")"
  fi
}

# bench_manifests: ROUNDS rounds of wrk against nginx's static file, ours and the reference,
# by digest and by tag, one after the other: a ratio compares figures seconds apart.
bench_manifests() {
  local repo=${IMAGE_REF%%:*} tag=${IMAGE_REF##*:} name base mark stored round kind
  local -A cpu_before=() requests=()
  stored=$(find "$BENCH_CACHE_DIR/cache/blobs" -type f -name "${IMAGE_DIGEST#sha256:}*" | head -n1)
  [ -n "$stored" ] || dcp_die "the proxy's copy of manifest $IMAGE_DIGEST is not in its store"
  cp "$stored" "$DCP_TMP/nginx/www/manifests/${IMAGE_DIGEST#sha256:}"
  bench_get_check "$NGINX_URL/manifests/${IMAGE_DIGEST#sha256:}" "$IMAGE_DIGEST"
  for name in dcp ref; do
    base=$([ "$name" = dcp ] && echo "$dcp_URL" || echo "$ref_URL")
    bench_get_check "$base/v2/$repo/manifests/$IMAGE_DIGEST" "$IMAGE_DIGEST" -H "Accept: $IMAGE_TYPE"
    bench_get_check "$base/v2/$repo/manifests/$tag" "$IMAGE_DIGEST" -H "Accept: $IMAGE_TYPE"
    BENCH_WRK_CPU[$name]=0
    requests[$name]=0
  done

  for ((round = 1; round <= ROUNDS; round++)); do
    BENCH_ROUND=w$round
    for kind in digest tag; do
      # nginx has no tags: the same static file is the limit for both manifest rows.
      bench_wrk "man_$kind" nginx "$NGINX_URL/manifests/${IMAGE_DIGEST#sha256:}"
      for name in dcp ref; do
        base=$([ "$name" = dcp ] && echo "$dcp_URL" || echo "$ref_URL")
        # The caches answer very different numbers of requests under wrk: their CPU there is
        # counted apart, per request, and left out of the same-work CPU figure.
        cpu_before[$name]=$(bench_cpu_seconds "$(dcp_pid "$name")")
        mark=$(bench_up_mark)
        if [ "$kind" = digest ]; then
          bench_wrk man_digest "$name" "$base/v2/$repo/manifests/$IMAGE_DIGEST"
        else
          bench_wrk man_tag "$name" "$base/v2/$repo/manifests/$tag"
        fi
        BENCH_WRK_CPU[$name]=$(awk -v w="${BENCH_WRK_CPU[$name]}" -v a="${cpu_before[$name]}" \
          -v b="$(bench_cpu_seconds "$(dcp_pid "$name")")" 'BEGIN { printf "%.2f", w + b - a }')
        requests[$name]=$((requests[$name] + WRK_REQUESTS))
        bench_record "man_${kind}_up_requests.$name" "$(bench_up_since "$mark" requests)"
      done
    done
  done
  BENCH_ROUND=""
  for name in dcp ref; do
    bench_record "man_cpu_us.$name" "$(awk -v c="${BENCH_WRK_CPU[$name]}" -v n="${requests[$name]}" \
      'BEGIN { printf "%.1f", c * 1e6 / n }')"
  done
}

# bench_miss NAME BASE_URL: MISS_CLIENTS clients GET the same uncached blob at once. Each
# client hashes what it receives instead of writing it to disk (20 files would measure the disk).
# Any failed client fails the run for ours; the reference's failures are counted and reported
# (a finding about it, not about this script).
bench_miss() {
  local name=$1 base=$2 mark start secs i failed=0 why=""
  mark=$(bench_up_mark)
  start=$(bench_now)
  for ((i = 0; i < MISS_CLIENTS; i++)); do
    dcp_spawn "miss$i" "$DCP_TMP/miss$i.log" bash -c \
      'set -o pipefail; curl -sS -f --max-time 600 "$1" | sha256sum' _ \
      "$base/v2/library/big/blobs/$MISS_DIGEST"
  done
  for ((i = 0; i < MISS_CLIENTS; i++)); do
    if ! dcp_wait "miss$i"; then
      failed=$((failed + 1))
      why="client $i: $(head -n1 "$DCP_TMP/miss$i.log")"
    elif [ "sha256:$(tail -n1 "$DCP_TMP/miss$i.log" | cut -d' ' -f1)" != "$MISS_DIGEST" ]; then
      failed=$((failed + 1))
      why="client $i got bytes with the wrong digest"
    fi
  done
  secs=$(bench_elapsed "$start")
  rm -f "$DCP_TMP"/miss*.log
  if [ "$failed" -gt 0 ]; then
    local log
    log="${name}_LOG"
    log=${!log}
    why="$failed of $MISS_CLIENTS concurrent miss clients failed ($why); its log says: $(
      grep -iE 'error|warn|status=5' "$log" | tail -n 3 | cut -c1-300 || true)"
    [ "$name" = dcp ] && dcp_die "$name: $why"
    dcp_log "$name: $why"
  fi
  bench_record "miss_failed.$name" "$failed"
  bench_record "miss_s.$name" "$secs"
  bench_record "miss_up_bytes.$name" "$(bench_up_since "$mark" bytes)"
}

# bench_huge NAME BASE_URL PHASE: GET the huge blob while sampling the server's RSS; records
# how far RSS rose above its level just before.
bench_huge() {
  local name=$1 base=$2 phase=$3 pid before max rss
  pid=$(dcp_pid "$name")
  before=$(bench_status_kib "$pid" VmRSS)
  max=$before
  dcp_spawn huge "$DCP_TMP/huge.log" bash -c \
    'curl -sS -f --max-time 900 "$1" | sha256sum' _ "$base/v2/library/big/blobs/$HUGE_DIGEST"
  while dcp_running huge; do
    rss=$(bench_status_kib "$pid" VmRSS)
    [ "$rss" -gt "$max" ] && max=$rss
    sleep 0.05
  done
  dcp_wait huge || dcp_die "$name: GET of the huge blob failed: $(cat "$DCP_TMP/huge.log")"
  [ "sha256:$(tail -n1 "$DCP_TMP/huge.log" | cut -d' ' -f1)" = "$HUGE_DIGEST" ] ||
    dcp_die "$name: the huge blob arrived with the wrong digest"
  : >"$DCP_TMP/huge.log"
  bench_record "huge_${phase}_rss_rise_mib.$name" "$(awk -v a="$before" -v b="$max" 'BEGIN { printf "%.1f", (b - a) / 1024 }')"
}

bench_one_run() {
  BENCH_RUN=$1
  dcp_log "===== run $BENCH_RUN of $runs ====="
  BENCH_EARLIER_CPU=()
  rm -rf "$DCP_TMP"/run*
  bench_start_caches
  bench_pulls
  bench_throughput
  bench_manifests
  bench_miss dcp "$dcp_URL"
  bench_miss ref "$ref_URL"
  bench_huge dcp "$dcp_URL" cold
  bench_upstream_quiet
  bench_huge dcp "$dcp_URL" cached
  bench_huge ref "$ref_URL" cold
  bench_upstream_quiet
  bench_huge ref "$ref_URL" cached
  bench_stop_caches
}

# ---------------------------------------------------------------------------------------------

bench_meta() {
  local rev dirty
  rev=$(git -C "$DCP_REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$DCP_REPO_ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+local changes" || true)
  {
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'mode\t%s\n' "$([ "$short" = 1 ] && echo short || echo full)"
    printf 'runs\t%s\n' "$runs"
    printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    printf 'cores\t%s\n' "$(nproc)"
    printf 'memory\t%s\n' "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'load_before\t%s\n' "$BENCH_LOAD_BEFORE"
    printf 'load_after\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'os\t%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
    printf 'proxy\t%s\n' "docker-cache-proxy $rev$dirty, $(basename "$(dirname "$(dirname "$DCP_PROXY_BIN")")") build"
    printf 'reference\t%s\n' "$(docker-registry --version 2>&1 | head -n1)"
    printf 'nginx\t%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    printf 'skopeo\t%s\n' "$(skopeo --version)"
    printf 'curl\t%s\n' "$(curl --version | head -n1 | cut -d' ' -f1-2)"
    printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
    printf 'wrk_seconds\t%s\n' "$wrk_seconds"
    printf 'wrk_connections\t%s\n' "$WRK_CONNECTIONS"
    printf 'rounds\t%s\n' "$ROUNDS"
    printf 'seq_reps\t%s\n' "$SEQ_REPS"
    printf 'par_clients\t%s\n' "$PAR_CLIENTS"
    printf 'par_reps\t%s\n' "$PAR_REPS"
    printf 'miss_clients\t%s\n' "$MISS_CLIENTS"
    printf 'image_layers\t%s\n' "$IMAGE_LAYERS"
  } >"$DCP_TMP/meta.tsv"
  cat "$DCP_TMP/sizes.tsv" >>"$DCP_TMP/meta.tsv"
}

dcp_setup
: >"$DCP_TMP/results.tsv"
bench_started=$SECONDS
BENCH_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_prepare
for ((run = 1; run <= runs; run++)); do
  bench_one_run "$run"
done
bench_meta

report_args=(--results "$DCP_TMP/results.tsv" --meta "$DCP_TMP/meta.tsv")
if [ "$no_doc" = 1 ]; then
  report_args+=(--chart "$DCP_TMP/benchmarks.png")
else
  report_args+=(--doc "$doc" --chart "$(dirname "$doc")/benchmarks.png")
fi
python3 "$BENCH_DIR/report.py" "${report_args[@]}"
dcp_log "benchmark done in $((SECONDS - bench_started)) s"
