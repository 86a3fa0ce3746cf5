#!/usr/bin/env bash
# Transform benchmark: derivative throughput (full and incremental step) against raw DataFusion
# and DuckDB on the same Parquet, and push → derivative latency under `weir up`. Prints markdown
# tables (see tests/bench/transform_bench.py for what is timed). Not part of the test suite.
#
#   tests/bench/transform.sh [ROWS]     (default 10,000,000)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-10000000}
RUNS=${WEIR_BENCH_RUNS:-3}
WORK=${WEIR_BENCH_DIR:-/tmp/weir-bench}
mkdir -p "$WORK"

python3 -m pip install -q --disable-pip-version-check duckdb pyarrow datafusion >/dev/null
INCREMENT=$((ROWS / 100))
[ -f "$WORK/events-$ROWS.csv" ] || python3 tests/bench/generate.py --rows "$ROWS" --out "$WORK/events-$ROWS"
[ -f "$WORK/increment-$INCREMENT.csv" ] ||
  python3 tests/bench/generate.py --rows "$INCREMENT" --seed 7 --out "$WORK/increment-$INCREMENT"
# The same number of rows again, with event times after all the others: data in order. One
# file per query, each later than the one before.
for q in 1 2; do
  [ -f "$WORK/in-order-$q-$INCREMENT.csv" ] ||
    python3 tests/bench/generate.py --rows "$INCREMENT" --seed 8 --first "$((ROWS * (1 + q)))" --out "$WORK/in-order-$q-$INCREMENT"
done

if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
if [ -z "${WEIR_BENCH_SKIP_BUILD:-}" ]; then
  cargo build -q --profile perf -p weir-local
fi
BIN=${CARGO_TARGET_DIR:-target}/perf

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DATA=$(mktemp -d "$WORK/node.XXXX")
PORT=$(free_port)
cat >"$DATA/config.yaml" <<YAML
ingest:
  max_body_bytes: 17179869184
YAML
RUST_LOG=warn "$BIN/weir" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" \
  --flightsql-listen "127.0.0.1:$(free_port)" --config "$DATA/config.yaml" >"$DATA/up.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 200); do [ -s "$DATA/admin.token" ] && curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

python3 tests/bench/transform_bench.py --url "http://127.0.0.1:$PORT" --token "$(cat "$DATA/admin.token")" \
  --data-dir "$DATA" --full "$WORK/events-$ROWS.csv" --increment "$WORK/increment-$INCREMENT.csv" \
  --in-order "$WORK/in-order-1-$INCREMENT.csv,$WORK/in-order-2-$INCREMENT.csv" \
  --runs "$RUNS" --work "$WORK"
