#!/usr/bin/env bash
# Device ingest benchmark (functions/devices/examples/devices_bench.rs), one JSON line: ENDPOINTS
# registered endpoints x REQUESTS reliable MQTT requests (QoS 1, request ids) of SAMPLES samples
# through the real Mosquitto on 127.0.0.1:1883 into the device function (in-process with a
# control plane on SQLite and local storage): samples/s committed, p50/p99 publish -> /status;
# and in the same run the broker's own round trip for as many messages (the floor).
# Not part of the test suite.
#
#   tests/bench/devices.sh [ENDPOINTS] [REQUESTS] [SAMPLES] [CONNECTIONS] [WINDOW]
#   (default 1000 100 1 20 100)
set -euo pipefail
cd "$(dirname "$0")/../.."
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
cargo build -q --profile perf -p weir-devices --example devices_bench
"${CARGO_TARGET_DIR:-target}/perf/examples/devices_bench" "$@"
