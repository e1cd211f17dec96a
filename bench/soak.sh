#!/usr/bin/env bash
# Soak benchmark: egressd under a steady, fixed-rate query load for a long time (default 10
# minutes), with the SQLite block log on, sampled every 15 s into a CSV; at the end a chart, the
# pass criteria with PASS/FAIL each, and exit 1 if any failed. See docs/soak.md.
#
#   npx tsc -p tsconfig.json && bench/soak.sh
#
# env (defaults):
#   SOAK_SECONDS=600      load duration            SOAK_INTERVAL=15     seconds between samples
#   SOAK_QPS=10000        dnsperf -Q rate          SOAK_MIX=40:40:20    blocked:cached:missed weights
#   SOAK_BLOCKLIST=100000 blocklist entries        SOAK_CACHED=1000     allowed names kept cached
#   SOAK_BASELINE=60      RSS growth is measured from the first sample at or after this (s);
#                         runs shorter than twice it use half the run
#   SOAK_OUT=docs/soak    where soak.csv, soak.svg and summary.txt go
#   SOAK_PORT=5309 (DNS, 127.0.0.1)  SOAK_API_PORT=5310 (API, 127.0.0.1)  SOAK_UPSTREAM=127.0.0.2:5300
#   SOAK_DNSPERF_OPTS="-c 4 -q 500 -t 2"   SOAK_DAEMON_CPU=0  SOAK_CLIENT_CPU=1 (taskset CPU lists)
#   SOAK_MAX_GROWTH=10 (%)  SOAK_MAX_LAG=50 (ms)  SOAK_MAX_LOST=0.1 (%)  SOAK_MIN_RATE=95 (% of SOAK_QPS)
#   SOAK_KEEP=DIR         copy the run's temp dir (configs, logs, dnsperf output) there at the end
#   SHARED=../shared/bench (for conf/upstream-dnsmasq.conf)
#
# The daemon runs from dist/ pinned to SOAK_DAEMON_CPU; dnsperf, the query generator, the upstream
# (dnsmasq, the shared bench's config) and the sampler share SOAK_CLIENT_CPU. Loopback only; the
# load is bounded by dnsperf -l and by the generator's line count; the script stops only the
# processes it started (by PID) and removes its temp dir.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
SECS=${SOAK_SECONDS:-600}
INTERVAL=${SOAK_INTERVAL:-15}
QPS=${SOAK_QPS:-10000}
MIX=${SOAK_MIX:-40:40:20}
ENTRIES=${SOAK_BLOCKLIST:-100000}
CACHED=${SOAK_CACHED:-1000}
BASELINE=${SOAK_BASELINE:-60}
OUT=${SOAK_OUT:-$ROOT/docs/soak}
PORT=${SOAK_PORT:-5309}
API_PORT=${SOAK_API_PORT:-5310}
UPSTREAM=${SOAK_UPSTREAM:-127.0.0.2:5300}
DNSPERF_OPTS=${SOAK_DNSPERF_OPTS:--c 4 -q 500 -t 2}
DAEMON_CPU=${SOAK_DAEMON_CPU:-0}
CLIENT_CPU=${SOAK_CLIENT_CPU:-1}

die() { echo "soak: $*" >&2; exit 2; }
for v in SECS INTERVAL QPS ENTRIES CACHED BASELINE PORT API_PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
for v in DAEMON_CPU CLIENT_CPU; do
  [[ ${!v} =~ ^[0-9]+([,-][0-9]+)*$ ]] || die "SOAK_$v must be a taskset CPU list (0, 0-1, 0,1), got '${!v}'"
