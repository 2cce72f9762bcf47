#!/usr/bin/env bash
# N processes of the CLI at once, each setting the plan of an owner of its
# own, on the Firestore emulator at FIRESTORE_EMULATOR_HOST, in a project of
# their own: how many fail, and how long the slowest took (issue 19).
#
#   FIRESTORE_EMULATOR_HOST=127.0.0.1:8091 bash bench/cli-writers.sh [N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
n=${1:-20}
rounds=${2:-3}
: "${FIRESTORE_EMULATOR_HOST:?set it to a running Firestore emulator}"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/apikey" ./cmd/apikey
machine
for round in $(seq 1 "$rounds"); do
  export GOOGLE_CLOUD_PROJECT="demo-cli-writers-$round-$RANDOM"
  "$bin/apikey" plan set warm-up --max-keys 1 >/dev/null # the project's first call is slow
  start=$(date +%s%N)
  for i in $(seq 1 "$n"); do
    (rc=0; "$bin/apikey" plan set "owner-$i" --max-keys "$i" >/dev/null 2>"$bin/$i.err" || rc=$?; echo "$rc" >"$bin/$i.rc") &
  done
  wait
  took=$((($(date +%s%N) - start) / 1000000))
  failed=$(cat "$bin"/*.rc | grep -cvxF 0 || true)
  echo "round $round: $n plan sets at once, $failed failed, all done in $took ms"
  cat "$bin"/*.err | cut -c1-160 | sort | uniq -c
  rm -f "$bin"/*.rc "$bin"/*.err
done
