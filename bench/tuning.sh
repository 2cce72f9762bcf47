#!/usr/bin/env bash
# Before and after of a tuning change, measured in the same conditions.
#
#   bench/tuning.sh REV FILE...
#   RUNS=9 BENCH='^BenchmarkAuthMiddleware$' bench/tuning.sh HEAD apikey/cache.go
#
# Builds the test binary of package PKG (default ./apikey) twice: "after" from the working tree,
# "before" from a copy of it in which each FILE is as in git revision REV
# (read with git show; the repository is not touched). Then runs BENCH in
# both, alternately (before, after; after, before; ...), RUNS times, and
# prints the medians and, for each pair of runs, after/before of ns/op.
# Emulator-free; at most about RUNS x 2 x the benchmarks' time.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

if (($# < 2)); then
  echo "usage: bench/tuning.sh REV FILE..." >&2
  exit 2
fi
rev=$1
shift
RUNS=${RUNS:-9}
BENCHTIME=${BENCHTIME:-1s}
BENCH=${BENCH:-'^Benchmark(AuthMiddleware|CacheLookupHit|ParseKey|KeyDigest|MalformedKey|MeteredHotPath)$'}
PKG=${PKG:-./apikey}
out_dir tuning

machine | tee "$OUT/machine.txt"
echo "before:  $* as in $rev"
echo "out:     $OUT"
rm -rf "$OUT/before-src"
mkdir -p "$OUT/before-src"
tar --exclude=.git -cf - . | tar -xf - -C "$OUT/before-src"
for f in "$@"; do
  git show "$rev:$f" >"$OUT/before-src/$f"
done
(cd "$OUT/before-src" && go test -c -o "$OUT/before.test" "$PKG")
go test -c -o "$OUT/after.test" "$PKG"

run() { # run BUILD I: one run of one build, its results tagged build=BUILD
  timeout 15m "$OUT/$1.test" -test.run '^$' -test.bench "$BENCH" -test.benchmem \
    -test.benchtime "$BENCHTIME" -test.count 1 -test.timeout 15m 2>>"$OUT/stderr.txt" |
    sed -E "s|^(Benchmark[^ \t]*)-([0-9]+)|\1/build=$1-\2|" >>"$OUT/pair.$2.txt"
}
for i in $(seq "$RUNS"); do
  echo "pair $i/$RUNS" >&2
  if ((i % 2)); then run before "$i"; run after "$i"; else run after "$i"; run before "$i"; fi
done

echo
echo "## medians of $RUNS runs each, -benchtime $BENCHTIME"
echo
awk -f bench/summarize.awk "$OUT"/pair.*.txt
echo
echo "## after / before, ns/op, per pair of adjacent runs"
echo
awk -v ratios=1 -v key=build -v base=before -f bench/summarize.awk "$OUT"/pair.*.txt
