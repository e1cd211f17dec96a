#!/usr/bin/env bash
# A/B of two egressd builds under the same noise: both daemons run at once on CPU 0 and are loaded
# at the same time by two dnsperf processes on CPU 1 (each 4 clients, 50 outstanding), so hypervisor
# steal and cache pollution hit both alike. Prints CPU microseconds per query for each build, per
# round, and the median of B/A. On this VM the same build on both sides differs by up to ±3 % per
# round: trust a direction only when it holds in most rounds. Loopback only; every round is bounded
# by the query count (and dnsperf's 2 s timeout per query).
#
#   bench/ab.sh DIST_A DIST_B [W1|W2|W3] [ROUNDS=6] [QUERIES]
#     DIST_A, DIST_B: compiled trees (e.g. a `tsc --outDir` of another commit, and dist/)
#     env DNS_A, DNS_B: extra `dns:` settings for one side, e.g. DNS_B="udpSockets: 8"; CONF_A,
#     CONF_B: extra top-level YAML, e.g. CONF_B="cache: { enabled: false }" (the same build on both
#     sides then compares two settings); ENV_A, ENV_B: environment of one side's process, e.g.
#     ENV_B="GLIBC_TUNABLES=glibc.malloc.hugetlb=1"; FLAGS_A, FLAGS_B: node flags of one side, e.g.
#     FLAGS_B="--single-threaded-gc"
# In every round both first forward 150k unique names (a full 100k-entry cache, as in npm run
# bench after W3); the order in which the two loads start alternates per round.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); W=${3:-W3}; ROUNDS=${4:-6}
DATA=$HERE/data
. "$HERE/lib.sh"
die() { echo "ab: $*" >&2; exit 1; }
for b in dnsperf dnsmasq dig taskset ss node; do command -v $b >/dev/null || die "$b not installed"; done
[ -f "$A/cli.js" ] && [ -f "$B/cli.js" ] || die "DIST_A and DIST_B must hold cli.js"
for p in 5300 5307 5309; do ss -Hlun "sport = :$p" | grep -q . && die "port $p is in use"; done
[ -s "$DATA/w1-blocked.txt" ] || node "$SHARED/gen-data.mjs" "$DATA" >&2

RUN=$(mktemp -d /tmp/egressd-ab.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

taskset -c 1 dnsmasq -k -C "$SHARED/conf/upstream-dnsmasq.conf" --pid-file= >"$RUN/upstream.log" 2>&1 & PIDS+=($!)
start() { # start NAME PORT DIST [DNS SETTINGS] [MORE YAML] [ENVIRONMENT] [NODE FLAGS]
  bench_config "$RUN/$1.yaml" "$2" "$RUN/$1" "store: { logQueries: none }${5:+
$5}" "${4:-}"
  env ${6:-} taskset -c 0 node ${7:-} "$3/cli.js" start --config "$RUN/$1.yaml" >"$RUN/$1.log" 2>&1 & PIDS+=($!)
}
# Fresh daemons for every round, started in alternating order: a process's luck in where its
# tables land in memory (cache sets, pages) stays with it, and a pair of processes kept for every
# round showed differences of up to 7 % in one direction that the next pair did not repeat.
start_a() { start a 5307 "$A" "${DNS_A:-}" "${CONF_A:-}" "${ENV_A:-}" "${FLAGS_A:-}"; PID_A=$!; }
start_b() { start b 5309 "$B" "${DNS_B:-}" "${CONF_B:-}" "${ENV_B:-}" "${FLAGS_B:-}"; PID_B=$!; }
up() { # up ROUND: both daemons started (A first in odd rounds), answering
  if [ $(($1 % 2)) = 1 ]; then start_a; start_b; else start_b; start_a; fi
  local p side
  for p in 5307 5309; do
    for _ in $(seq 50); do dig @127.0.0.1 -p $p probe.allowed.bench.test +tries=1 +time=1 >/dev/null 2>&1 && continue 2; sleep 0.2; done
    side=$([ $p = 5307 ] && echo a || echo b)
    die "the $side daemon does not answer on 127.0.0.1:$p; its log: $(tail -c 600 "$RUN/$side.log")"
  done
}
down() { kill "$PID_A" "$PID_B" 2>/dev/null || true; wait "$PID_A" "$PID_B" 2>/dev/null || true; }

cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }
unique() { node -e 'const [n, f] = [+process.argv[1], process.argv[2]]; const r = Math.random().toString(36).slice(2, 8); let s = ""; for (let i = 0; i < n; i++) s += `m${r}ab-${i}.miss.bench.test A\n`; require("fs").writeFileSync(f, s)' "$1" "$2"; }
load() { # load PORT FILE PASSES OUT
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -n "$3" -c 4 -q 50 -t 2 >"$4" 2>&1
}
pair() { # pair FILE_A FILE_B PASSES ROUND -> "a_us b_us"
  local a0 b0 a1 b1 qa qb
  a0=$(cpu $PID_A); b0=$(cpu $PID_B)
  if [ $(($4 % 2)) = 1 ]; then load 5307 "$1" "$3" "$RUN/a.out" & load 5309 "$2" "$3" "$RUN/b.out" &
  else load 5309 "$2" "$3" "$RUN/b.out" & load 5307 "$1" "$3" "$RUN/a.out" & fi
  wait # the two loads: pair runs in a subshell, where the daemons are not children
  a1=$(cpu $PID_A); b1=$(cpu $PID_B)
  qa=$(awk '/Queries completed/{print $3}' "$RUN/a.out"); qb=$(awk '/Queries completed/{print $3}' "$RUN/b.out")
  hz=$(getconf CLK_TCK)
  awk -v a0=$a0 -v a1=$a1 -v b0=$b0 -v b1=$b1 -v qa=$qa -v qb=$qb -v hz=$hz 'BEGIN{printf "%.2f %.2f\n", (a1-a0)*1e6/hz/qa, (b1-b0)*1e6/hz/qb}'
}

unique 150000 "$RUN/wa.txt"; unique 150000 "$RUN/wb.txt"
N=${5:-}
echo "A=$A ${DNS_A:-} ${CONF_A:-} ${ENV_A:-} ${FLAGS_A:-}"; echo "B=$B ${DNS_B:-} ${CONF_B:-} ${ENV_B:-} ${FLAGS_B:-}"; echo "$W, CPU microseconds per query (warm-up: 150k forwarded each, on fresh daemons):"
RATIOS=()
for r in $(seq "$ROUNDS"); do
  up "$r"
  warm=$(pair "$RUN/wa.txt" "$RUN/wb.txt" 1 "$r")
  case $W in
    W1) fa=$DATA/w1-blocked.txt; fb=$fa; passes=$(( ${N:-400000} / 200000 ));;
    W2) fa=$DATA/w2-cached.txt; fb=$fa; passes=$(( ${N:-400000} / 1000 ));;
    W3) unique "${N:-100000}" "$RUN/fa.txt"; unique "${N:-100000}" "$RUN/fb.txt"; fa=$RUN/fa.txt; fb=$RUN/fb.txt; passes=1;;
    *) die "workload: W1, W2 or W3";;
  esac
  read -r ua ub < <(pair "$fa" "$fb" "$passes" "$r")
  down
  ratio=$(awk -v a=$ua -v b=$ub 'BEGIN{printf "%.3f", b/a}')
  RATIOS+=("$ratio")
  echo "round $r  A $ua  B $ub  B/A $ratio   (warm-up A ${warm% *} B ${warm#* })"
done
printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{v[NR]=$1} END{m = NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "median B/A %.3f over %d rounds (below 1: B needs less CPU per query)\n", m, NR}'
