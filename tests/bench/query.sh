#!/usr/bin/env bash
# Query benchmark: starts the real `weir up` (perf profile) on a fresh data directory, ingests a
# seeded 10,000,000-row events dataset, then runs tests/bench/query_bench.py: 12 ClickBench-shaped
# queries through Weir's POST /query, raw DataFusion and DuckDB on the same Parquet files, and a
# small query under load against Weir and ROAPI. Prints markdown. Not part of the test suite.
#
#   tests/bench/query.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-10000000}
WORK=${WEIR_BENCH_DIR:-/tmp/weir-query-bench}
rm -rf "$WORK" && mkdir -p "$WORK"

python3 -m pip install -q --disable-pip-version-check duckdb datafusion pyarrow numpy pytz roapi >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
if [ -z "${WEIR_BENCH_SKIP_BUILD:-}" ]; then
  cargo build -q --profile perf -p weir-local
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
RUST_LOG=warn "${WEIR_BIN:-target/perf/weir}" up --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" \
  --flightsql-listen "127.0.0.1:$(free_port)" >"$WORK/weir.log" 2>&1 &
WEIR_PID=$!
trap 'kill $WEIR_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/data/admin.token" ] && break; sleep 0.1; done

python3 tests/bench/query_bench.py --weir "http://127.0.0.1:$PORT" --token "$(cat "$WORK/data/admin.token")" \
  --data-dir "$WORK/data" --work-dir "$WORK" --rows "$ROWS"
echo
echo "peak RSS of weir up: $(grep VmHWM /proc/$WEIR_PID/status | awk '{print $2}') KiB"
