#!/usr/bin/env bash
# npm run bench: egressd side by side with the bare Node UDP echo server (the ceiling of Node's
# dgram I/O here) and dnsmasq, measured in the same run with ../shared/bench/run.sh (dnsperf).
# Servers are pinned to CPU 0, dnsperf and the upstream to CPU 1. Loopback only; every load run
# is bounded by dnsperf -l SECONDS. Prints one markdown table (median qps over ROUNDS, and the
# ratio to echo measured in the same rounds).
#
#   bench/run.sh [SECONDS=10] [ROUNDS=2]      env: WORKLOADS="W1 W2 W3" SHARED=../shared/bench KEEP=dir
# W1 (blocked) loads the same 100k-name list into egressd and dnsmasq; echo cannot block, its W1
# number is only the I/O ceiling (its rcode check fails by design). The harness's method is that
# nobody logs during the runs, so `egressd` runs with store.logQueries: none (blocks are still
# counted and answered the same); `egressd-log` runs with the default block log (every blocked
# query queued for SQLite) for W1 only, last of W1's peers, and the script waits until it is idle
# again (its writer thread done with the backlog) before the next workload, so that the backlog
# does not run into other peers' measurements. `floor` (bench/floor-forwarder.mjs: a forwarder with no
# DNS work at all) runs W3 only: the most any Node forwarder gets with this packet pattern here.
# `plain` (bench/plain-answerer.mjs: a Set of the listed names and a Map of answers, nothing else)
# runs W1 and W2: those answers given the plain way in Node, a reference for egressd's DNS work.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
SECS=${1:-10}
ROUNDS=${2:-2}
WORKLOADS=${WORKLOADS:-W1 W2 W3}
DATA=$HERE/data
. "$HERE/lib.sh"
PORT_DNSMASQ=5301 PORT_ECHO=5304 PORT_FLOOR=5306 PORT_PLAIN=5307 PORT_EGRESSD=5309 PORT_LOG=5308

die() { echo "bench: $*" >&2; exit 1; }
for b in dnsperf dig dnsmasq taskset ss node; do command -v $b >/dev/null || die "$b not installed (apt-get install dnsperf bind9-dnsutils dnsmasq)"; done
[ -x "$SHARED/run.sh" ] || die "no $SHARED/run.sh (set SHARED=)"
[ -f "$ROOT/dist/cli.js" ] || die "build first: npm run build"
for p in 5300 $PORT_DNSMASQ $PORT_ECHO $PORT_FLOOR $PORT_PLAIN $PORT_EGRESSD $PORT_LOG; do
  ss -Hlun "sport = :$p" | grep -q . && die "port $p is in use"
done
[ -s "$DATA/w1-blocked.txt" ] || node "$SHARED/gen-data.mjs" "$DATA" >&2