done
[ "$SECS" -ge 10 ] && [ "$SECS" -le 86400 ] || die "SOAK_SECONDS: 10..86400"
[ "$INTERVAL" -ge 1 ] && [ "$INTERVAL" -le "$SECS" ] || die "SOAK_INTERVAL: 1..SOAK_SECONDS"
[ "$QPS" -ge 1 ] || die "SOAK_QPS must be at least 1"
[[ $MIX =~ ^[0-9]+:[0-9]+:[0-9]+$ ]] || die "SOAK_MIX must be B:C:M, e.g. 40:40:20"
[[ $UPSTREAM =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+$ ]] || die "SOAK_UPSTREAM must be a loopback IPv4 address:port"
UP_ADDR=${UPSTREAM%:*} UP_PORT=${UPSTREAM##*:}
if [ "$SECS" -lt $((2 * BASELINE)) ]; then
  BASELINE=$((SECS / 2))
  echo "soak: the run is shorter than twice SOAK_BASELINE: RSS growth is measured from t=${BASELINE} s" >&2
fi
case $OUT in /*) ;; *) OUT=$PWD/$OUT;; esac

for b in dnsperf dnsmasq dig taskset ss node curl; do command -v $b >/dev/null || die "$b not installed (apt-get install dnsperf dnsmasq bind9-dnsutils curl)"; done
[ -f "$SHARED/conf/upstream-dnsmasq.conf" ] || die "no $SHARED/conf/upstream-dnsmasq.conf (set SHARED=)"
[ -f "$ROOT/dist/cli.js" ] || die "build first: npx tsc -p tsconfig.json"
if [ -n "$(find "$ROOT/src" -name '*.ts' -newer "$ROOT/dist/cli.js" -print -quit)" ]; then
  echo "soak: warning: src/ has files newer than dist/cli.js: rebuild (npx tsc -p tsconfig.json) to soak the current code" >&2
fi
ss -Hlun "sport = :$PORT" | grep -q . && die "udp port $PORT is in use (SOAK_PORT=)"
ss -Hltn "sport = :$API_PORT" | grep -q . && die "tcp port $API_PORT is in use (SOAK_API_PORT=)"
ss -Hlun "sport = :$UP_PORT" | awk -v a="$UP_ADDR" '{split($4, x, ":"); if (x[1] == a || x[1] == "0.0.0.0" || x[1] == "*" || $4 ~ /^\[::\]/) f = 1} END{exit !f}' &&
  die "$UPSTREAM is in use (another benchmark's upstream?): SOAK_UPSTREAM=127.0.0.3:5300 uses another address"

RUN=$(mktemp -d /tmp/egressd-soak.XXXXXX)
PIDS=()
stop_pid() { # TERM, then KILL after 15 s
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
forget() { # forget PID: a process that has ended leaves PIDS (its number may be reused)
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  if [ -n "${SOAK_KEEP:-}" ]; then mkdir -p "$SOAK_KEEP" && cp -r "$RUN"/. "$SOAK_KEEP"/ && echo "soak: run files kept in $SOAK_KEEP" >&2; fi
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status_of() { # status_of NAME -> NOERROR / NXDOMAIN / ... / timeout
  dig @127.0.0.1 -p "$PORT" "$1" A +tries=1 +time=2 2>/dev/null | grep -o 'status: [A-Z]*' | cut -d' ' -f2 || echo timeout
}
wait_dns() { # wait_dns ADDR PORT SECONDS PID
  for _ in $(seq $(($3 * 5))); do
    dig @"$1" -p "$2" probe.soak.test +tries=1 +time=1 >/dev/null 2>&1 && return 0
    kill -0 "$4" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# Data: the blocklist, the cached names (the query mix itself is streamed into dnsperf)
node "$HERE/soak-data.mjs" "$RUN" "$ENTRIES" "$CACHED"

# The upstream: the shared bench's dnsmasq (every A query: 192.0.2.1, TTL 3600), on UPSTREAM
sed -e "s/^port=.*/port=$UP_PORT/" -e "s/^listen-address=.*/listen-address=$UP_ADDR/" "$SHARED/conf/upstream-dnsmasq.conf" >"$RUN/upstream.conf"
taskset -c "$CLIENT_CPU" dnsmasq -k -C "$RUN/upstream.conf" --pid-file= >"$RUN/upstream.log" 2>&1 & PIDS+=($!); UPSTREAM_PID=$!
wait_dns "$UP_ADDR" "$UP_PORT" 10 "$UPSTREAM_PID" || die "the upstream does not answer on $UPSTREAM: $(tail -c 400 "$RUN/upstream.log")"

# A metrics token (only /metrics), its hash in the config
TOKEN_OUT=$(node "$ROOT/dist/cli.js" token create --role metrics --name soak)
TOKEN=$(printf '%s\n' "$TOKEN_OUT" | sed -n 's/^token: //p')
SHA=$(printf '%s\n' "$TOKEN_OUT" | grep -o '[0-9a-f]\{64\}' | tail -1)
[ -n "$TOKEN" ] && [ -n "$SHA" ] || die "egressd token create printed no token: $TOKEN_OUT"

# The daemon's config: as bench/lib.sh's, plus the block log (store.logQueries: blocked, the
# default) in the temp data dir and the API with the metrics token.
cat >"$RUN/egressd.yaml" <<YAML
dns: { listen: ["127.0.0.1:$PORT"] }
upstreams: ["udp://$UPSTREAM"]
cache: { maxEntries: 100000 }
api: { listen: "127.0.0.1:$API_PORT", tokens: [{ name: soak, role: metrics, sha256: "$SHA" }] }
blocklists:
  dir: $ROOT/blocklists
  sources: [{ name: soak, path: "$RUN/blocklist.txt", format: plain }]
log: { level: warn }
dataDir: $RUN/data
store: { logQueries: blocked }
YAML
mkdir -p "$RUN/data"
taskset -c "$DAEMON_CPU" node "$ROOT/dist/cli.js" start --config "$RUN/egressd.yaml" >"$RUN/egressd.log" 2>&1 & PIDS+=($!); DAEMON=$!
wait_dns 127.0.0.1 "$PORT" 60 "$DAEMON" || die "egressd does not answer on 127.0.0.1:$PORT; its log: $(tail -c 800 "$RUN/egressd.log")"
METRICS=http://127.0.0.1:$API_PORT/metrics
curl -sf -H "Authorization: Bearer $TOKEN" "$METRICS" -o /dev/null || die "GET $METRICS failed; egressd's log: $(tail -c 800 "$RUN/egressd.log")"

# Warm-up: every cached name once (forwarded now, answered from the cache during the run)
taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$RUN/cached.txt" -n 1 -c 1 -q 50 -t 2 >"$RUN/warmup.out" 2>&1 ||
  die "warm-up failed: $(tail -5 "$RUN/warmup.out")"

HEADER="egressd soak: ${SECS} s at ${QPS} qps (dnsperf -Q, $DNSPERF_OPTS), mix blocked:cached:missed $MIX, blocklist $ENTRIES entries, $CACHED cached names, block log on, sampled every ${INTERVAL} s
$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, node $(node --version), egressd $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' +uncommitted src changes'); daemon on CPU $DAEMON_CPU, load/upstream/sampler on CPU $CLIENT_CPU"
printf '%s\n' "$HEADER" >&2

