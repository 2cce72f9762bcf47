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
