# Shared helpers of the bench/ scripts; source it, do not run it.
# shellcheck shell=bash

# The machine a figure was measured on, for BENCHMARKS.md.
machine() {
  echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "go:      $(go version)"
  echo "nproc:   $(nproc)"
  echo "cpu:     $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "kernel:  $(uname -sr)"
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
  echo "commit:  $(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$(dirname "${BASH_SOURCE[0]}")" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
}

# free_port prints a loopback TCP port that was free a moment ago.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# median prints the median of the numbers on standard input, one a line.
median() {
  sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) { print "NaN"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
  }'
}

# Process groups started by start_group, ended by stop_groups.
BENCH_GROUPS=()

# start_group LOG CMD... runs CMD in a process group of its own (setsid),
# its output in LOG, and sets STARTED_PID to its pid (= its group id).
start_group() {
  local log=$1
  shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  STARTED_PID=$!
  BENCH_GROUPS+=("$STARTED_PID")
}

# stop_group PID ends the group PID started by start_group: TERM, then KILL
# after 5 s; and forgets it.
stop_group() {
  local pid=$1 rest=() p
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${BENCH_GROUPS[@]}"; do
    [[ $p == "$pid" ]] || rest+=("$p")
  done
  BENCH_GROUPS=("${rest[@]}")
}

# stop_groups ends every group started by start_group and not yet ended.
stop_groups() {
  local pid
  for pid in "${BENCH_GROUPS[@]}"; do
    stop_group "$pid"
  done
}

# wait_line FILE PATTERN SECONDS waits until FILE holds a line matching
# PATTERN and prints the first such line.
wait_line() {
  local file=$1 pattern=$2 seconds=$3 i
  for ((i = 0; i < seconds * 10; i++)); do
    if grep -q -m1 -- "$pattern" "$file" 2>/dev/null; then
      grep -m1 -- "$pattern" "$file"
      return 0
    fi
    sleep 0.1
  done
  echo "timed out after ${seconds}s waiting for /$pattern/ in $file:" >&2
  cat "$file" >&2
  return 1
}

# no_emulator_start sets FIRESTORE_EMULATOR_HOST, when unset, to a port where
# nothing listens, for test binaries run with a -test.run other than '^$'
# (http.sh's TestBenchServe): their TestMain (internal/emulator) would
# otherwise start a JVM Firestore emulator, which competes with the
# benchmarks for the CPUs. TestMain then waits 5 s and carries on without it.
no_emulator_start() {
  if [[ -z "${FIRESTORE_EMULATOR_HOST:-}" ]]; then
    export FIRESTORE_EMULATOR_HOST=127.0.0.1:1
  fi
}

# out_dir NAME sets OUT, when unset, to a new temporary folder named after
# NAME, and creates it: where a script leaves its logs and results.
out_dir() {
  OUT=${OUT:-$(mktemp -d "/tmp/keygate-$1.XXXXXX")}
  mkdir -p "$OUT"
}

# need TOOL... fails unless every TOOL is on the PATH, naming the package
# that brings it.
need() {
  local tool pkg
  for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    case $tool in
      setsid | taskset) pkg=util-linux ;;
      sleep | timeout) pkg=coreutils ;;
      *) pkg=$tool ;;
    esac
    echo "bench/$(basename "$0") needs $tool (apt-get install -y $pkg)" >&2
    exit 1
  done
}

# emulator LOG makes sure a Firestore emulator answers at
# FIRESTORE_EMULATOR_HOST and exports it: when it is unset, starts one on a
# free loopback port (its output in LOG; stop_groups ends it) and waits up
# to 90 s for it, failing as soon as it exits.
emulator() {
  local log=$1 pid
  if [[ -z "${FIRESTORE_EMULATOR_HOST:-}" ]]; then
    need gcloud
    FIRESTORE_EMULATOR_HOST="127.0.0.1:$(free_port)"
    echo "starting the Firestore emulator on $FIRESTORE_EMULATOR_HOST" >&2
    start_group "$log" gcloud emulators firestore start --host-port="$FIRESTORE_EMULATOR_HOST" --quiet
    pid=$STARTED_PID
    for _ in $(seq 180); do
      curl -sf "http://$FIRESTORE_EMULATOR_HOST/" >/dev/null && break
      kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "the emulator exited" >&2; exit 1; }
      sleep 0.5
    done
  fi
  curl -sf "http://$FIRESTORE_EMULATOR_HOST/" >/dev/null || { echo "no emulator answers on $FIRESTORE_EMULATOR_HOST" >&2; exit 1; }
  export FIRESTORE_EMULATOR_HOST
}

# wait_ok NAME URL LOG waits up to 30 s for GET URL with the key KEY to
# answer 200, and fails with LOG (the server's) if it does not.
wait_ok() {
  local name=$1 url=$2 log=$3 code
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "$url" || true)
    [[ $code == 200 ]] && return 0
    sleep 0.1
  done
  echo "$name answered $code" >&2
  cat "$log" >&2
  exit 1
}

# wrk_rps NAME URL LOG [FAILED] runs wrk -t$THREADS -c$CONNS with the key
# KEY against URL, WARMUP seconds unmeasured then DURATION seconds into LOG,
# fails if LOG matches the grep pattern FAILED (default: any non-2xx
# answer), and prints the requests per second.
wrk_rps() {
  local name=$1 url=$2 log=$3 failed=${4:-Non-2xx}
  wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -H "X-API-Key: $KEY" "$url" >/dev/null
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "X-API-Key: $KEY" "$url" >"$log"
  if grep -q -- "$failed" "$log"; then
    echo "$name: some requests failed" >&2
    cat "$log" >&2
    exit 1
  fi
  awk '/^Requests\/sec:/ {print $2}' "$log"
}

# ratio A B prints A/B to three decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
