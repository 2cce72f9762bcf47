#!/usr/bin/env bash
# End-to-end HTTP benchmark of issue 6 (BENCHMARKS.md, item 2): wrk against
# keygate with and without the auth middleware, on loopback.
#
#   bench/http.sh                       # ROUNDS=5 DURATION=10 CONNS=16
#   ROUNDS=3 DURATION=5 SUITES=get-server bench/http.sh
#
# Suites (SUITES, default all three):
#   get-server  GET / through bench/server: -mode auth is keygate.Handler on
#               an apikey.Gate, the deployed handler (auth, router, limits,
#               metering);
#               -mode bare is the same route and response without any of it.
#   get-mux     GET / through the package's test binary (TestBenchServe):
#               one ServeMux with the package's own handlers, behind the
#               auth middleware or not; they differ by the middleware alone.
#   bingo       POST /v1/bingo/check (bench/bingo.lua), same two servers as
#               get-mux; with auth it also checks the bingo:check scope.
# Every request carries a valid key, cached after the first request.
# MUX_BINARY=FILE uses that test binary of the package for get-mux and bingo
# instead of building one: bench/tuning.sh leaves the "before" one in its
# OUT, so that the ratios before a tuning change can be measured too.
#
# The servers run with GOMAXPROCS=1 pinned to CPU SERVER_CPU (default 1),
# wrk with one thread pinned to CLIENT_CPU (default 0), so that client and
# server do not take turns on one core. Each round runs wrk on both servers
# of a suite back to back (bare then auth, auth then bare in the next
# round), each after WARMUP seconds of unmeasured load; the ratios are
# taken within a round, then their median over ROUNDS. Takes about
# 3 suites x ROUNDS x 2 x (WARMUP + DURATION) seconds: 6 min by default.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source bench/lib.sh

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-16}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
SUITES=${SUITES:-get-server get-mux bingo}
out_dir http
need wrk curl taskset setsid
no_emulator_start
trap stop_groups EXIT

machine | tee "$OUT/machine.txt"
echo "wrk:     $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), -t1 -c$CONNS, ${DURATION}s after ${WARMUP}s warm-up, $ROUNDS rounds"
echo "pinning: servers GOMAXPROCS=1 on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"
echo "out:     $OUT"
go build -o "$OUT/server" ./bench/server
MUX_BINARY=${MUX_BINARY:-}
if [[ -z "$MUX_BINARY" ]]; then
  go test -c -o "$OUT/keygate.test" .
  MUX_BINARY=$OUT/keygate.test
fi
echo "mux:     $MUX_BINARY"

# start NAME CMD...: starts a server, pinned, and sets ADDR_NAME and KEY_NAME.
start() {
  local name=$1
  shift
  start_group "$OUT/$name.log" env GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$@"
  local addr key
  addr=$(wait_line "$OUT/$name.log" '^addr=' 60)
  key=$(wait_line "$OUT/$name.log" '^key=' 5)
  printf -v "ADDR_${name//-/_}" '%s' "${addr#addr=}"
  printf -v "KEY_${name//-/_}" '%s' "${key#key=}"
}

# expect CODE CURL-ARGS...: fails unless curl gets CODE.
expect() {
  local want=$1 got
  shift
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@")
  [[ "$got" == "$want" ]] || { echo "curl $*: got $got, want $want" >&2; exit 1; }
}

bingo_body=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" bench/bingo.lua)
started=" "
for suite in $SUITES; do
  case $suite in
    get-server)
      [[ $started == *" server "* ]] && continue
      start server-auth "$OUT/server" -mode auth
      start server-bare "$OUT/server" -mode bare
      started+="server "
      ;;
    get-mux | bingo)
      [[ $started == *" mux "* ]] && continue
      start mux-auth env KEYGATE_BENCH_SERVE=auth "$MUX_BINARY" -test.run '^TestBenchServe$' -test.timeout 0
      start mux-bare env KEYGATE_BENCH_SERVE=bare "$MUX_BINARY" -test.run '^TestBenchServe$' -test.timeout 0
      started+="mux "
      ;;
    *)
      echo "unknown suite $suite" >&2
      exit 2
      ;;
  esac
