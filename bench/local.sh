#!/usr/bin/env bash
# cmd/local against the same function served by the Functions Framework
# directly (issue 24): wrk -t2 -c32 GET / with a key the cache holds, on
# each server in turn, with the keys on the Firestore emulator. Nothing is
# pinned and GOMAXPROCS is the default: the server and wrk share the cores,
# as when a developer runs cmd/local.
#
#   bench/local.sh                               # ROUNDS=5 DURATION=10
#   BEFORE=/tmp/local-before bench/local.sh      # also an older cmd/local build
#
# The framework is bench/ffserver with FUNCTION_TARGET=API, as Cloud Run
# serves the function; cmd/local is this tree's build, over HTTP. Each round
# runs wrk on each server back to back, in an order that rotates from round
# to round, each after WARMUP seconds of unmeasured load, and prints the
# requests per second of each and the ratio local/framework; then the
# median ratio over ROUNDS. BEFORE is a cmd/local built from older code:
# its ratio to the same round's framework is printed too. It starts a
# Firestore emulator unless FIRESTORE_EMULATOR_HOST is set.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
out_dir local
need wrk curl setsid
trap stop_groups EXIT
emulator "$OUT/emulator.log"
export GOOGLE_CLOUD_PROJECT=demo-keygate-local
unset FUNCTION_TARGET

machine | tee "$OUT/machine.txt"
echo "wrk:     -t$THREADS -c$CONNS, ${DURATION}s after ${WARMUP}s warm-up, $ROUNDS rounds, default GOMAXPROCS, unpinned"
echo "store:   Firestore emulator at $FIRESTORE_EMULATOR_HOST"
echo "out:     $OUT"
go build -o "$OUT/ffserver" ./bench/ffserver
go build -o "$OUT/local" ./cmd/local
go build -o "$OUT/apikey" ./cmd/apikey
KEY=$("$OUT/apikey" create --owner bench --name local 2>/dev/null)

# rps NAME CMD...: the requests per second of wrk against CMD, started
# with PORT set and stopped after.
rps() {
  local name=$1 port
  shift
  port=$(free_port)
  start_group "$OUT/$name.log" env PORT="$port" "$@"
  local pid=$STARTED_PID
  wait_ok "$name" "http://127.0.0.1:$port/" "$OUT/$name.log"
  wrk_rps "$name" "http://127.0.0.1:$port/" "$OUT/wrk.$name.txt" 'Non-2xx\|Socket errors'
  stop_group "$pid"
}

runs=(framework local)
[[ -n "${BEFORE:-}" ]] && runs+=(before)
printf '%-6s' round
for run in "${runs[@]}"; do printf ' %12s' "$run"; done
printf ' %8s' local/fw
[[ -n "${BEFORE:-}" ]] && printf ' %9s' before/fw
echo
: >"$OUT/ratios.txt"
: >"$OUT/ratios-before.txt"
for round in $(seq "$ROUNDS"); do
  declare -A got=()
  n=${#runs[@]}
  for ((i = 0; i < n; i++)); do
    run=${runs[$(((i + round) % n))]}
    case $run in
      framework) got[$run]=$(rps "$run" env FUNCTION_TARGET=API "$OUT/ffserver") ;;
      local) got[$run]=$(rps "$run" env HOST=127.0.0.1 "$OUT/local") ;;
      before) got[$run]=$(rps "$run" env HOST=127.0.0.1 "$BEFORE") ;;
    esac
  done
  r=$(ratio "${got[local]}" "${got[framework]}")
  echo "$r" >>"$OUT/ratios.txt"
  printf '%-6s' "$round"
  for run in "${runs[@]}"; do printf ' %12s' "${got[$run]}"; done
  printf ' %8s' "$r"
  if [[ -n "${BEFORE:-}" ]]; then
    br=$(ratio "${got[before]}" "${got[framework]}")
    echo "$br" >>"$OUT/ratios-before.txt"
    printf ' %9s' "$br"
  fi
  echo
  unset got
done
echo "median local/framework: $(median <"$OUT/ratios.txt") (ratios: $(tr '\n' ' ' <"$OUT/ratios.txt"))"
if [[ -n "${BEFORE:-}" ]]; then
  echo "median before/framework: $(median <"$OUT/ratios-before.txt") (ratios: $(tr '\n' ' ' <"$OUT/ratios-before.txt"))"
fi
