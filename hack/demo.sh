#!/usr/bin/env bash
# make demo: the seed's first flow on real nodes. A local cluster (control
# plane + three real nodes), the images (no registry: built and imported
# here), then `helm -n ray install example-cluster --create-namespace
# ./charts/ray`, the operator's rollout, `kubectl get rayclusters`, the pods,
# what Ray says inside the head, and a small Ray job whose tasks run on the
# workers. Everything keeps running; `make demo-down` stops it.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
log() { printf '\n[demo %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
START=$SECONDS

log "starting the local cluster with real nodes (the first run builds Kubernetes and containerd)"
hack/cluster-up.sh >/dev/null
export KUBECONFIG=$REPO/.cluster/kubeconfig
BIN_DIR=$(hack/build-k8s.sh --print-bin-dir)
KUBECTL=$BIN_DIR/kubectl
hack/install-helm.sh >/dev/null
HELM=${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/helm/bin/helm

log "building and importing the images (the operator and Ray; cached after the first run)"
hack/images.sh

if "$HELM" -n ray status example-cluster >/dev/null 2>&1; then
  log "the release example-cluster is installed already; upgrading it to this checkout"
  "$HELM" -n ray upgrade example-cluster ./charts/ray
else
  log "helm -n ray install example-cluster --create-namespace ./charts/ray"
  "$HELM" -n ray install example-cluster --create-namespace ./charts/ray
fi
"$KUBECTL" -n default rollout status deployment/example-cluster-ray-operator --timeout=180s

log "waiting for the Ray cluster to be Running (Ray's GCS answers, the workers joined)"
INSTALLED=$SECONDS
for _ in $(seq 1 240); do
  phase=$("$KUBECTL" -n ray get raycluster example-cluster -o jsonpath='{.status.phase}' 2>/dev/null || true)
  [[ $phase == Running ]] && break
  sleep 1
done
[[ $phase == Running ]] || { "$KUBECTL" -n ray describe raycluster example-cluster; exit 1; }
echo "Running $((SECONDS - INSTALLED))s after the operator was ready"
"$KUBECTL" get rayclusters -A
echo
"$KUBECTL" -n ray get pods,services -l ray-cluster-name=example-cluster -o wide

HEAD=$("$KUBECTL" -n ray get pods -l ray-cluster-name=example-cluster,ray-node-type=head \
  --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
log "a Ray job inside the head ($HEAD)"
"$KUBECTL" -n ray exec -i "$HEAD" -- bash -lc 'python -' <hack/demo-job.py

log "the operator's log lines for this cluster (the seed's recipe, on the operator that holds the Lease)"
LEADER=$("$KUBECTL" -n kube-system get lease ray-operator-cluster-scoped -o jsonpath='{.spec.holderIdentity}')
"$KUBECTL" logs -n default "$LEADER" | grep example-cluster,ray | tail -n 8

cat <<MSG

Done in $((SECONDS - START))s. Everything keeps running. Try:
  export KUBECONFIG=$REPO/.cluster/kubeconfig PATH=$BIN_DIR:\$PATH
  kubectl -n ray get rayclusters -w                      # STATUS / RESTARTS / DESIRED / READY
  kubectl -n ray port-forward service/example-cluster-ray-head 8265:8265   # then open http://localhost:8265
  kubectl -n ray exec -it $HEAD -- bash -lc 'ray status'
  kubectl -n ray delete pod $HEAD                        # the head fails: RESTARTS goes up, a new head starts
  make demo-down                                         # uninstall, stop the nodes and the control plane
MSG
