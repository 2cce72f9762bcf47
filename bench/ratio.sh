#!/usr/bin/env bash
# The protected hot path end to end, as users run it (issue 11): wrk -t2 -c32
# against the bingo function's GET / behind keygate, alternating with a
# Functions Framework hello on the same machine, both served by the
# Functions Framework as Cloud Run serves a function (bench/ffserver), with
# the keys on the Firestore emulator. Nothing is pinned: the server and wrk
# share both cores.
#
#   bench/ratio.sh                          # ROUNDS=5 DURATION=10 PROCS="1 2 4"
#   BEFORE=/tmp/ffserver-old bench/ratio.sh # also an older build, same rounds
#   REDIS=1 bench/ratio.sh                  # also keygate with global limits
#
# Per GOMAXPROCS value, each round runs wrk on each server back to back, in
# an order that rotates from round to round, each after WARMUP seconds of
# unmeasured load; it prints the requests per second of each and the ratio
# keygate/hello, then the median ratio over ROUNDS. BEFORE is an ffserver
# built from older code (its own hello and API): its ratio to its own hello
# is printed too. FFSERVER is the build to measure (default: this tree).
# It starts a Firestore emulator unless FIRESTORE_EMULATOR_HOST is set.
# REDIS=1 gives the key's owner a plan with a rate limit and a quota it
# never reaches, starts a redis-server on loopback, and adds to each round
# keygate with REDIS_URL set, whose ratios to hello and to keygate without
# it (which then applies the same plan per instance) are printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PROCS=${PROCS:-1 2 4}
out_dir ratio
need wrk curl setsid
trap stop_groups EXIT
emulator "$OUT/emulator.log"
export GOOGLE_CLOUD_PROJECT=demo-keygate-ratio

machine | tee "$OUT/machine.txt"
echo "wrk:     -t$THREADS -c$CONNS, ${DURATION}s after ${WARMUP}s warm-up, $ROUNDS rounds, GOMAXPROCS $PROCS, unpinned"
echo "store:   Firestore emulator at $FIRESTORE_EMULATOR_HOST"
echo "out:     $OUT"
if [[ -z "${FFSERVER:-}" ]]; then
  go build -o "$OUT/ffserver" ./bench/ffserver
  FFSERVER=$OUT/ffserver
fi
go build -o "$OUT/apikey" ./cmd/apikey
# A cold emulator on a loaded machine can miss the CLI's first deadline.
KEY=
for _ in 1 2 3; do
  KEY=$("$OUT/apikey" create --owner bench --name ratio --scopes bingo:check,usage:read 2>"$OUT/create.err") && break
  sleep 2
done
[[ -n $KEY ]] || { cat "$OUT/create.err" >&2; exit 1; }
if [[ -n "${REDIS:-}" ]]; then
  command -v redis-server >/dev/null || { echo "REDIS=1 needs redis-server (apt-get install -y redis-server)" >&2; exit 1; }
  "$OUT/apikey" plan set bench --rate 1000000 --burst 1000000 --quota 1000000000000 >/dev/null
  redis_port=$(free_port)
  start_group "$OUT/redis.log" redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "redis:   $(redis-server --version | cut -d' ' -f3) on 127.0.0.1:$redis_port; owner plan: rate 1000000/s, quota 1e12"
fi

# rps BINARY TARGET PROCS [VAR=VALUE...] prints the requests per second of
# wrk against BINARY serving TARGET with GOMAXPROCS=PROCS and the variables.
rps() {
  local binary=$1 target=$2 procs=$3 port
  shift 3
  port=$(free_port)
  start_group "$OUT/$target.log" env PORT="$port" FUNCTION_TARGET="$target" GOMAXPROCS="$procs" "$@" "$binary"
  local pid=$STARTED_PID
  wait_ok "$target" "http://127.0.0.1:$port/" "$OUT/$target.log"
  wrk_rps "$target" "http://127.0.0.1:$port/" "$OUT/wrk.txt"
  stop_group "$pid"
}

