#!/usr/bin/env bash
# Instructions per operation of the in-process hot-path benchmarks, counted
# by valgrind's cachegrind, at a base revision and at the working tree: a
# comparison that the load of a shared machine does not blur, as it blurs
# timings (BENCHMARKS.md). Each figure is (I(22000 ops) - I(2000 ops)) /
# 20000, so that start-up costs cancel, with GOMAXPROCS=1 and no GC.
# GODEBUG=cpu.rdtscp=off keeps the Go runtime from RDTSCP, which valgrind
# 3.19 (Debian 12's) does not know: without it, it stops with SIGILL.
#
# Usage: bench/instructions.sh [BASE]   (BASE: a revision, default HEAD~1)
#        LIMITS=1 bench/instructions.sh  (the working tree only: the
#        function's GET / with REDIS_URL against the per-instance limits,
#        BenchmarkFleetGet; Redis's own work and the kernel's are not counted,
#        only the instance's)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
base=${1:-HEAD~1}
command -v valgrind >/dev/null || { echo "bench/instructions.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# instructions BINARY BENCH N prints the instructions of N ops of BENCH,
# run in the directory $pkg.
instructions() {
  (cd "$pkg" && GOGC=off GODEBUG=cpu.rdtscp=off KEYGATE_SKIP_EMULATOR=1 FIRESTORE_EMULATOR_HOST='' \
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$1" -test.run '^$' -test.bench "^Benchmark$2" -test.benchtime "${3}x" -test.cpu 1 2>&1 |
    awk '/I *refs/ {gsub(",", "", $4); print $4}')
}

# per BINARY BENCH prints the instructions per op of BENCH.
per() {
  local small large
  small=$(instructions "$1" "$2" 2000)
  large=$(instructions "$1" "$2" 22000)
  echo $(((large - small) / 20000))
}

# row NAME A B prints a row of the table: A, B and B's change from A.
row() {
  printf '%-38s %8d %8d %+7.1f%%\n' "$1" "$2" "$3" "$(awk -v a="$2" -v b="$3" 'BEGIN {print (b - a) * 100 / a}')"
}

if [[ -n "${LIMITS:-}" ]]; then
  pkg=.
  go test -c -o "$work/function.test" .
  machine
  printf '%-38s %8s %8s %8s\n' benchmark instance redis change
  row 'FleetGet (GET /, limits on)' "$(per "$work/function.test" 'FleetGet$/limits=instance$')" \
    "$(per "$work/function.test" 'FleetGet$/limits=redis$')"
  exit
fi

pkg=apikey
git worktree add -q --detach "$work/base" "$base"
(cd "$work/base" && go test -c -o "$work/before.test" ./apikey)
go test -c -o "$work/after.test" ./apikey
machine
echo "base:    $(git rev-parse --short "$base")"

printf '%-38s %8s %8s %8s\n' benchmark before after change
for b in 'AuthMiddleware$/serial' 'CacheLookupHit$/serial' 'MalformedKey$/bad_checksum' \
  'MeteredHotPath$/auth$' 'MeteredHotPath$/auth\+limits\+meter'; do
  row "$b" "$(per "$work/before.test" "$b")" "$(per "$work/after.test" "$b")"
done
