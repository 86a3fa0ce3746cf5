#!/usr/bin/env bash
# Push-ingest benchmark: a seeded 1,000,000-row events file (NDJSON and CSV, 10 columns) is
# pushed through the HTTP path of the real weir-ingest binary (perf profile), and in the same run
# converted to Parquet by DuckDB and by pyarrow on the same cores. Prints a markdown table of
# wall time, rows/s, ratio to DuckDB, CPU time and peak RSS (median of WEIR_BENCH_RUNS runs,
# default 5, the tools taking turns). Like with like: Weir is timed on the request to a server
# that is already up, the peers inside their process on the conversion alone (no interpreter
# start or imports). Not part of the test suite.
#
#   tests/bench/ingest.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-1000000}
# Each tool runs this many times; the run with the median wall time is reported.
RUNS=${WEIR_BENCH_RUNS:-5}
WORK=${WEIR_BENCH_DIR:-/tmp/weir-bench}
mkdir -p "$WORK"

python3 -m pip install -q --disable-pip-version-check duckdb pyarrow >/dev/null
if [ ! -f "$WORK/events-$ROWS.ndjson" ]; then
  python3 tests/bench/generate.py --rows "$ROWS" --out "$WORK/events-$ROWS"
fi
# Same flags as ./local/test so the two share nothing but also rebuild nothing twice.
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
if [ -z "${WEIR_BENCH_SKIP_BUILD:-}" ]; then
  cargo build -q --profile perf -p weir-ingest -p weir-local
fi
BIN=${CARGO_TARGET_DIR:-target}/perf

cat >"$WORK/manifest.yaml" <<'YAML'
kind: DatasetSnapshot
version: 1
content:
  name: events
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: Csv
        header: true
        schema:
          fields:
            - {name: event_time, type: Timestamp}
            - {name: id, type: Int64}
            - {name: user_id, type: Int64}
            - {name: amount, type: Float64}
            - {name: score, type: Float64}
            - {name: country, type: String}
            - {name: device, type: String}
            - {name: session, type: String}
            - {name: created_at, type: Timestamp}
            - {name: flag, type: Int64}
      merge:
        kind: Append
YAML

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# CPU seconds (user + system) a process has used so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# weir FORMAT CONTENT_TYPE -> "seconds peak_rss_kib cpu_seconds"
weir() {
  local file=$1 content_type=$2 data port pid start end
  data=$(mktemp -d "$WORK/data.XXXX")
  "$BIN/weir" create "$WORK/manifest.yaml" --data-dir "$data" --account bench >/dev/null
  port=$(free_port)
  PORT=$port WEIR_LISTEN_HOST=127.0.0.1 WEIR__STORAGE__KIND=local_fs WEIR__STORAGE__ROOT_DIR="$data/datasets" WEIR__OPEN_ACCESS=true \
    WEIR_CONFIG_PATH=/dev/null RUST_LOG=warn "$BIN/weir-ingest" &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local cpu_before cpu_after
  cpu_before=$(cpu_seconds "$pid")
  start=$(date +%s.%N)
  curl -sf -X POST -H "content-type: $content_type" --upload-file "$file" \
    "http://127.0.0.1:$port/bench/events/ingest" >"$WORK/response.json"
  end=$(date +%s.%N)
  cpu_after=$(cpu_seconds "$pid")
  local rss
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  grep -q "\"numRecords\":$ROWS" "$WORK/response.json" || { echo "unexpected response: $(cat "$WORK/response.json")" >&2; exit 1; }
  rm -rf "$data"
  echo "$(echo "$end - $start" | bc) $rss $(echo "$cpu_after - $cpu_before" | bc)"
}

