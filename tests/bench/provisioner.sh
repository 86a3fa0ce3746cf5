#!/usr/bin/env bash
# Engine provisioner reaction times on the real test API server (local/kube/start-cluster):
# from a transform task queued to the worker Deployment scaled, the pod created, the task
# leased by a worker and done — with the pool at zero and warm (minReplicas 1). One JSON line
# per round; see `reaction_times` in control-plane/engine-provisioner/tests/cluster.rs.
# With DOORBELL 1, the control plane announces queued tasks on NATS (127.0.0.1:4222) and the
# provisioner watches the announcements. Not part of the test suite.
#
#   tests/bench/provisioner.sh [ROUNDS] [POLL_SECONDS] [DOORBELL]   (default 20 1 0)
set -euo pipefail
cd "$(dirname "$0")/../.."
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
cargo build -q -p weir-local --bin weir -p weir-transform --bin weir-transform
if [ -z "${WEIR_TEST_KUBECONFIG:-}" ]; then
  dir=$(mktemp -d)
  trap 'local/kube/stop-cluster "$dir"' EXIT
  WEIR_TEST_KUBECONFIG=$(local/kube/start-cluster "$dir")
  export WEIR_TEST_KUBECONFIG
fi
# the chart's RBAC is rendered with helm (installed by infra/validate)
infra/validate --offline >/dev/null
ROUNDS=${1:-20} POLL_SECONDS=${2:-1} DOORBELL=${3:-0} cargo test -q -p weir-engine-provisioner --test cluster reaction_times \
  -- --ignored --nocapture 2>/dev/null | grep '^{'
