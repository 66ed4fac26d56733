#!/usr/bin/env bash
# make demo: a local control plane, the CRD, the operator, the example cluster,
# and `kubectl get rayclusters` until it is Running.
#
# The pods are kwok's fakes: they reach Running but run no Ray, so the
# operator runs with --autoscaler=false (clusters hold minWorkers). The
# operator keeps running in the background; `make demo-down` stops it and the
# control plane.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
log() { printf '\n[demo] %s\n' "$*"; }

log "starting the local control plane (the first run builds Kubernetes: ~11 minutes)"
hack/cluster-up.sh
export KUBECONFIG=$REPO/.cluster/kubeconfig
KUBECTL=$(hack/build-k8s.sh --print-bin-dir)/kubectl

log "building ray-operator (release)"
cargo build --release --quiet
BIN=$REPO/target/release/ray-operator

log "installing the RayCluster CRD"
"$KUBECTL" apply -f charts/ray/crds/cluster_crd.yaml
"$KUBECTL" wait --for=condition=Established crd/rayclusters.cluster.ray.io --timeout=30s

PIDFILE=.cluster/operator.pid
if [[ -f $PIDFILE ]] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; then
  log "the operator already runs (pid $(cat $PIDFILE))"
else
  log "starting the operator (log: .cluster/operator.log)"
  nohup "$BIN" run --autoscaler=false --health-port 18080 > .cluster/operator.log 2>&1 &
  echo $! > "$PIDFILE"
fi

log "creating the example cluster from components/example_cluster.yaml"
"$KUBECTL" create namespace ray --dry-run=client -o yaml | "$KUBECTL" apply -f -
"$KUBECTL" apply -n ray -f components/example_cluster.yaml

log "waiting for it to be Running"
for _ in $(seq 1 60); do
  phase=$("$KUBECTL" get rayclusters -n ray -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
  [[ $phase == Running ]] && break
  sleep 1
done
"$KUBECTL" get rayclusters -A
echo
"$KUBECTL" get pods,services -n ray -l ray-cluster-name
echo
grep -m5 ',ray ' .cluster/operator.log || true
cat <<MSG

The operator keeps running. Try:
  export KUBECONFIG=$REPO/.cluster/kubeconfig
  kubectl -n ray get rayclusters -w                 # STATUS / RESTARTS / DESIRED / READY
  kubectl -n ray delete pod -l ray-node-type=head    # the head fails: watch RESTARTS go up
  curl -s localhost:18080/metrics | grep ray_operator
  make demo-down                                     # stop the operator and the control plane
MSG
