#!/usr/bin/env bash
# egressd against the plain answerer (bench/plain-answerer.mjs) under the same noise: both run at
# once on CPU 0 and are loaded at the same time by two dnsperf processes on CPU 1 (each 4 clients,
# 50 outstanding, 10 s). Prints CPU microseconds per query for each, per round, and egressd's over
# the plain answerer's: what egressd's DNS work (cache with TTLs and eviction, policy per client
# group, counters, EDNS) costs over the least work that gives the same answers. Loopback only;
# every load is bounded by dnsperf -l. Both start afresh every round. With PEER=echo, the peer is
# the bare Node echo server (../shared/bench/node/echo.mjs, run.sh's reference) instead: echo's CPU
# per query over egressd's is the benchmark's ratio without its noise (echo does not block, so
# in W1 its answers are not NXDOMAIN; only the CPU counts here).
#
#   bench/plain-ab.sh [W1|W2] [ROUNDS=4]      env: PEER=plain|echo   (build first: npm run build)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
W=${1:-W1}; ROUNDS=${2:-4}
DATA=$HERE/data
. "$HERE/lib.sh"
die() { echo "plain-ab: $*" >&2; exit 1; }
for b in dnsperf dnsmasq dig taskset ss node; do command -v $b >/dev/null || die "$b not installed"; done
[ -f "$ROOT/dist/cli.js" ] || die "build first: npm run build"
for p in 5300 5307 5309; do ss -Hlun "sport = :$p" | grep -q . && die "port $p is in use"; done
[ -s "$DATA/w1-blocked.txt" ] || node "$SHARED/gen-data.mjs" "$DATA" >&2
case $W in W1) file=$DATA/w1-blocked.txt;; W2) file=$DATA/w2-cached.txt;; *) die "workload: W1 or W2";; esac
PEER=${PEER:-plain}
case $PEER in
  plain) peer_cmd=(node "$HERE/plain-answerer.mjs" 5307 "$DATA/blocklist.txt");;
  echo) peer_cmd=(node "$SHARED/node/echo.mjs" 5307);;
  *) die "PEER: plain or echo";;
esac

RUN=$(mktemp -d /tmp/egressd-plain-ab.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
up() { # up PORT: waits until something answers there
  for _ in $(seq 100); do dig @127.0.0.1 -p "$1" probe.allowed.bench.test +tries=1 +time=1 >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "nothing answers on 127.0.0.1:$1"
}
cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; } # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)

taskset -c 1 dnsmasq -k -C "$SHARED/conf/upstream-dnsmasq.conf" --pid-file= >"$RUN/upstream.log" 2>&1 & PIDS+=($!)
ratios=()
echo "$W, CPU microseconds per query, egressd (store.logQueries: none) and $PEER, both started afresh every round:"
for r in $(seq "$ROUNDS"); do
  bench_config "$RUN/egressd.yaml" 5309 "$RUN/egressd-$r" "store: { logQueries: none }"
  taskset -c 0 node "$ROOT/dist/cli.js" start --config "$RUN/egressd.yaml" >"$RUN/egressd.log" 2>&1 & E=$!; PIDS+=($E)
  taskset -c 0 "${peer_cmd[@]}" >"$RUN/peer.log" 2>&1 & P=$!; PIDS+=($P)
  up 5309; up 5307
  for port in 5309 5307; do # W2's names into both caches, then a short warm-up of the workload
    taskset -c 1 dnsperf -s 127.0.0.1 -p $port -d "$DATA/w2-cached.txt" -n 1 >/dev/null 2>&1
    taskset -c 1 dnsperf -s 127.0.0.1 -p $port -d "$file" -l 2 -c 4 -q 50 >/dev/null 2>&1
  done
  e0=$(cpu $E); p0=$(cpu $P)
  taskset -c 1 dnsperf -s 127.0.0.1 -p 5309 -d "$file" -l 10 -c 4 -q 50 >"$RUN/e.out" 2>&1 & D=$!
  taskset -c 1 dnsperf -s 127.0.0.1 -p 5307 -d "$file" -l 10 -c 4 -q 50 >"$RUN/p.out" 2>&1
  wait $D
  e1=$(cpu $E); p1=$(cpu $P)
  qe=$(awk '/Queries completed/{print $3}' "$RUN/e.out"); qp=$(awk '/Queries completed/{print $3}' "$RUN/p.out")
  line=$(awk -v p="$PEER" -v r="$r" -v a=$((e1 - e0)) -v b=$((p1 - p0)) -v qe="$qe" -v qp="$qp" -v hz="$hz" 'BEGIN {
    ue = a / hz * 1e6 / qe; up = b / hz * 1e6 / qp
    printf "round %d  egressd %.2f (%d queries)  %s %.2f (%d queries)  egressd/%s %.3f", r, ue, qe, p, up, qp, p, ue / up }')
  echo "$line"
  ratios+=("${line##* }")
  kill $E $P; wait $E $P 2>/dev/null || true
done
printf '%s\n' "${ratios[@]}" | sort -g | awk -v p="$PEER" '{a[NR]=$1} END{m = (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); printf "median egressd/%s %.3f over %d rounds (%s/egressd %.3f)\n", p, m, NR, p, 1 / m}'
