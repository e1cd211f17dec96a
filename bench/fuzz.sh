#!/usr/bin/env bash
# A long fuzz run: the properties of test/fuzz/*.test.ts (the same ones npm test runs with a fixed
# seed and few inputs) with many more inputs and a random seed, printed for replay.
#
#   npm run fuzz                                          every target, FUZZ_RUNS=20000 per property
#   FUZZ_RUNS=100000 npm run fuzz -- test/fuzz/dns-query.test.ts
#   FUZZ_SEED=1234 FUZZ_RUNS=100000 npm run fuzz -- FILE   replays a run
#
# Slow properties (the API through inject, the TCP framer through sockets, the config loader, very
# long list lines) run a fixed fraction of FUZZ_RUNS (see `scale` in the test files). A failing
# input is shrunk and written to test/fuzz/corpus/<target>/<property>/; commit it, and npm test
# replays it first from then on. No tap timeout: a hang shows as a run that does not end.
set -uo pipefail
cd "$(dirname "$0")/.."
export FUZZ_RUNS="${FUZZ_RUNS:-20000}"
export FUZZ_SEED="${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
echo "fuzz: FUZZ_SEED=$FUZZ_SEED FUZZ_RUNS=$FUZZ_RUNS"
if [ $# -eq 0 ]; then set -- test/fuzz/*.test.ts; fi
start=$(date +%s)
npx tap --disable-coverage -t0 -j1 "$@"
status=$?
echo "fuzz: $(( $(date +%s) - start )) s, exit $status; replay: FUZZ_SEED=$FUZZ_SEED FUZZ_RUNS=$FUZZ_RUNS npm run fuzz -- $*"
git status --short test/fuzz/corpus
exit $status