RUN=$(mktemp -d /tmp/egressd-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp -r "$RUN" "$KEEP" ; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_dns() { # wait_dns HOST PORT
  for _ in $(seq 100); do dig @"$1" -p "$2" probe.allowed.bench.test +tries=1 +time=1 >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "nothing answers on $1:$2"
}

# upstream: answers every A query with 192.0.2.1, TTL 3600 (CPU 1, like dnsperf)
taskset -c 1 dnsmasq -k -C "$SHARED/conf/upstream-dnsmasq.conf" --pid-file= >"$RUN/upstream.log" 2>&1 & PIDS+=($!)
wait_dns 127.0.0.2 5300

# peers on CPU 0
sed -e "s#@PORT@#$PORT_DNSMASQ#g" -e "s#@DATA@#$DATA#g" "$SHARED/conf/dnsmasq.conf.in" >"$RUN/dnsmasq.conf"
taskset -c 0 dnsmasq -k -C "$RUN/dnsmasq.conf" --pid-file= >"$RUN/dnsmasq.log" 2>&1 & PIDS+=($!); PID_dnsmasq=$!
taskset -c 0 node "$SHARED/node/echo.mjs" $PORT_ECHO >"$RUN/echo.log" 2>&1 & PIDS+=($!); PID_echo=$!
PID_floor=
case " $WORKLOADS " in *" W3 "*) taskset -c 0 node "$HERE/floor-forwarder.mjs" $PORT_FLOOR >"$RUN/floor.log" 2>&1 & PIDS+=($!); PID_floor=$!;; esac
PID_plain=
case " $WORKLOADS " in *" W1 "*|*" W2 "*) taskset -c 0 node "$HERE/plain-answerer.mjs" $PORT_PLAIN "$DATA/blocklist.txt" >"$RUN/plain.log" 2>&1 & PIDS+=($!); PID_plain=$!;; esac
egressd_config() { # egressd_config PORT NAME [store settings]
  bench_config "$RUN/$2.yaml" "$1" "$RUN/$2" "${3:-}"
  exec taskset -c 0 node "$ROOT/dist/cli.js" start --config "$RUN/$2.yaml" >"$RUN/$2.log" 2>&1
}
egressd_config $PORT_EGRESSD egressd "store: { logQueries: none }" & PIDS+=($!); PID_egressd=$!
PID_log=
case " $WORKLOADS " in *" W1 "*) egressd_config $PORT_LOG egressd-log & PIDS+=($!); PID_log=$!;; esac
wait_dns 127.0.0.1 $PORT_DNSMASQ; wait_dns 127.0.0.1 $PORT_ECHO; wait_dns 127.0.0.1 $PORT_EGRESSD
[ -z "$PID_floor" ] || wait_dns 127.0.0.1 $PORT_FLOOR
[ -z "$PID_plain" ] || wait_dns 127.0.0.1 $PORT_PLAIN
[ -z "$PID_log" ] || wait_dns 127.0.0.1 $PORT_LOG

# wait_idle PID: until the process used under 5 % of a core over the last second (at most 120 s).
wait_idle() {
  local hz t0 t1
  hz=$(getconf CLK_TCK)
  for _ in $(seq 120); do
    t0=$(awk '{print $14 + $15}' "/proc/$1/stat"); sleep 1; t1=$(awk '{print $14 + $15}' "/proc/$1/stat")
    [ $(( (t1 - t0) * 100 / hz )) -lt 5 ] && return 0
  done
  echo "bench: pid $1 still busy after 120 s" >&2
}

declare -A PORT=([echo]=$PORT_ECHO [dnsmasq]=$PORT_DNSMASQ [egressd]=$PORT_EGRESSD [egressd-log]=$PORT_LOG [floor]=$PORT_FLOOR [plain]=$PORT_PLAIN)
declare -A PID=([echo]=$PID_echo [dnsmasq]=$PID_dnsmasq [egressd]=$PID_egressd [egressd-log]=$PID_log [floor]=$PID_floor [plain]=$PID_plain)
: >"$RUN/results.txt"
# Workload by workload, every peer back to back, so that echo and egressd meet the same phase of the
# VM's noise (it drifts over tens of seconds); who goes first alternates from round to round.
for r in $(seq "$ROUNDS"); do
  for w in $WORKLOADS; do
    peers="echo egressd"; [ $((r % 2)) = 0 ] && peers="egressd echo"
    peers="$peers dnsmasq"; [ "$w" = W3 ] && peers="$peers ${PID_floor:+floor}"
    case $w in W1|W2) peers="$peers ${PID_plain:+plain}";; esac
    [ "$w" = W1 ] && peers="$peers ${PID_log:+egressd-log}"
    for peer in $peers; do
      echo "# round $r: $w $peer" >&2
      DATA=$DATA WORKLOADS="$w" SERVER_PID=${PID[$peer]} "$SHARED/run.sh" "${PORT[$peer]}" "$SECS" 2>&1 |
        tee -a "$RUN/raw.txt" | awk -v p="$peer" -v r="$r" '/^W[0-9] /{print p, r, $0}' | tee -a "$RUN/results.txt" >&2
      [ "$peer" = egressd-log ] && wait_idle "$PID_log"
    done
  done
