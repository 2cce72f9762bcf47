#!/usr/bin/env bash
# Cold start (BENCHMARKS.md, issue 30): the time from starting a function
# served by the Functions Framework (bench/ffserver, as Cloud Run runs it)
# to its first 200, for three functions in the same run:
#
#   hello     FUNCTION_TARGET=Hello, K_SERVICE set: the same GET / answer
#             without keygate
#   api       FUNCTION_TARGET=API with K_SERVICE set, as on Cloud Run: the
#             Gate built when the instance starts (apikey.FunctionFrom)
#   api-lazy  FUNCTION_TARGET=API without K_SERVICE: the Gate built by the
#             first request, as before issue 30
#
#   bench/coldstart.sh            # RUNS=5
#   BASE=fd1ddfc bench/coldstart.sh
#
# With BASE (a commit), a fourth column, api-base: the api function built
# from that commit (git archive), started in each round beside the others,
# to see what a change does to the cold start.
#
# Uses the emulator named by FIRESTORE_EMULATOR_HOST, or starts one (gcloud
# emulators firestore, on a free loopback port) and stops it afterwards.
# Builds bench/ffserver and cmd/apikey, mints a key with the CLI in a project
# of its own, then RUNS rounds, each starting the three in turn: start it (a
# new process group, on a free port), poll GET / with the key with curl
# every 2 ms until it answers 200, kill the group. One unmeasured round
# first warms the emulator (its JVM), as an emulator that has served
# traffic is closer to Firestore than a just-started one. Prints every time,
# the medians and their ratios to hello's. Loopback only; bounded: 90 s for
# the emulator, 30 s per start.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

RUNS=${RUNS:-5}
out_dir coldstart
need curl setsid python3 sleep
trap stop_groups EXIT

machine | tee "$OUT/machine.txt"
echo "out:     $OUT"

emulator "$OUT/emulator.log"
export GOOGLE_CLOUD_PROJECT="demo-kg-coldstart-$$"
echo "emulator: $FIRESTORE_EMULATOR_HOST, project $GOOGLE_CLOUD_PROJECT"

go build -o "$OUT/ffserver" ./bench/ffserver
BASE=${BASE:-}
if [[ -n $BASE ]]; then
  mkdir -p "$OUT/base"
  git archive "$BASE" | tar -x -C "$OUT/base"
  (cd "$OUT/base" && go build -o "$OUT/ffserver-base" ./bench/ffserver)
  stat -c "%s bytes %n" "$OUT/ffserver" "$OUT/ffserver-base" | tee "$OUT/sizes.txt"
fi
go build -o "$OUT/apikey" ./cmd/apikey
# A cold emulator on a loaded machine can take longer than STORE_TIMEOUT.
key=$(STORE_TIMEOUT=30s timeout 60 "$OUT/apikey" create --owner bench --name coldstart 2>"$OUT/apikey.log")

# usec: the time in microseconds, without starting a process.
usec() { USEC=${EPOCHREALTIME//[!0-9]/}; }

# one_run NAME N VAR=VALUE...: starts ffserver ($FF, default this tree's)
# with the variables, times it, kills it; sets RESULT to the ms from process start to the first 200
# (until the curl that got it exits).
one_run() {
  local name=$1 n=$2 port t0 code pid log
  shift 2
  port=$(free_port)
  log="$OUT/$name.$n.log"
  usec
  t0=$USEC
  start_group "$log" env PORT="$port" "$@" "${FF:-$OUT/ffserver}"
  pid=$STARTED_PID
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "X-API-Key: $key" "http://127.0.0.1:$port/" || true)
    [[ $code == 200 ]] && break
    if [[ $code != 000 ]]; then
      echo "$name run $n: GET / answered $code" >&2
      cat "$log" >&2
      exit 1
    fi
    usec
    if ((USEC - t0 > 30000000)); then
      echo "$name run $n: no 200 within 30 s" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.002
  done
  usec
  stop_group "$pid"
  RESULT=$(awk -v t=$((USEC - t0)) 'BEGIN {printf "%.1f", t / 1e3}')
}

# round N: one start of each function, in turn.
round() {
  one_run hello "$1" FUNCTION_TARGET=Hello K_SERVICE=keygate-coldstart
  hello=$RESULT
  one_run api "$1" FUNCTION_TARGET=API K_SERVICE=keygate-coldstart
  api=$RESULT
  one_run api-lazy "$1" FUNCTION_TARGET=API
  lazy=$RESULT
  base=
  if [[ -n $BASE ]]; then
    FF="$OUT/ffserver-base" one_run api-base "$1" FUNCTION_TARGET=API K_SERVICE=keygate-coldstart
    base=$RESULT
  fi
}

round 0
echo "columns: ms from process start to the first 200: hello, api (K_SERVICE set), api-lazy (without)${BASE:+, api-base (api at $BASE)}"
echo "warm-up round (not counted): $hello $api $lazy $base"
: >"$OUT/times.txt"
for i in $(seq "$RUNS"); do
  round "$i"
  echo "round $i: $hello $api $lazy $base"
  echo "$hello $api $lazy $base" >>"$OUT/times.txt"
done
h=$(cut -d' ' -f1 "$OUT/times.txt" | median)
a=$(cut -d' ' -f2 "$OUT/times.txt" | median)
l=$(cut -d' ' -f3 "$OUT/times.txt" | median)
echo
echo "medians of $RUNS: hello $h ms, api $a ms ($(ratio "$a" "$h")x hello), api-lazy $l ms ($(ratio "$l" "$h")x hello)"
if [[ -n $BASE ]]; then
  b=$(cut -d' ' -f4 "$OUT/times.txt" | median)
  echo "api-base ($BASE) $b ms ($(ratio "$b" "$h")x hello); api $(ratio "$a" "$b")x api-base"
fi