# python_tool SCRIPT -> "seconds peak_rss_kib cpu_seconds". Like Weir, which is timed on the
# request to a server already up, the peers are timed inside their process on the work alone:
# interpreter start and imports are left out of wall and CPU time (CPU from process_time, which
# counts every thread of the process). Peak RSS is the whole process's.
python_tool() {
  local script=$1 measured rss
  measured=$(mktemp "$WORK/measured.XXXX")
  rss=$( { /usr/bin/time -f "%M" python3 -c "
import time
$(echo "$script" | sed -n 1p)
wall, cpu = time.perf_counter(), time.process_time()
$(echo "$script" | sed -n '2,$p')
open('$measured', 'w').write(f'{time.perf_counter() - wall:.3f} {time.process_time() - cpu:.2f}\\n')
" >/dev/null; } 2>&1 | tail -n1)
  read -r seconds cpu <"$measured"
  rm -f "$measured"
  echo "$seconds $rss $cpu"
}

# Each peer script: imports on its first line, the timed work after it.
duckdb_script() { # FILE READER
  printf 'import duckdb\nduckdb.execute("COPY (SELECT * FROM %s(%s)) TO %s (FORMAT parquet)")\n' \
    "$2" "'$1'" "'$WORK/duckdb.parquet'"
}
pyarrow_script() { # FILE MODULE
  printf 'import pyarrow.%s as r, pyarrow.parquet as pq\npq.write_table(r.read_%s(%s), %s)\n' \
    "$2" "$2" "'$1'" "'$WORK/pyarrow.parquet'"
}

# median FILE -> the line of FILE with the median first field (wall seconds)
median() { sort -n "$1" | sed -n "$(( (RUNS + 1) / 2 ))p"; }

printf '| input | tool | wall s | rows/s | ratio to DuckDB | CPU s | peak RSS MiB | input MiB |\n|---|---|---|---|---|---|---|---|\n'
for format in ndjson csv; do
  file="$WORK/events-$ROWS.$format"
  size_mib=$(( $(stat -L -c %s "$file") / 1048576 ))
  if [ "$format" = ndjson ]; then
    content_type=application/x-ndjson; reader=read_json; module=json
    sed -i 's/kind: Csv/kind: NdJson/; /header: true/d' "$WORK/manifest.yaml"
  else
    content_type=text/csv; reader=read_csv; module=csv
  fi
  # Runs interleave the tools, so a machine that speeds up or slows down over the run
  # (CPU steal, frequency) affects all of them alike.
  rm -f "$WORK"/runs.*
  for _ in $(seq 1 "$RUNS"); do
    python_tool "$(duckdb_script "$file" "$reader")" >>"$WORK/runs.duckdb"
    weir "$file" "$content_type" >>"$WORK/runs.weir"
    python_tool "$(pyarrow_script "$file" "$module")" >>"$WORK/runs.pyarrow"
  done
  read -r duck_s duck_rss duck_cpu <<<"$(median "$WORK/runs.duckdb")"
  read -r weir_s weir_rss weir_cpu <<<"$(median "$WORK/runs.weir")"
  read -r pa_s pa_rss pa_cpu <<<"$(median "$WORK/runs.pyarrow")"
  echo "$format runs (wall s, peak RSS KiB, CPU s): duckdb [$(paste -sd';' "$WORK/runs.duckdb")]" \
    "weir [$(paste -sd';' "$WORK/runs.weir")]" >&2
  for row in "weir $weir_s $weir_rss $weir_cpu" "duckdb $duck_s $duck_rss $duck_cpu" "pyarrow $pa_s $pa_rss $pa_cpu"; do
    read -r tool secs rss cpu <<<"$row"
    printf '| %s | %s | %.2f | %.0f | %.2f | %.2f | %d | %d |\n' "$format" "$tool" "$secs" \
      "$(echo "$ROWS / $secs" | bc -l)" "$(echo "$secs / $duck_s" | bc -l)" "$cpu" "$((rss / 1024))" "$size_mib"
  done
  if [ "$format" = ndjson ]; then
    sed -i 's/kind: NdJson/kind: Csv\n        header: true/' "$WORK/manifest.yaml"
  fi
done