if [[ -n "${BEFORE:-}" ]]; then
  printf '%-10s %-6s %12s %12s %8s %12s %12s %8s\n' GOMAXPROCS round hello keygate ratio hello-before before ratio-before
elif [[ -n "${REDIS:-}" ]]; then
  printf '%-10s %-6s %12s %12s %8s %12s %8s %8s\n' GOMAXPROCS round hello keygate ratio redis ratio-redis redis/kg
else
  printf '%-10s %-6s %12s %12s %8s\n' GOMAXPROCS round hello keygate ratio
fi
for procs in $PROCS; do
  : >"$OUT/ratios-$procs.txt"
  : >"$OUT/ratios-before-$procs.txt"
  : >"$OUT/ratios-redis-$procs.txt"
  : >"$OUT/ratios-redis-instance-$procs.txt"
  for round in $(seq "$ROUNDS"); do
    runs=("$FFSERVER Hello" "$FFSERVER API")
    [[ -n "${BEFORE:-}" ]] && runs+=("$BEFORE Hello" "$BEFORE API")
    [[ -n "${REDIS:-}" ]] && runs+=("$FFSERVER API REDIS_URL=redis://127.0.0.1:${redis_port}")
    declare -A got=()
    n=${#runs[@]}
    for ((i = 0; i < n; i++)); do
      run=${runs[$(((i + round) % n))]}
      read -r binary target vars <<<"$run" # "BINARY TARGET [VAR=VALUE]"
      # shellcheck disable=SC2086 # vars: none or one word
      got[$run]=$(rps "$binary" "$target" "$procs" $vars)
    done
    hello=${got["$FFSERVER Hello"]} api=${got["$FFSERVER API"]}
    r=$(ratio "$api" "$hello")
    echo "$r" >>"$OUT/ratios-$procs.txt"
    if [[ -n "${BEFORE:-}" ]]; then
      bh=${got["$BEFORE Hello"]} ba=${got["$BEFORE API"]}
      br=$(ratio "$ba" "$bh")
      echo "$br" >>"$OUT/ratios-before-$procs.txt"
      printf '%-10s %-6s %12s %12s %8s %12s %12s %8s\n' "$procs" "$round" "$hello" "$api" "$r" "$bh" "$ba" "$br"
    elif [[ -n "${REDIS:-}" ]]; then
      ra=${got["$FFSERVER API REDIS_URL=redis://127.0.0.1:${redis_port}"]}
      rr=$(ratio "$ra" "$hello") ri=$(ratio "$ra" "$api")
      echo "$rr" >>"$OUT/ratios-redis-$procs.txt"
      echo "$ri" >>"$OUT/ratios-redis-instance-$procs.txt"
      printf '%-10s %-6s %12s %12s %8s %12s %8s %8s\n' "$procs" "$round" "$hello" "$api" "$r" "$ra" "$rr" "$ri"
    else
      printf '%-10s %-6s %12s %12s %8s\n' "$procs" "$round" "$hello" "$api" "$r"
    fi
    unset got
  done
  echo "GOMAXPROCS=$procs median keygate/hello: $(median <"$OUT/ratios-$procs.txt") (ratios: $(tr '\n' ' ' <"$OUT/ratios-$procs.txt"))"
  if [[ -n "${REDIS:-}" ]]; then
    echo "GOMAXPROCS=$procs median keygate-with-redis/hello: $(median <"$OUT/ratios-redis-$procs.txt") (ratios: $(tr '\n' ' ' <"$OUT/ratios-redis-$procs.txt"))"
    echo "GOMAXPROCS=$procs median keygate-with-redis/keygate: $(median <"$OUT/ratios-redis-instance-$procs.txt") (ratios: $(tr '\n' ' ' <"$OUT/ratios-redis-instance-$procs.txt"))"
  fi
  if [[ -n "${BEFORE:-}" ]]; then
    echo "GOMAXPROCS=$procs median before/hello-before: $(median <"$OUT/ratios-before-$procs.txt") (ratios: $(tr '\n' ' ' <"$OUT/ratios-before-$procs.txt"))"
  fi
done
