#!/usr/bin/env bash
# Instructions per operation of the in-process hot-path benchmarks, counted
# by valgrind's cachegrind, at a base revision and at the working tree: a
# comparison that the load of a shared machine does not blur, as it blurs
# timings (BENCHMARKS.md). Each figure is (I(22000 ops) - I(2000 ops)) /
# 20000, so that start-up costs cancel, with GOMAXPROCS=1 and no GC.
#
# Usage: bench/instructions.sh [BASE]   (BASE: a revision, default HEAD~1)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
base=${1:-HEAD~1}
command -v valgrind >/dev/null || { echo "bench/instructions.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/base" "$base"
(cd "$work/base" && go test -c -o "$work/before.test" ./apikey)
go test -c -o "$work/after.test" ./apikey
machine
echo "base:    $(git rev-parse --short "$base")"

# instructions BINARY BENCH N prints the instructions of N ops of BENCH.
instructions() {
  (cd apikey && GOGC=off KEYGATE_SKIP_EMULATOR=1 FIRESTORE_EMULATOR_HOST='' \
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$1" -test.run '^$' -test.bench "^Benchmark$2" -test.benchtime "${3}x" -test.cpu 1 2>&1 |
    awk '/I *refs/ {gsub(",", "", $4); print $4}')
}

printf '%-38s %8s %8s %8s\n' benchmark before after change
for b in 'AuthMiddleware$/serial' 'CacheLookupHit$/serial' 'MalformedKey$/bad_checksum' \
  'MeteredHotPath$/auth$' 'MeteredHotPath$/auth\+limits\+meter'; do
  per=()
  for v in before after; do
    small=$(instructions "$work/$v.test" "$b" 2000)
    large=$(instructions "$work/$v.test" "$b" 22000)
    per+=($(((large - small) / 20000)))
  done
  printf '%-38s %8d %8d %+7.1f%%\n' "$b" "${per[0]}" "${per[1]}" "$(awk -v a="${per[0]}" -v b="${per[1]}" 'BEGIN {print (b - a) * 100 / a}')"
done
