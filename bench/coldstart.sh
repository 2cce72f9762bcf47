#!/usr/bin/env bash
# Cold start of issue 6 (BENCHMARKS.md, item 4): the time from starting
# cmd/local on the Firestore emulator to its first authorized 200.
#
#   bench/coldstart.sh            # RUNS=5
#
# Uses the emulator named by FIRESTORE_EMULATOR_HOST, or starts one (gcloud
# emulators firestore, on a free loopback port) and stops it afterwards.
# Builds cmd/local and cmd/apikey, mints a key with the CLI in a project of
# its own, then RUNS times: starts cmd/local (a new process group, on a
# free port), waits for its port to accept connections, polls GET / with
# the key with curl until it answers 200, and kills the group. One unmeasured run first warms the emulator (its JVM),
# as an emulator that has served traffic is closer to Firestore than a
# just-started one. Prints every time and the median. Loopback only;
# bounded: 90 s for the emulator, 30 s per run.
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

go build -o "$OUT/local" ./cmd/local
go build -o "$OUT/apikey" ./cmd/apikey
key=$(timeout 60 "$OUT/apikey" create --owner bench --name coldstart 2>"$OUT/apikey.log")

# usec: the time in microseconds, without starting a process.
usec() { USEC=${EPOCHREALTIME//[!0-9]/}; }

# one_run N: starts cmd/local, times it, kills it; sets RESULT to
# "total_ms listen_ms request_ms": process start to the first authorized
# 200 (until the curl that got it exits); process start to the port
# accepting connections (bash's /dev/tcp, polled every 2 ms, no curl
# start-up in it); and the authorized request alone (curl's time_total: the
# function's lazy set-up, then the key's first Firestore read).
one_run() {
  local port t0 t_listen t_200 code timing pid
  port=$(free_port)
  usec
  t0=$USEC
  start_group "$OUT/local.$1.log" env HOST=127.0.0.1 PORT="$port" "$OUT/local"
  pid=$STARTED_PID
  until { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; do
    usec
    if ((USEC - t0 > 30000000)); then
      echo "run $1: port $port not listening within 30 s" >&2
      cat "$OUT/local.$1.log" >&2
      exit 1
    fi
    sleep 0.002
  done
  usec
  t_listen=$USEC
  exec 3>&-
  while :; do
    timing=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 -H "X-API-Key: $key" "http://127.0.0.1:$port/" || true)
    code=${timing%% *}
    [[ $code == 200 ]] && break
    if [[ $code != 000 ]]; then
      echo "run $1: GET / answered $code" >&2
      cat "$OUT/local.$1.log" >&2
      exit 1
    fi
    usec
    if ((USEC - t0 > 30000000)); then
      echo "run $1: no 200 within 30 s" >&2
      cat "$OUT/local.$1.log" >&2
      exit 1
    fi
    sleep 0.002
  done
  usec
  t_200=$USEC
  stop_group "$pid"
  RESULT=$(awk -v t=$((t_200 - t0)) -v l=$((t_listen - t0)) -v r="${timing#* }" \
    'BEGIN {printf "%.1f %.1f %.1f", t / 1e3, l / 1e3, r * 1000}')
}

one_run 0
echo "columns: ms to the first authorized 200, ms to listening, ms of the authorized request"
echo "warm-up run (not counted): $RESULT"
: >"$OUT/times.txt"
for i in $(seq "$RUNS"); do
  one_run "$i"
  echo "run $i: $RESULT"
  echo "$RESULT" >>"$OUT/times.txt"
done
echo
echo "process start -> first authorized 200, median of $RUNS: $(cut -d' ' -f1 "$OUT/times.txt" | median) ms" \
  "(listening after $(cut -d' ' -f2 "$OUT/times.txt" | median) ms; the authorized request took $(cut -d' ' -f3 "$OUT/times.txt" | median) ms; medians)"
