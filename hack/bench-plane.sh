#!/usr/bin/env bash
# The benchmarks on a private kwok control plane: make bench-operator (benches/operator.rs, issue 4)
# and make bench-scale / make bench-kuberay (benches/scale.rs, issue 13).
#
# Usage: hack/bench-plane.sh operator|scale
#
# Starts a private control plane (CLUSTER_DIR, default /tmp/ray-bench-<bench>; ports from 28443 for
# operator, 28463 for scale; kwok nodes: fewer nodes become Ready faster on a busy machine), installs
# the RayCluster CRD (and for scale KubeRay's CRDs, from `make kuberay`), runs the bench executable
# against it with the release build of ray-operator, prints its markdown tables, and always tears
# the control plane down (trap), even on failure. The shared .cluster/ is never touched.
#
# Environment (defaults in brackets):
#   BENCH_CLUSTER_DIR [/tmp/ray-bench-<bench>]  BENCH_PORT_BASE [28443 | 28463]
#   BENCH_HEALTH_PORT [28490 | 28495]  (ray-operator's health port; KubeRay's, and its metrics on +1)
#   BENCH_NODES [10]  BENCH_NODE_PODS [450]     (kwok CPU nodes and pods per node)
#   BENCH_SCHEDULER_QPS  the scheduler's API QPS (its default: 50), for a plane sized for 40,000 pods
#   BENCH_SKIP_BUILD=1  use the existing release build and benchmark executable
#   BENCH_KEEP=1  leave the control plane running afterwards (stop: CLUSTER_DIR=... hack/cluster-down.sh)
#   the bench's own, in benches/operator.rs and benches/scale.rs (BENCH_VARIANTS, BENCH_CONTENDERS, ...)
# Output: tables on stdout (also saved to $BENCH_CLUSTER_DIR/../ray-bench-<bench>-results.md),
# progress on stderr, operator logs in $BENCH_CLUSTER_DIR/bench-logs (copied to
# /tmp/ray-bench-<bench>-logs at exit).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BENCH=${1:-}
case $BENCH in
  operator) PORT_DEFAULT=28443 HEALTH_DEFAULT=28490 ;;
  scale) PORT_DEFAULT=28463 HEALTH_DEFAULT=28495 ;;
  *) echo "usage: $0 operator|scale" >&2; exit 2 ;;
esac

export CLUSTER_DIR=${BENCH_CLUSTER_DIR:-/tmp/ray-bench-$BENCH}
export CLUSTER_PORT_BASE=${BENCH_PORT_BASE:-$PORT_DEFAULT}
export BENCH_HEALTH_PORT=${BENCH_HEALTH_PORT:-$HEALTH_DEFAULT}
# kwok fake nodes: thousands of pods that run nothing.
export CLUSTER_NODES=kwok
export KWOK_GPU_NODES=0 KWOK_CPU_NODES=${BENCH_NODES:-10} NODE_PODS=${BENCH_NODE_PODS:-450}
# A chart pod requests at most 1 CPU and 2Gi (the head): give each node room for NODE_PODS of them.
export NODE_CPU=$((NODE_PODS + 16)) NODE_MEMORY=$((2 * (NODE_PODS + 16)))Gi
export SCHEDULER_QPS=${BENCH_SCHEDULER_QPS:-}
export CLUSTER_TIMEOUT=${CLUSTER_TIMEOUT:-180}

log() { printf "[bench-$BENCH %s] %s\n" "$(date +%H:%M:%S)" "$*" >&2; }

[[ $(realpath -m "$CLUSTER_DIR") != "$(realpath -m "$REPO/.cluster")" ]] || {
  log "refusing to benchmark on the shared control plane $REPO/.cluster"
  exit 1
}

teardown() {
  local rc=$?
  # Operators a killed bench left running (each wrote its PID next to its log).
  for pidfile in "$CLUSTER_DIR"/bench-logs/*.pid; do
    [[ -f $pidfile ]] || continue
    pid=$(<"$pidfile")
    if kill -0 "$pid" 2>/dev/null; then log "stopping operator pid $pid"; kill "$pid" || true; fi
  done
  if [[ -d $CLUSTER_DIR/bench-logs ]]; then
    rm -rf "/tmp/ray-bench-$BENCH-logs" && cp -r "$CLUSTER_DIR/bench-logs" "/tmp/ray-bench-$BENCH-logs" || true
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
  cargo bench --no-run --quiet --bench "$BENCH"
fi
# The benchmark executable cargo built last (run directly: no rebuild once the cluster is up).
BENCH_EXE=$(ls -t target/release/deps/"$BENCH"-* 2>/dev/null | grep -v '\.d$' | head -n1)
[[ -x $BENCH_EXE ]] || { log "no benchmark executable in target/release/deps (unset BENCH_SKIP_BUILD)"; exit 1; }

log "starting the private control plane ($KWOK_CPU_NODES nodes x $NODE_PODS pods) in $CLUSTER_DIR"
hack/cluster-up.sh >/dev/null
export KUBECONFIG=$CLUSTER_DIR/kubeconfig
KUBECTL=$(hack/build-k8s.sh --print-bin-dir)/kubectl
"$KUBECTL" apply --server-side --force-conflicts -f charts/ray/crds/cluster_crd.yaml >/dev/null
"$KUBECTL" wait --for=condition=Established crd/rayclusters.cluster.ray.io --timeout=60s >/dev/null
if [[ $BENCH == scale ]]; then
  KUBERAY_DIR=$(hack/build-kuberay.sh --print-dir)
  [[ -x $KUBERAY_DIR/bin/kuberay-operator ]] || { log "no KubeRay in $KUBERAY_DIR: run make kuberay"; exit 1; }
  export BENCH_KUBERAY_BIN=$KUBERAY_DIR/bin/kuberay-operator
  for crd in "$KUBERAY_DIR"/crds/*.yaml; do
    "$KUBECTL" apply --server-side --force-conflicts -f "$crd" >/dev/null
  done
  "$KUBECTL" wait --for=condition=Established crd/rayclusters.ray.io --timeout=60s >/dev/null
fi

mkdir -p "$CLUSTER_DIR/bench-logs"
export BENCH_OPERATOR_BIN=$REPO/target/release/ray-operator BENCH_LOG_DIR=$CLUSTER_DIR/bench-logs
results=$(dirname "$CLUSTER_DIR")/ray-bench-$BENCH-results.md
"$BENCH_EXE" --bench | tee "$results"
if [[ $BENCH == operator ]]; then
  cat <<EOF

Release build; operator: \`ray-operator run --autoscaler=false --leader-elect=false --health-port $BENCH_HEALTH_PORT\`
as cluster admin, all namespaces. Control plane: etcd, kube-apiserver, controller-manager, scheduler
and kwok ($KWOK_CPU_NODES nodes x $NODE_PODS pods) on the same $(nproc) cores as the operator and
this client. Memory is read ${BENCH_SETTLE:-5}s after the last cluster is Running. Results: $results
EOF
else
  cat <<EOF

Release build of ray-operator (\`run --autoscaler=false --ray-health=false --leader-elect=false\`) and
KubeRay v1.5.0's operator from the Go module proxy (\`-enable-leader-election=false\`, its default
QPS 100 / burst 200), each run out of cluster as cluster admin, all namespaces, one after the other.
Control plane: etcd, kube-apiserver, controller-manager, scheduler${SCHEDULER_QPS:+ (API QPS $SCHEDULER_QPS)} and kwok ($KWOK_CPU_NODES nodes
x $NODE_PODS pods) on the same $(nproc) cores as the operator and this client. Results: $results
EOF
fi
