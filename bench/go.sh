#!/usr/bin/env bash
# Go benchmarks of issue 6 (BENCHMARKS.md, items 1, 3 and 5).
#
#   bench/go.sh              # RUNS=7 BENCHTIME=1s
#   RUNS=3 BENCHTIME=200ms bench/go.sh
#
# Builds the test binaries of the function (root: Hello, AuthBingo) and of
# the library (apikey: the Gate's own benchmarks) once, then runs the
# hot-path benchmarks RUNS times, each run one process per package in which
# every handler=bare benchmark is followed at once by its handler=auth (and
# handler=server) counterpart: the
# ratios come from one run each and the script prints their medians. Then it
# runs the store-call counts (which assert their bounds) and the memory
# benchmark, 3 times (COUNTS=none skips them). Raw results stay in OUT
# (default: a new temporary directory). Emulator-free; takes about
# RUNS x 45 s + 1 min.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

RUNS=${RUNS:-7}
BENCHTIME=${BENCHTIME:-1s}
out_dir bench
HOT=${HOT:-'^Benchmark(Hello|HelloParallel|AuthMiddleware|CacheLookupHit|ParseKey|KeyDigest|Clock|MalformedKey|AuthBingo|AuthBingoParallel)$'}
COUNTS=${COUNTS:-'^Benchmark(StoreCalls.*|CacheMemory)$'}

machine | tee "$OUT/machine.txt"
echo "out:     $OUT"
go test -c -o "$OUT/keygate.test" .
go test -c -o "$OUT/apikey.test" ./apikey

for i in $(seq "$RUNS"); do
  echo "hot-path run $i/$RUNS" >&2
  for bin in keygate apikey; do
    timeout 15m "$OUT/$bin.test" -test.run '^$' -test.bench "$HOT" -test.benchmem \
      -test.benchtime "$BENCHTIME" -test.count 1 -test.timeout 15m >>"$OUT/hot.$i.txt" 2>>"$OUT/stderr.txt"
  done
done
if [[ $COUNTS != none ]]; then
  echo "store calls and memory" >&2
  timeout 15m "$OUT/apikey.test" -test.run '^$' -test.bench "$COUNTS" -test.benchmem \
    -test.benchtime 1x -test.count 3 -test.timeout 15m >"$OUT/counts.txt" 2>>"$OUT/stderr.txt"
fi

echo
echo "## medians of $RUNS runs, -benchtime $BENCHTIME"
echo
awk -f bench/summarize.awk "$OUT"/hot.*.txt
echo
echo "## ratios of ns/op, each measured within one run"
echo
awk -v ratios=1 -f bench/summarize.awk "$OUT"/hot.*.txt
if [[ $COUNTS != none ]]; then
  echo
  echo "## store calls and memory (medians of 3 runs, -benchtime 1x)"
  echo
  awk -f bench/summarize.awk "$OUT/counts.txt"
fi
