#!/usr/bin/env bash
# npm run bench: egressd side by side with the bare Node UDP echo server (the ceiling of Node's
# dgram I/O here) and dnsmasq, measured in the same run with ../shared/bench/run.sh (dnsperf).
# Servers are pinned to CPU 0, dnsperf and the upstream to CPU 1. Loopback only; every load run
# is bounded by dnsperf -l SECONDS. Prints one markdown table (median qps over ROUNDS, and the
# ratio to echo measured in the same rounds).
#
#   bench/run.sh [SECONDS=10] [ROUNDS=2]      env: WORKLOADS="W1 W2 W3" SHARED=../shared/bench KEEP=dir
# W1 (blocked) loads the same 100k-name list into egressd and dnsmasq; echo cannot block, its W1
# number is only the I/O ceiling (its rcode check fails by design). egressd runs with its defaults,
# so every blocked query is also queued for the SQLite block log; a second egressd with
# store.logQueries: none (the harness's method: nobody logs during the runs) runs W1 too.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
SECS=${1:-10}
ROUNDS=${2:-2}
WORKLOADS=${WORKLOADS:-W1 W2 W3}
DATA=$HERE/data
PORT_DNSMASQ=5301 PORT_ECHO=5304 PORT_EGRESSD=5309 PORT_NOLOG=5308

die() { echo "bench: $*" >&2; exit 1; }
for b in dnsperf dig dnsmasq taskset ss node; do command -v $b >/dev/null || die "$b not installed (apt-get install dnsperf bind9-dnsutils dnsmasq)"; done
[ -x "$SHARED/run.sh" ] || die "no $SHARED/run.sh (set SHARED=)"
[ -f "$ROOT/dist/cli.js" ] || die "build first: npm run build"
for p in 5300 $PORT_DNSMASQ $PORT_ECHO $PORT_EGRESSD $PORT_NOLOG; do
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
egressd_config() { # egressd_config PORT NAME [store settings]
  cat >"$RUN/$2.yaml" <<YAML
dns:
  listen: ["127.0.0.1:$1"]
upstreams: ["udp://127.0.0.2:5300"]
cache: { maxEntries: 100000 }
api: { listen: "127.0.0.1:0" }
blocklists:
  dir: $ROOT/blocklists
  sources: [{ name: bench, path: "$DATA/blocklist.txt", format: plain }]
log: { level: warn }
dataDir: $RUN/$2
${3:-}
YAML
  exec taskset -c 0 node "$ROOT/dist/cli.js" start --config "$RUN/$2.yaml" >"$RUN/$2.log" 2>&1
}
egressd_config $PORT_EGRESSD egressd & PIDS+=($!); PID_egressd=$!
PID_nolog=
case " $WORKLOADS " in *" W1 "*) egressd_config $PORT_NOLOG egressd-nolog "store: { logQueries: none }" & PIDS+=($!); PID_nolog=$!;; esac
wait_dns 127.0.0.1 $PORT_DNSMASQ; wait_dns 127.0.0.1 $PORT_ECHO; wait_dns 127.0.0.1 $PORT_EGRESSD
[ -z "$PID_nolog" ] || wait_dns 127.0.0.1 $PORT_NOLOG

declare -A PORT=([echo]=$PORT_ECHO [dnsmasq]=$PORT_DNSMASQ [egressd]=$PORT_EGRESSD [egressd-nolog]=$PORT_NOLOG)
declare -A PID=([echo]=$PID_echo [dnsmasq]=$PID_dnsmasq [egressd]=$PID_egressd [egressd-nolog]=$PID_nolog)
: >"$RUN/results.txt"
for r in $(seq "$ROUNDS"); do
  for peer in echo egressd dnsmasq ${PID_nolog:+egressd-nolog}; do
    echo "# round $r: $peer" >&2
    w=$WORKLOADS; [ "$peer" = egressd-nolog ] && w=W1
    DATA=$DATA WORKLOADS="$w" SERVER_PID=${PID[$peer]} "$SHARED/run.sh" "${PORT[$peer]}" "$SECS" 2>&1 |
      tee -a "$RUN/raw.txt" | awk -v p="$peer" -v r="$r" '/^W[0-9] /{print p, r, $0}' | tee -a "$RUN/results.txt" >&2
  done
done
RSS=$(awk '/VmHWM/{print $2/1024 " MB"}' "/proc/$PID_egressd/status")
# The block log during the runs: a graceful stop writes what is still queued; rows in the file
# plus the drops the daemon counted (its last "queue full" warning) = blocked answers given.
kill -TERM "$PID_egressd"; wait "$PID_egressd" 2>/dev/null || true
WRITTEN=$(cd "$ROOT" && node -e "const D = require('better-sqlite3'); console.log(new D(process.argv[1], { readonly: true }).prepare('SELECT count(*) AS n FROM events').get().n)" "$RUN/egressd/egressd.sqlite" 2>/dev/null || echo "?")
DROPPED=$(grep 'block log closed' "$RUN/egressd.log" | grep -o '"dropped":[0-9]*' | tail -1 | cut -d: -f2)

echo
echo "egressd bench: ${SECS}s x $ROUNDS rounds, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, node $(node --version); egressd peak RSS $RSS"
echo
echo "| workload | echo qps | egressd qps | dnsmasq qps | egressd / echo | target | egressd p99 ms | egressd srv_cpu |"
echo "|---|---|---|---|---|---|---|---|"
med() { awk -v p="$1" -v w="$3" '$1==p && $3==w {for(i=4;i<=NF;i++) if ($i ~ /^'"$2"'=/) {split($i,a,"="); gsub(/%/,"",a[2]); print a[2]}}' "$RUN/results.txt" | sort -g | awk '{a[NR]=$1} END{if(!NR){print "?"; exit} print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
row() { # row LABEL WORKLOAD EGRESSD-PEER
  local e g m p99 cpu target ratio
  e=$(med echo qps "$2"); g=$(med "$3" qps "$2"); m=$(med dnsmasq qps "$2"); p99=$(med "$3" p99_ms "$2"); cpu=$(med "$3" srv_cpu "$2")
  case $2 in W1|W2) target=0.9;; W3) target=0.4;; esac
  ratio=$(awk -v g="$g" -v e="$e" 'BEGIN{ if (e>0) printf "%.2f", g/e; else print "?" }')
  echo "| $1 | $e | $g | $m | $ratio | >= $target | $p99 | $cpu% |"
}
for w in $WORKLOADS; do
  row "$w" "$w" egressd
  [ "$w" = W1 ] && [ -n "$PID_nolog" ] && row "W1, logQueries: none" W1 egressd-nolog
done
echo
echo "Block log (store.threadNice 19, queueMax 100,000): ${WRITTEN} blocked queries written to SQLite, ${DROPPED:-0} dropped because the queue was full while DNS had the core."
echo
grep -h "check=" "$RUN/results.txt" | grep -v "check=ok" | grep -v "^echo .* W1 " | sed 's/^/# not ok: /' || true