done

# Check that auth is on where it should be and that every request succeeds.
for srv in server mux; do
  [[ $started == *" $srv "* ]] || continue
  a="ADDR_${srv}_auth" k="KEY_${srv}_auth" b="ADDR_${srv}_bare"
  expect 401 "http://${!a}/"
  expect 200 -H "X-API-Key: ${!k}" "http://${!a}/"
  expect 200 -H "X-API-Key: ${!k}" "http://${!b}/"
  if [[ $srv == mux ]]; then
    expect 401 -X POST -H 'Content-Type: application/json' --data "$bingo_body" "http://${!a}/v1/bingo/check"
    for addr in "${!a}" "${!b}"; do
      expect 200 -X POST -H "X-API-Key: ${!k}" -H 'Content-Type: application/json' --data "$bingo_body" "http://$addr/v1/bingo/check"
    done
  fi
done

# to_us VALUE: a wrk latency (850.00us, 1.20ms, 1.00s) in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /m$/) print n * 60e6; else print n * 1e6
  }'
}

# bench SUITE ROUND VARIANT: one wrk run, appended to results.tsv.
bench() {
  local suite=$1 round=$2 variant=$3 srv path script=()
  case $suite in
    get-server) srv=server path=/ ;;
    get-mux) srv=mux path=/ ;;
    bingo) srv=mux path=/v1/bingo/check script=(-s bench/bingo.lua) ;;
  esac
  local a="ADDR_${srv}_${variant}" k="KEY_${srv}_auth"
  local url="http://${!a}$path" log="$OUT/wrk.$suite.$round.$variant.txt"
  timeout $((WARMUP + 30)) taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" \
    -H "X-API-Key: ${!k}" "${script[@]}" "$url" >/dev/null
  timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
    -H "X-API-Key: ${!k}" "${script[@]}" "$url" >"$log"
  if grep -q 'Non-2xx' "$log"; then
    echo "$suite $variant: wrk got error responses:" >&2
    cat "$log" >&2
    exit 1
  fi
  local rps p50 p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$log")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$log")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$log")")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$suite" "$round" "$variant" "$rps" "$p50" "$p99" | tee -a "$OUT/results.tsv"
}

printf 'suite\tround\tvariant\trps\tp50_us\tp99_us\n' | tee "$OUT/results.tsv"
for round in $(seq "$ROUNDS"); do
  for suite in $SUITES; do
    if ((round % 2)); then order=(bare auth); else order=(auth bare); fi
    for variant in "${order[@]}"; do
      bench "$suite" "$round" "$variant"
    done
  done
done

# col SUITE VARIANT FIELD: that column's values, one a line.
col() { awk -F'\t' -v s="$1" -v v="$2" -v f="$3" '$1 == s && $3 == v {print $f}' "$OUT/results.tsv"; }
# ratios SUITE FIELD: auth/bare of FIELD per round, one a line.
ratios() {
  awk -F'\t' -v s="$1" -v f="$2" '$1 == s {x[$2, $3] = $f; r[$2] = 1}
    END {for (i = 1; i in r; i++) if (x[i, "bare"] > 0) printf "%.4f\n", x[i, "auth"] / x[i, "bare"]}' "$OUT/results.tsv"
}

echo
echo "| suite | variant | requests/s | p50 µs | p99 µs |"
echo "|---|---|---|---|---|"
for suite in $SUITES; do
  for variant in bare auth; do
    echo "| $suite | $variant | $(col "$suite" $variant 4 | median) | $(col "$suite" $variant 5 | median) | $(col "$suite" $variant 6 | median) |"
  done
done
echo
echo "| suite | auth/bare requests/s per round | median | p50 auth/bare | p99 auth/bare |"
echo "|---|---|---|---|---|"
for suite in $SUITES; do
  echo "| $suite | $(ratios "$suite" 4 | tr '\n' ' ')| **$(ratios "$suite" 4 | median)** | $(ratios "$suite" 5 | median) | $(ratios "$suite" 6 | median) |"
done
