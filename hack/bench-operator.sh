#!/usr/bin/env bash
# The operator benchmark (issue 4): make bench-operator.
#
# Starts a private control plane (CLUSTER_DIR=/tmp/ray-bench-cluster, ports from 28443, 10 kwok
# nodes x 450 pods: room for 4,500 pods; fewer nodes become Ready faster on a busy machine), installs the RayCluster CRD, runs benches/operator.rs
# against it with the release build of ray-operator, prints its markdown tables, and always tears
# the control plane down (trap), even on failure. The shared .cluster/ is never touched.
#
# Environment (defaults in brackets):
#   BENCH_CLUSTER_DIR [/tmp/ray-bench-cluster]  BENCH_PORT_BASE [28443]  BENCH_HEALTH_PORT [28490]
#   BENCH_NODES [10]  BENCH_NODE_PODS [450]     (kwok CPU nodes and pods per node)
#   BENCH_VARIANTS ["default"]  operator runs, `;`-separated; each is `default` or `K=V ...` env
#   BENCH_SMALL [150] BENCH_BIG [1000] BENCH_WORKERS [3] BENCH_REF_PODS [4000]
#   BENCH_CLIENT_CONCURRENCY [64]  requests in flight when creating RayClusters or bare pods
#   BENCH_SKIP_BUILD=1  use the existing release build and benchmark executable
#   BENCH_KEEP=1  leave the control plane running afterwards (stop: CLUSTER_DIR=... hack/cluster-down.sh)
# Output: tables on stdout (also saved to $BENCH_CLUSTER_DIR/../ray-bench-results.md), progress on
# stderr, operator logs in $BENCH_CLUSTER_DIR/bench-logs (copied to /tmp/ray-bench-logs at exit).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

export CLUSTER_DIR=${BENCH_CLUSTER_DIR:-/tmp/ray-bench-cluster}
export CLUSTER_PORT_BASE=${BENCH_PORT_BASE:-28443}
# kwok fake nodes: thousands of pods that run nothing.
export CLUSTER_NODES=kwok
export KWOK_GPU_NODES=0 KWOK_CPU_NODES=${BENCH_NODES:-10} NODE_PODS=${BENCH_NODE_PODS:-450}
# Every chart pod requests 1 CPU and 1Gi: give each node room for NODE_PODS of them.
export NODE_CPU=$((NODE_PODS + 16)) NODE_MEMORY=$((NODE_PODS + 16))Gi
export CLUSTER_TIMEOUT=${CLUSTER_TIMEOUT:-180}

log() { printf '[bench-operator %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ $(realpath -m "$CLUSTER_DIR") != "$(realpath -m "$REPO/.cluster")" ]] || {
  log "refusing to benchmark on the shared control plane $REPO/.cluster"
  exit 1
}

teardown() {
  local rc=$?
  if [[ -d $CLUSTER_DIR/bench-logs ]]; then
    rm -rf /tmp/ray-bench-logs && cp -r "$CLUSTER_DIR/bench-logs" /tmp/ray-bench-logs || true
  fi
  if [[ -n ${BENCH_KEEP:-} ]]; then
    log "BENCH_KEEP set: control plane left running in $CLUSTER_DIR"
  else
    log "tearing down the private control plane in $CLUSTER_DIR"
    hack/cluster-down.sh || log "cluster-down failed (rc $?)"
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
  log "building the release binary and the benchmark"
  cargo build --release --quiet --bin ray-operator
  cargo bench --no-run --quiet --bench operator
fi
# The benchmark executable cargo built last (run directly: no rebuild once the cluster is up).
BENCH_EXE=$(ls -t target/release/deps/operator-* 2>/dev/null | grep -v '\.d$' | head -n1)
[[ -x $BENCH_EXE ]] || { log "no benchmark executable in target/release/deps (unset BENCH_SKIP_BUILD)"; exit 1; }

log "starting the private control plane ($KWOK_CPU_NODES nodes x $NODE_PODS pods) in $CLUSTER_DIR"
hack/cluster-up.sh >/dev/null
export KUBECONFIG=$CLUSTER_DIR/kubeconfig
KUBECTL=$(hack/build-k8s.sh --print-bin-dir)/kubectl
"$KUBECTL" apply --server-side --force-conflicts -f charts/ray/crds/cluster_crd.yaml >/dev/null
"$KUBECTL" wait --for=condition=Established crd/rayclusters.cluster.ray.io --timeout=60s >/dev/null

mkdir -p "$CLUSTER_DIR/bench-logs"
export BENCH_OPERATOR_BIN=$REPO/target/release/ray-operator BENCH_LOG_DIR=$CLUSTER_DIR/bench-logs
results=$(dirname "$CLUSTER_DIR")/ray-bench-results.md
"$BENCH_EXE" --bench | tee "$results"
cat <<EOF

Release build; operator: \`ray-operator run --autoscaler=false --leader-elect=false --health-port ${BENCH_HEALTH_PORT:-28490}\`
as cluster admin, all namespaces. Control plane: etcd, kube-apiserver, controller-manager, scheduler
and kwok ($KWOK_CPU_NODES nodes x $NODE_PODS pods) on the same $(nproc) cores as the operator and
this client. Memory is read ${BENCH_SETTLE:-5}s after the last cluster is Running. Results: $results
EOF