# The run: the sampler and the fixed-rate load start together
SOAK_TOKEN=$TOKEN taskset -c "$CLIENT_CPU" node "$HERE/soak-sample.mjs" "$METRICS" "$DAEMON" "$INTERVAL" "$SECS" \
  "$RUN/soak.csv" "$RUN/data/egressd.sqlite" "$ROOT" "$PORT" & PIDS+=($!); SAMPLER=$!
MAX_LINES=$((QPS * SECS * 11 / 10 + 10000))
# generator -> FIFO -> dnsperf, both in the background so that a signal reaches the traps at once
mkfifo "$RUN/queries.fifo"
taskset -c "$CLIENT_CPU" node "$HERE/soak-queries.mjs" "$MIX" "$ENTRIES" "$CACHED" "$MAX_LINES" >"$RUN/queries.fifo" & PIDS+=($!); GEN=$!
# shellcheck disable=SC2086
taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -l "$SECS" -Q "$QPS" $DNSPERF_OPTS <"$RUN/queries.fifo" >"$RUN/dnsperf.out" 2>&1 & PIDS+=($!); PERF=$!
wait "$PERF" || echo "soak: dnsperf exited with an error: $(tail -3 "$RUN/dnsperf.out")" >&2
forget "$PERF"
wait "$GEN" || true # it ends when dnsperf closes the FIFO
forget "$GEN"
wait "$SAMPLER" || echo "soak: the sampler failed" >&2
forget "$SAMPLER"

# Still alive and answering?
ALIVE=1 DETAIL=
if kill -0 "$DAEMON" 2>/dev/null; then DETAIL="pid alive"; else ALIVE=0 DETAIL="process gone"; fi
s=$(status_of blk-000001.soak.test); DETAIL="$DETAIL, blocked $s"; [ "$s" = NXDOMAIN ] || ALIVE=0
s=$(status_of c0001.cached.soak.test); DETAIL="$DETAIL, cached $s"; [ "$s" = NOERROR ] || ALIVE=0
s=$(status_of "final-$RANDOM$RANDOM.miss.soak.test"); DETAIL="$DETAIL, new name $s"; [ "$s" = NOERROR ] || ALIVE=0
s=$(curl -s --max-time 5 "http://127.0.0.1:$API_PORT/readyz" || echo 'no answer'); DETAIL="$DETAIL, /readyz $s"
case $s in *'"ready"'*) ;; *) ALIVE=0;; esac

RC=0
SOAK_TOKEN=$TOKEN SOAK_QPS=$QPS SOAK_BASELINE=$BASELINE SOAK_ALIVE=$ALIVE SOAK_ALIVE_DETAIL=$DETAIL SOAK_HEADER=$HEADER \
  node "$HERE/soak-report.mjs" "$RUN/soak.csv" "$RUN/dnsperf.out" "$METRICS" "$RUN/summary.txt" "$RUN/data/egressd.sqlite" "$ROOT" "$PORT" || RC=$?
node "$HERE/soak-chart.mjs" "$RUN/soak.csv" "$RUN/soak.svg" \
  "egressd soak: ${SECS} s at ${QPS} qps, block log on ($(date -u +%Y-%m-%d))" "${SOAK_MAX_LAG:-50}"
mkdir -p "$OUT"
cp "$RUN/soak.csv" "$RUN/soak.svg" "$RUN/summary.txt" "$OUT"/
echo "soak: wrote $OUT/soak.csv, $OUT/soak.svg, $OUT/summary.txt" >&2

stop_pid "$DAEMON"; forget "$DAEMON"
[ -s "$RUN/egressd.log" ] && { echo "soak: egressd's log (warnings and errors):" >&2; tail -20 "$RUN/egressd.log" >&2; }
exit "$RC"