done
RSS=$(awk '/VmHWM/{print $2/1024 " MB"}' "/proc/$PID_egressd/status")
# egressd-log's block log: a graceful stop writes what is still queued and logs its totals; rows
# in the file plus the drops it counted = blocked answers given.
if [ -n "$PID_log" ]; then
  kill -TERM "$PID_log"; wait "$PID_log" 2>/dev/null || true
  WRITTEN=$(cd "$ROOT" && node -e "const D = require('better-sqlite3'); console.log(new D(process.argv[1], { readonly: true }).prepare('SELECT count(*) AS n FROM events').get().n)" "$RUN/egressd-log/egressd.sqlite" 2>/dev/null || echo "?")
  DROPPED=$(grep 'block log closed' "$RUN/egressd-log.log" | grep -o '"dropped":[0-9]*' | tail -1 | cut -d: -f2 || true) # no line: nothing dropped (the info line is below log level warn)
fi

echo
echo "egressd bench: ${SECS}s x $ROUNDS rounds, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, node $(node --version); egressd (logQueries: none) peak RSS $RSS"
echo
echo "| workload | echo qps | egressd qps | dnsmasq qps | egressd / echo | per round: median (range) | target | egressd p99 ms | egressd srv_cpu |"
echo "|---|---|---|---|---|---|---|---|---|"
med() { awk -v p="$1" -v w="$3" '$1==p && $3==w {for(i=4;i<=NF;i++) if ($i ~ /^'"$2"'=/) {split($i,a,"="); gsub(/%/,"",a[2]); print a[2]}}' "$RUN/results.txt" | sort -g | awk '{a[NR]=$1} END{if(!NR){print "?"; exit} print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# rounds PEER WORKLOAD: each round's own egressd/echo ratio, as "median (min-max)"
rounds() {
  awk -v p="$1" -v w="$2" '$3==w && ($1=="echo" || $1==p) {for(i=4;i<=NF;i++) if ($i ~ /^qps=/) {split($i,a,"="); q[$1" "$2]=a[2]}}
    END{for (k in q) {split(k,x," "); if (x[1]==p && q["echo "x[2]]>0) print q[k]/q["echo "x[2]]}}' "$RUN/results.txt" |
    sort -g | awk '{a[NR]=$1} END{if(!NR){print "?"; exit} printf "%.2f (%.2f-%.2f)", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[1], a[NR]}'
}
row() { # row LABEL WORKLOAD EGRESSD-PEER
  local e g m p99 cpu target ratio
  e=$(med echo qps "$2"); g=$(med "$3" qps "$2"); m=$(med dnsmasq qps "$2"); p99=$(med "$3" p99_ms "$2"); cpu=$(med "$3" srv_cpu "$2")
  # The block log's row is not measured against a target: the harness's method has nobody logging.
  case $3:$2 in egressd:W1|egressd:W2) target=">= 0.9";; egressd:W3) target=">= 0.4";; *) target="—";; esac
  ratio=$(awk -v g="$g" -v e="$e" 'BEGIN{ if (e>0) printf "%.2f", g/e; else print "?" }')
  echo "| $1 | $e | $g | $m | $ratio | $(rounds "$3" "$2") | $target | $p99 | $cpu% |"
}
for w in $WORKLOADS; do
  row "$w" "$w" egressd
  [ "$w" = W1 ] && [ -n "$PID_log" ] && row "W1, block log on" W1 egressd-log
  [ "$w" != W3 ] && [ -n "$PID_plain" ] && row "$w, plain answerer (a Set and a Map, no DNS work)" "$w" plain
  [ "$w" = W3 ] && [ -n "$PID_floor" ] && row "W3, forwarding floor (no DNS work)" W3 floor
done
echo
[ -z "$PID_log" ] || echo "egressd-log's block log (store.threadNice 19, queueMax 100,000): ${WRITTEN} blocked queries written to SQLite, ${DROPPED:-0} dropped because the queue was full while DNS had the core."
echo
grep -h "check=" "$RUN/results.txt" | grep -v "check=ok" | grep -v "^echo .* W1 " | sed 's/^/# not ok: /' || true
