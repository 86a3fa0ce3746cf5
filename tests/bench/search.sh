#!/usr/bin/env bash
# Dataset search benchmark (control-plane/metastore/examples/search_bench.rs), one JSON line:
# DATASETS datasets registered in a fresh PostgreSQL database (WEIR_TEST_POSTGRES_URL, default
# 127.0.0.1:5432), p50/p99 of three typical search expressions as one account (permissions
# applied, first page of 50), and in the same run the floor: a plain LIKE over the same table.
# Not part of the test suite.
#
#   tests/bench/search.sh [DATASETS] [RUNS]   (default 100000 200)
set -euo pipefail
cd "$(dirname "$0")/../.."
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
cargo build -q --profile perf -p weir-metastore --example search_bench
"${CARGO_TARGET_DIR:-target}/perf/examples/search_bench" "$@"
