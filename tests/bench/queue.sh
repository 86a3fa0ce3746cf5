#!/usr/bin/env bash
# Queue ingest benchmark: N NDJSON records of ~256 B published to NATS JetStream, consumed by a
# plain async-nats consumer that only acks (the peer) and by Weir's JetStream consumer committing
# them into a dataset (functions/ingest/examples/queue_bench.rs). Prints one JSON line. Needs
# NATS JetStream on 127.0.0.1:4222 (./local/test starts it). Not part of the test suite.
#
#   tests/bench/queue.sh [MESSAGES] [NATS_URL]     (default 1,000,000)
set -euo pipefail
cd "$(dirname "$0")/../.."
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
cargo build -q --profile perf -p weir-ingest --example queue_bench
"${CARGO_TARGET_DIR:-target}/perf/examples/queue_bench" "${1:-1000000}" "${2:-nats://127.0.0.1:4222}"
