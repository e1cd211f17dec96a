#!/usr/bin/env bash
# Block-log loss under a fixed blocked-query rate: egressd with its default block log, pinned to
# CPU 0, answers `dnsperf -Q RATE -l SECONDS` (pinned to CPU 1) of names from the benchmark's
# blocked list (../shared/bench/gen-data.mjs, W1); the upstream is a loopback dnsmasq (never
# used: every name is blocked). Prints, per round: the machine load, what dnsperf got answered,
# and what the block log wrote and dropped (from /metrics, then rows in the file after a graceful
# stop). Loopback only; each round is bounded by dnsperf -l SECONDS plus at most ~40 s of start,
# drain and stop. Stops only the processes it started.
#
#   bench/blocklog-load.sh [SECONDS=60] [ROUNDS=1]   env: RATE=10000 DIST=dist PORT=5321 UPSTREAM=127.0.0.3:5320
#                                                        STORE="store settings as a YAML flow map, e.g. { threadNice: 19 }"
#                                                        STALL=AT:FOR  a busy loop on CPU 0 from AT s into the run, for FOR s
#                                                                      (a transient stall of the writer: what it costs after it ends)
#                                                        SHARED=../shared/bench KEEP=dir
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
SECS=${1:-60}
ROUNDS=${2:-1}
RATE=${RATE:-10000}
PORT=${PORT:-5321}
UPSTREAM=${UPSTREAM:-127.0.0.3:5320}
UP_HOST=${UPSTREAM%:*} UP_PORT=${UPSTREAM##*:}
DATA=$HERE/data
DIST=${DIST:-$ROOT/dist}   # another build to compare (e.g. of the previous commit)

die() { echo "blocklog-load: $*" >&2; exit 1; }
for b in dnsperf dig dnsmasq taskset ss node curl sha256sum; do command -v $b >/dev/null || die "$b not installed"; done
[ -f "$DIST/cli.js" ] || die "build first: npx tsc -p tsconfig.json"
[ "$SECS" -ge 1 ] && [ "$SECS" -le 900 ] || die "SECONDS must be 1..900"
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || die "ROUNDS must be 1..20"
for p in "$PORT" "$UP_PORT"; do ss -Hlun "sport = :$p" | grep -q . && die "udp port $p is in use"; done
[ -s "$DATA/w1-blocked.txt" ] || node "$SHARED/gen-data.mjs" "$DATA" >&2

RUN=$(mktemp -d /tmp/egressd-blocklog-load.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp -r "$RUN" "$KEEP"; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_dns() { # wait_dns HOST PORT NAME
  for _ in $(seq 100); do dig @"$1" -p "$2" "$3" +tries=1 +time=1 >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "nothing answers on $1:$2"
}

# The upstream: answers everything with 192.0.2.1 (CPU 1).
cat >"$RUN/upstream.conf" <<CONF
port=$UP_PORT
listen-address=$UP_HOST
bind-interfaces
no-resolv
no-hosts
no-poll
address=/#/192.0.2.1
local=/#/
cache-size=0
CONF
taskset -c 1 dnsmasq -k -C "$RUN/upstream.conf" --pid-file= >"$RUN/upstream.log" 2>&1 & PIDS+=($!)
wait_dns "$UP_HOST" "$UP_PORT" probe.example

# A metrics token for /metrics.
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
SHA=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
API_PORT=$((PORT + 1))

# cpu_busy CORE: "busy idle" jiffies of one core (steal counted as not busy)
cpu_jiffies() { awk -v c="cpu$1" '$1==c {print $2+$3+$4+$7+$8, $5+$6+$9}' /proc/stat; }
# threads PID: "tid nice cpu_ns wait_ns" per thread of PID
threads() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(awk '{print $19}' "$t/stat" 2>/dev/null) $(cat "$t/schedstat" 2>/dev/null)"; done; }
metric() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT/metrics" | awk -v m="$1" '$1==m {print $2}'; }

for r in $(seq "$ROUNDS"); do
  D=$RUN/r$r
  mkdir -p "$D"
  cat >"$D/egressd.yaml" <<YAML
dns: { listen: ["127.0.0.1:$PORT"] }
upstreams: ["udp://$UPSTREAM"]
api: { listen: "127.0.0.1:$API_PORT", tokens: [{ name: bench, role: metrics, sha256: "$SHA" }] }
blocklists:
  dir: $ROOT/blocklists
  sources: [{ name: bench, path: "$DATA/blocklist.txt", format: plain }]
log: { level: warn }
dataDir: $D/data
YAML
  [ -n "${STORE:-}" ] && echo "store: $STORE" >>"$D/egressd.yaml"
  taskset -c 0 node "$DIST/cli.js" start --config "$D/egressd.yaml" >"$D/egressd.log" 2>&1 & PID=$!; PIDS+=($PID)
  wait_dns 127.0.0.1 "$PORT" probe.example
  for _ in $(seq 50); do [ -n "$(metric egressd_blocklog_queue_depth)" ] && break; sleep 0.1; done
  LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
  read -r B0 I0 < <(cpu_jiffies 0); read -r B1 I1 < <(cpu_jiffies 1)
  T0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  threads "$PID" >"$D/threads0"
  W0=$(metric egressd_blocklog_writer_busy_seconds_total); WW0=$(metric egressd_blocklog_writer_cpu_wait_seconds_total)
  # the largest WAL seen during the run (sampled every second)
  ( max=0; while kill -0 "$PID" 2>/dev/null; do s=$(stat -c %s "$D/data/egressd.sqlite-wal" 2>/dev/null || echo 0); [ "$s" -gt "$max" ] && max=$s && echo "$max" >"$D/walmax"; sleep 1; done ) & WALPID=$!
  if [ -n "${STALL:-}" ]; then
    ( sleep "${STALL%:*}"; exec timeout "${STALL#*:}" taskset -c 0 sh -c 'while :; do :; done' ) & PIDS+=($!)
  fi
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$DATA/w1-blocked.txt" -l "$SECS" -Q "$RATE" -c 8 -t 2 >"$D/dnsperf.txt" 2>&1 || true
  T1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  threads "$PID" >"$D/threads1"
  W1=$(metric egressd_blocklog_writer_busy_seconds_total); WW1=$(metric egressd_blocklog_writer_cpu_wait_seconds_total)
  read -r B0b I0b < <(cpu_jiffies 0); read -r B1b I1b < <(cpu_jiffies 1)
  LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
  SENT=$(awk '/Queries sent:/ {print $3}' "$D/dnsperf.txt")
  DONE=$(awk '/Queries completed:/ {print $3}' "$D/dnsperf.txt")
  NX=$(grep -o "NXDOMAIN [0-9]*" "$D/dnsperf.txt" | head -1 | cut -d" " -f2)
  QPS=$(awk '/Queries per second:/ {print $4}' "$D/dnsperf.txt")
  LAT=$(awk '/Average Latency/ {printf "%.2f", $4 * 1000}' "$D/dnsperf.txt")
  DEPTH_END=$(metric egressd_blocklog_queue_depth)
  DROPPED_RUN=$(metric egressd_blocklog_dropped_total)
  # Drain (at most 30 s), then stop gracefully: the writer writes what is left.
  for _ in $(seq 300); do [ "$(metric egressd_blocklog_queue_depth)" = 0 ] && break; sleep 0.1; done
  DROPPED=$(metric egressd_blocklog_dropped_total)
  FAILS=$(metric egressd_blocklog_write_failures_total)
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
  kill "$WALPID" 2>/dev/null || true; wait "$WALPID" 2>/dev/null || true
  WRITTEN=$(cd "$ROOT" && node -e "const D = require('better-sqlite3'); console.log(new D(process.argv[1], { readonly: true }).prepare('SELECT count(*) AS n FROM events').get().n)" "$D/data/egressd.sqlite" 2>/dev/null || echo "?")
  HZ=$(getconf CLK_TCK)
  pct() { awk -v b="$1" -v i="$2" 'BEGIN { if (b + i > 0) printf "%.0f", 100 * b / (b + i); else print "?" }'; }
  echo "round $r: load before ${LOAD0} after ${LOAD1}; core0 busy $(pct $((B0b - B0)) $((I0b - I0)))% core1 busy $(pct $((B1b - B1)) $((I1b - I1)))%; egressd cpu $(awk -v t=$((T1 - T0)) -v hz="$HZ" -v s="$SECS" 'BEGIN{printf "%.0f", 100 * t / hz / s}')%"
  echo "round $r: dnsperf -Q $RATE -l $SECS: sent ${SENT:-?} completed ${DONE:-?} NXDOMAIN ${NX:-?} qps ${QPS:-?} avg latency ${LAT:-?} ms"
  # per thread over the run: % of a core on a CPU, and % of the run spent runnable but waiting for a CPU
  THREADS=$(join <(sort "$D/threads0") <(sort "$D/threads1") | awk -v s="$SECS" -v main="$PID" '{ cpu = ($7 - $3) / s / 1e7; wait = ($8 - $4) / s / 1e7; if (cpu >= 1) printf "%s%s(nice %s) cpu %.0f%% wait %.0f%%; ", ($1 == main ? "main " : "tid "), ($1 == main ? "" : $1), $2, cpu, wait }')
  echo "round $r: threads: $THREADS"
  echo "round $r: writer in writes: busy $(awk -v a="${W0:-0}" -v b="${W1:-0}" 'BEGIN{printf "%.1f", b - a}') s, of which waiting for a CPU $(awk -v a="${WW0:-0}" -v b="${WW1:-0}" 'BEGIN{printf "%.1f", b - a}') s; largest WAL $(( $(cat "$D/walmax" 2>/dev/null || echo 0) / 1048576 )) MiB"
  echo "round $r: block log: written ${WRITTEN} dropped ${DROPPED:-?} (dropped when dnsperf stopped ${DROPPED_RUN:-?}, queue depth then ${DEPTH_END:-?}) write failures ${FAILS:-?}"
done
