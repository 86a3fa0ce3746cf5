#!/usr/bin/env bash
# Queue ingest benchmark (functions/ingest/examples/queue_bench.rs), one JSON line each:
# - JetStream: N NDJSON records of ~256 B published to NATS JetStream (127.0.0.1:4222), consumed
#   by a plain async-nats consumer that only acks (the peer) and by Weir's consumer committing
#   them into a dataset;
# - SQS and S3 notifications on moto (WEIR_TEST_S3_ENDPOINT, or a moto server this script
#   starts): a plain receive-and-delete consumer (the peer), Weir's SQS consumer, and files
#   dropped into a bucket.
# Not part of the test suite.
#
#   tests/bench/queue.sh [MESSAGES] [SQS_MESSAGES] [OBJECTS]   (default 1,000,000 / 2,000 / 100)
set -euo pipefail
cd "$(dirname "$0")/../.."
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
cargo build -q --profile perf -p weir-ingest --example queue_bench
BIN=${CARGO_TARGET_DIR:-target}/perf/examples/queue_bench
"$BIN" "${1:-1000000}" nats://127.0.0.1:4222
if [ -z "${WEIR_TEST_S3_ENDPOINT:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 local/s3_server.py 127.0.0.1 "$port" >/dev/null 2>&1 &
  trap 'kill $!' EXIT
  export WEIR_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  sleep 3
fi
"$BIN" sqs "${2:-2000}" "$WEIR_TEST_S3_ENDPOINT" "${3:-100}"
