#!/usr/bin/env bash
# Lambda cold start of each function binary (release profile, as `cargo lambda build --release`
# builds them) and, in the same run, the floor: an empty lambda_http function
# (functions/runtime/examples/empty_lambda.rs). One JSON line per binary (see coldstart.py),
# then the ELF sections of each (binsize.py).
# The functions are those the SAM template deploys as Lambdas (infra/lambda/template.yaml).
# weir-devices is not one of them: it bridges an MQTT broker over a long-lived connection, and
# its init authenticates with the control plane, so it has no cold start to measure alone.
# Not part of the test suite.
#
#   tests/bench/coldstart.sh [RUNS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
functions=(weir-ingest weir-query weir-governance weir-transform)
args=()
for binary in "${functions[@]}"; do args+=(--bin "$binary"); done
cargo build -q --release "${args[@]}"
cargo build -q --release -p weir-function-runtime --example empty_lambda
dir=${CARGO_TARGET_DIR:-target}/release
pairs=("floor(empty_lambda)=$dir/examples/empty_lambda")
for binary in "${functions[@]}"; do pairs+=("$binary=$dir/$binary"); done
python3 tests/bench/coldstart.py "${1:-20}" "${pairs[@]}"
python3 tests/bench/binsize.py "${pairs[@]#*=}"
