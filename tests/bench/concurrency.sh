#!/usr/bin/env bash
# Concurrent pushes into one dataset (hardening, item 10). Prints a markdown table:
#  - "weir up": WRITERS writers x PUSHES pushes of 10 records each into one dataset of one
#    `weir up` process (ingest, control plane and query in one process, SQLite, local files);
#  - "2 processes": the same load split over two `weir-ingest` processes writing one dataset on
#    the same storage directory (they can only coordinate through the head's compare-and-swap).
# For each: pushes that failed, latency p50/p99/max, throughput, and the objects no chain refers
# to right after the run and after `POST /admin/sweep?graceSeconds=0`.
# WEIR_BENCH_BASELINE=DIR measures the binaries in DIR (an older build) in the same run, as the
# peer. Not part of the test suite.
#
#   tests/bench/concurrency.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WEIR_BENCH_DIR:-/tmp/weir-bench-concurrency}
WRITERS=${WEIR_BENCH_WRITERS:-8}
PUSHES=${WEIR_BENCH_PUSHES:-50}
mkdir -p "$WORK"
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
if [ -z "${WEIR_BENCH_SKIP_BUILD:-}" ]; then
  cargo build -q --profile perf -p weir-ingest -p weir-local
fi
BIN=${CARGO_TARGET_DIR:-target}/perf

cat >"$WORK/manifest.yaml" <<'YAML'
kind: DatasetSnapshot
version: 1
content:
  name: bench.events
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: NdJson
        schema:
          fields:
            - {name: event_time, type: Timestamp}
            - {name: writer, type: String}
            - {name: seq, type: Int64}
      merge:
        kind: Append
YAML

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "nothing answers $1" >&2; exit 1; }

# up BIN DATA -> starts `weir up` on DATA; sets UP_PID, UP_URL, TOKEN
up() {
  local port fport
  port=$(free_port); fport=$(free_port)
  RUST_LOG=warn "$1/weir" up --data-dir "$2" --listen "127.0.0.1:$port" \
    --flightsql-listen "127.0.0.1:$fport" >"$2/up.log" 2>&1 &
  UP_PID=$!
  UP_URL="http://127.0.0.1:$port"
  wait_http "$UP_URL/healthz"
  TOKEN=$(cat "$2/admin.token")
}

# unreferenced DATA OK -> objects of the dataset no chain refers to: blocks beyond the chain's
# length, data files beyond one per successful push, and staging leftovers.
unreferenced() {
  local dir chain blocks data staging
  dir=$(ls -d "$1"/datasets/did:odf:* | head -n1)
  # A dataset written by other processes is indexed by the control plane's first repair.
  for _ in $(seq 1 100); do
    chain=$(curl -sf "$UP_URL/datasets/admin/bench.events/blocks?limit=1" -H "Authorization: Bearer $TOKEN" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["sequenceNumber"] + 1)' 2>/dev/null) && break
    sleep 0.2
  done
  blocks=$(ls "$dir/blocks" 2>/dev/null | wc -l)
  data=$(ls "$dir/data" 2>/dev/null | wc -l)
  staging=$(ls "$dir/staging" 2>/dev/null | wc -l)
  echo $(( blocks - chain + data - $2 + staging ))
}

sweep() {
  curl -s -o /dev/null -X POST "$UP_URL/admin/sweep?graceSeconds=0" -H "Authorization: Bearer $TOKEN" || true
}

field() { python3 -c "import json,sys; print(json.load(open('$1'))['$2'])"; }

row() { # LABEL SETUP RESULT BEFORE AFTER
  printf '| %s | %s | %s/%s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$(field "$3" failed)" \
    "$(field "$3" pushes)" "$(field "$3" p50_ms)" "$(field "$3" p99_ms)" "$(field "$3" max_ms)" \
    "$(field "$3" pushes_per_s)" "$4" "$5"
}

one_process() { # BIN LABEL
  local data; data=$(mktemp -d "$WORK/up.XXXX")
  up "$1" "$data"
  curl -sf -X POST "$UP_URL/datasets" -H "Authorization: Bearer $TOKEN" \
    -H 'content-type: application/yaml' --data-binary @"$WORK/manifest.yaml" >/dev/null
  python3 tests/bench/concurrent_pushes.py --url "$UP_URL/admin/bench.events/ingest" --token "$TOKEN" \
    --writers "$WRITERS" --pushes "$PUSHES" >"$WORK/result.json"
  local ok before after
  ok=$(field "$WORK/result.json" ok)
  before=$(unreferenced "$data" "$ok")
  sweep; after=$(unreferenced "$data" "$ok")
  row "$2" "weir up" "$WORK/result.json" "$before" "$after"
  kill -TERM "$UP_PID"; wait "$UP_PID" || true
  rm -rf "$data"
}

two_processes() { # BIN LABEL [ENV...]
  local data p1 p2
  data=$(mktemp -d "$WORK/two.XXXX")
  "$1/weir" create "$WORK/manifest.yaml" --data-dir "$data" --account admin >/dev/null
  p1=$(free_port); p2=$(free_port)
  for port in "$p1" "$p2"; do
    PORT=$port WEIR_LISTEN_HOST=127.0.0.1 WEIR__STORAGE__KIND=local_fs \
      WEIR__STORAGE__ROOT_DIR="$data/datasets" WEIR_CONFIG_PATH=/dev/null \
      env "${@:3}" RUST_LOG=warn "$1/weir-ingest" >>"$data/ingest.log" 2>&1 &
  done
  pids=$(jobs -p | tail -n 2)
  wait_http "http://127.0.0.1:$p1/healthz"; wait_http "http://127.0.0.1:$p2/healthz"
  python3 tests/bench/concurrent_pushes.py --url "http://127.0.0.1:$p1/admin/bench.events/ingest" \
    --url "http://127.0.0.1:$p2/admin/bench.events/ingest" \
    --writers "$WRITERS" --pushes "$PUSHES" >"$WORK/result.json"
  kill -TERM $pids; wait $pids 2>/dev/null || true
  up "$1" "$data"
  local ok before after
  ok=$(field "$WORK/result.json" ok)
  before=$(unreferenced "$data" "$ok")
  sweep; after=$(unreferenced "$data" "$ok")
  row "$2" "2 processes" "$WORK/result.json" "$before" "$after"
  kill -TERM "$UP_PID"; wait "$UP_PID" || true
  rm -rf "$data"
}

echo "$WRITERS writers x $PUSHES pushes of 10 records into one dataset"
echo
printf '| build | setup | failed | p50 ms | p99 ms | max ms | pushes/s | unreferenced objects after the run | after the sweep |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for round in 1 2; do
  one_process "$BIN" "this build"
  if [ -n "${WEIR_BENCH_BASELINE:-}" ]; then one_process "$WEIR_BENCH_BASELINE" "baseline"; fi
  # Functions without a control plane fail closed now; the baseline predates that.
  two_processes "$BIN" "this build" WEIR__OPEN_ACCESS=true
  if [ -n "${WEIR_BENCH_BASELINE:-}" ]; then two_processes "$WEIR_BENCH_BASELINE" "baseline" X=1; fi
done
