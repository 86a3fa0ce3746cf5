#!/usr/bin/env bash
# Scheduler benchmark: 10,000 flow bindings (half scheduled, half reactive) on SQLite (as
# `weir up` embeds it) and on PostgreSQL, with the real scheduler loop and in-process executors
# (see control-plane/flows/examples/scheduler_bench.rs). Prints one JSON line per scenario and
# backend. The peer in the same run is each database's own `SELECT 1` round trip. Not part of
# the test suite.
#
#   tests/bench/flows.sh [FLOWS]     (default 10,000)
set -euo pipefail
cd "$(dirname "$0")/../.."
FLOWS=${1:-10000}
PG=${WEIR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
cargo build -q --profile perf -p weir-flows --example scheduler_bench
BIN=${CARGO_TARGET_DIR:-target}/perf/examples/scheduler_bench

fresh_pg() {
  local name="weir_bench_$(date +%s%N)"
  psql "$PG" -qc "CREATE DATABASE $name" >/dev/null
  echo "${PG%/*}/$name"
}

# Scenario "light": 50 input commits/s, schedules every 600 s (none fire in the 30 s window).
# Scenario "loaded": 100 input commits/s, schedules every 60 s (all 5,000 fire within the 60 s
# window, in a wave as wide as the time it took to configure them).
for scenario in "light 30 600s 50" "loaded 60 60s 100"; do
  set -- $scenario
  for backend in sqlite postgres; do
    url=sqlite
    [ "$backend" = postgres ] && url=$(fresh_pg)
    printf '{"scenario":"%s",' "$1"
    "$BIN" "$url" "$FLOWS" "$2" "$3" "$4" | sed 's/^{//'
  done
done
