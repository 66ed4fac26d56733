#!/usr/bin/env bash
# Start a local Kubernetes cluster for tests and the demo: etcd, kube-apiserver (RBAC, admission,
# service-account tokens), kube-controller-manager, kube-scheduler, and nodes of one of two kinds
# (CLUSTER_NODES, recorded in ports.env so a re-run keeps it):
#   real  (default) three real nodes node-0..2 on this machine (hack/node-up.sh): per node a
#         containerd and a kubelet, a CNI bridge rayop<i> (pods 10.244.<i>.0/24, node IP 10.244.<i>.1);
#         one kube-proxy (iptables) and CoreDNS on 10.244.0.1 for cluster.local. Needs root; one
#         real cluster per machine. Images are imported, never pulled (see hack/node-env.sh).
#   kwok  the kwok controller plays fake nodes and fake pods (Running with an IP, running nothing).
#         Implied when KWOK_GPU_NODES or KWOK_CPU_NODES is set and CLUSTER_NODES is not.
#
# Binaries come from hack/build-k8s.sh and hack/build-node.sh (built once, cached outside the repo).
# State (certificates, logs, pids, etcd data, kubeconfig) lives in $CLUSTER_DIR (default .cluster/).
# Running it against a healthy cluster is a no-op.
#
# Concurrent runs on one state dir serialize on $CLUSTER_DIR/up.lock (flock).
#
# Environment:
#   CLUSTER_DIR        state dir (default <repo>/.cluster)
#   CLUSTER_NODES      real | kwok (see above)
#   CLUSTER_PORT_BASE  first port (default 26443): base+0..5 apiserver, etcd client, etcd peer,
#                      controller-manager, scheduler, kwok; real nodes use base+10..22
#                      (hack/node-env.sh). Use another base for a second (kwok) cluster.
#   CLUSTER_TIMEOUT    seconds to wait for each readiness step (default 90)
#   NODE_MONITOR_GRACE_PERIOD  how long nodes may go without a heartbeat before the controller
#                      manager calls them NotReady and marks their pods not Ready (its default,
#                      50s, unless set). kwok never re-reports a readiness taken away, so a test
#                      that stops the API server longer than that sets it higher.
#   ETCD_QUOTA_BYTES   etcd's backend quota (default 1 GiB)
#   SCHEDULER_QPS      the scheduler's API QPS, burst twice that (its own default, 50, unless set)
# kwok only:
#   KWOK_GPU_NODES     number of GPU nodes kwok-gpu-<i> (default 3)
#   KWOK_CPU_NODES     number of CPU-only nodes kwok-cpu-<i> (default 1)
#   NODE_CPU NODE_MEMORY NODE_GPUS NODE_PODS   capacity per node (default 16, 64Gi, 4, 110)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$REPO/.cluster}
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
KUBECONFIG_OUT=$CLUSTER_DIR/kubeconfig
TIMEOUT=${CLUSTER_TIMEOUT:-90}
LOG_TAG=cluster-up
# shellcheck source=hack/processes.sh
source "$REPO/hack/processes.sh"

# One cluster-up (or cluster-down) per state dir at a time. Callers that already hold the lock
# (the Rust test harness) set CLUSTER_LOCK_HELD=1.
if [[ -z ${CLUSTER_LOCK_HELD:-} ]]; then
  exec 9>"$CLUSTER_DIR/up.lock"
  flock 9 || die "cannot lock $CLUSTER_DIR/up.lock"
  export CLUSTER_LOCK_HELD=1
fi

START=$SECONDS
BIN=$("$REPO/hack/build-k8s.sh")
[[ -x $BIN/kube-apiserver ]] || die "hack/build-k8s.sh did not produce $BIN/kube-apiserver"
STAGES=$(dirname "$BIN")/share/kwok-stages.yaml
[[ -s $STAGES ]] || die "missing $STAGES (run hack/build-k8s.sh)"
KUBECTL=$BIN/kubectl

# Profile and ports are fixed per state dir: reuse the recorded ones so a health check hits the
# right cluster. A ports.env without CLUSTER_NODES was written before real nodes existed: kwok.
REQUESTED=${CLUSTER_NODES:-}
if [[ -f $CLUSTER_DIR/ports.env ]]; then
  unset CLUSTER_NODES
  # shellcheck disable=SC1091
  source "$CLUSTER_DIR/ports.env"
  CLUSTER_NODES=${CLUSTER_NODES:-kwok} PORT_BASE=${PORT_BASE:-$API_PORT}
  [[ -z $REQUESTED || $REQUESTED == "$CLUSTER_NODES" ]] ||
    die "$CLUSTER_DIR holds a CLUSTER_NODES=$CLUSTER_NODES cluster; stop it first (CLUSTER_DIR=$CLUSTER_DIR hack/cluster-down.sh) to start a $REQUESTED one"
else
  if [[ -z $REQUESTED && -n ${KWOK_GPU_NODES:-}${KWOK_CPU_NODES:-} ]]; then REQUESTED=kwok; fi
  CLUSTER_NODES=${REQUESTED:-real}
  BASE=${CLUSTER_PORT_BASE:-26443}
  PORT_BASE=$BASE API_PORT=$BASE ETCD_PORT=$((BASE + 1)) ETCD_PEER_PORT=$((BASE + 2))
  KCM_PORT=$((BASE + 3)) SCHED_PORT=$((BASE + 4)) KWOK_PORT=$((BASE + 5))
fi
[[ $CLUSTER_NODES == real || $CLUSTER_NODES == kwok ]] || die "CLUSTER_NODES must be real or kwok, not '$CLUSTER_NODES'"
export CLUSTER_DIR CLUSTER_NODES BIN TIMEOUT ADMIN_KUBECONFIG=$KUBECONFIG_OUT.tmp
REAL=""
[[ $CLUSTER_NODES == kwok ]] || REAL=1

# healthy: every recorded process is alive, the apiserver answers /readyz, real nodes are Ready.
healthy() {
  [[ -f $KUBECONFIG_OUT && -d $CLUSTER_DIR/pids ]] || return 1
  local p
  for p in "$CLUSTER_DIR"/pids/*.pid; do
    [[ -f $p ]] && kill -0 "$(<"$p")" 2>/dev/null || return 1
  done
  [[ $("$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" --request-timeout=5s get --raw /readyz 2>/dev/null) == ok ]] || return 1
  [[ -z $REAL ]] || ADMIN_KUBECONFIG=$KUBECONFIG_OUT "$REPO/hack/node-up.sh" check
}

if healthy; then
  log "cluster ($CLUSTER_NODES nodes) in $CLUSTER_DIR is already running and ready; nothing to do"
  echo "export KUBECONFIG=$KUBECONFIG_OUT"
  exit 0
fi

if [[ -d $CLUSTER_DIR/pids ]]; then
  log "found a stale or unhealthy cluster in $CLUSTER_DIR; stopping it first"
  CLUSTER_DIR=$CLUSTER_DIR "$REPO/hack/cluster-down.sh"
  mkdir -p "$CLUSTER_DIR"
fi

ports=("$API_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$KCM_PORT" "$SCHED_PORT")
if [[ -n $REAL ]]; then
  "$REPO/hack/build-node.sh" >/dev/null
  # shellcheck source=hack/node-env.sh
  source "$REPO/hack/node-env.sh"
  ports+=("$KUBE_PROXY_HEALTHZ_PORT" "$KUBE_PROXY_METRICS_PORT" "$COREDNS_HEALTH_PORT" "$COREDNS_READY_PORT")
  for ((i = 0; i < NODE_COUNT; i++)); do ports+=("$(kubelet_healthz_port "$i")" "$(containerd_stream_port "$i")"); done
else
  ports+=("$KWOK_PORT")
fi
for port in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port 127.0.0.1:$port is already in use (set CLUSTER_PORT_BASE to use other ports)"
  fi
done

# Real nodes: claim the machine and create the bridges first (before recording the profile, so a
# refusal leaves nothing behind); the API server binds 10.244.0.1.
[[ -z $REAL ]] || "$REPO/hack/node-up.sh" prepare

mkdir -p "$CLUSTER_DIR"/{pki,logs,pids,etcd}
cat >"$CLUSTER_DIR/ports.env" <<EOF
CLUSTER_NODES=$CLUSTER_NODES PORT_BASE=$PORT_BASE
API_PORT=$API_PORT ETCD_PORT=$ETCD_PORT ETCD_PEER_PORT=$ETCD_PEER_PORT
KCM_PORT=$KCM_PORT SCHED_PORT=$SCHED_PORT KWOK_PORT=$KWOK_PORT
EOF

# --- certificates --------------------------------------------------------------------------------
PKI=$CLUSTER_DIR/pki
log "generating certificates in $PKI"
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
  -subj "/CN=ray-operator-local-ca"
# 10.244.0.1: the API server's address on the node network (real nodes; harmless for kwok).
sign apiserver "/CN=kube-apiserver" \
  "IP:127.0.0.1,IP:10.96.0.1,IP:10.244.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign admin "/O=system:masters/CN=kubernetes-admin"
sign controller-manager "/CN=system:kube-controller-manager"
sign scheduler "/CN=system:kube-scheduler"
if [[ -n $REAL ]]; then
  # The API server's client certificate towards kubelets (logs, exec, port-forward).
  sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
else
  sign kwok "/O=system:masters/CN=kwok-controller"
fi
ossl genrsa -out "$PKI/sa.key" 2048
ossl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" controller-manager
kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" scheduler
[[ -n $REAL ]] || kubeconfig "$CLUSTER_DIR/kwok.kubeconfig" kwok
kubeconfig "$KUBECONFIG_OUT.tmp" admin

# --- processes -----------------------------------------------------------------------------------
ADMIN=(--kubeconfig "$KUBECONFIG_OUT.tmp")

log "starting etcd on 127.0.0.1:$ETCD_PORT"
start etcd "$BIN/etcd" --name=local --data-dir="$CLUSTER_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="local=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes=${ETCD_QUOTA_BYTES:-1073741824} --log-level=warn
wait_for etcd "etcd /health" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

if [[ -n $REAL ]]; then
  # Pods reach it as the `kubernetes` Service (10.96.0.1:443 -> 10.244.0.1:$API_PORT, kept by the
  # lease endpoint reconciler); it reaches kubelets for logs and exec with its own client cert.
  API_NET=(--bind-address=0.0.0.0 --advertise-address=10.244.0.1 --endpoint-reconciler-type=lease
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key"
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP)
else
  API_NET=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none)
fi
log "starting kube-apiserver on https://127.0.0.1:$API_PORT"
start kube-apiserver "$BIN/kube-apiserver" "${API_NET[@]}" --secure-port="$API_PORT" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --allow-privileged=true --cert-dir="$CLUSTER_DIR/pki/apiserver-generated" --v=1
wait_for kube-apiserver "kube-apiserver /readyz" \
  bash -c "[[ \$('$KUBECTL' ${ADMIN[*]} --request-timeout=5s get --raw /readyz) == ok ]]"

log "starting kube-controller-manager, kube-scheduler"
KCM_CFG=$CLUSTER_DIR/controller-manager.kubeconfig
start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$KCM_CFG" --authentication-kubeconfig="$KCM_CFG" --authorization-kubeconfig="$KCM_CFG" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
  --controllers='*' --use-service-account-credentials=true \
  --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --cert-dir="$CLUSTER_DIR/pki/kcm-generated" --v=1 \
  ${NODE_MONITOR_GRACE_PERIOD:+--node-monitor-grace-period="$NODE_MONITOR_GRACE_PERIOD"}
SCHED_CFG=$CLUSTER_DIR/scheduler.kubeconfig
start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$SCHED_CFG" --authentication-kubeconfig="$SCHED_CFG" --authorization-kubeconfig="$SCHED_CFG" \
  --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false \
  --cert-dir="$CLUSTER_DIR/pki/scheduler-generated" --v=1 \
  ${SCHEDULER_QPS:+--kube-api-qps="$SCHEDULER_QPS" --kube-api-burst="$((2 * SCHEDULER_QPS))"}
wait_for kube-controller-manager "kube-controller-manager /healthz" curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
wait_for kube-scheduler "kube-scheduler /healthz" curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz"

if [[ -n $REAL ]]; then
  log "starting the real nodes (containerd, kubelet x3, kube-proxy, CoreDNS)"
  "$REPO/hack/node-up.sh" start
  wait_for kube-controller-manager "the default ServiceAccount" "$KUBECTL" "${ADMIN[@]}" -n default get serviceaccount default
  mv "$KUBECONFIG_OUT.tmp" "$KUBECONFIG_OUT"
  log "cluster ready in $((SECONDS - START))s: real nodes node-0..2 (state: $CLUSTER_DIR, logs: $CLUSTER_DIR/logs, images: hack/node-env.sh, stop: hack/cluster-down.sh)"
  echo "export KUBECONFIG=$KUBECONFIG_OUT"
  exit 0
fi

# --- kwok: fake nodes ----------------------------------------------------------------------------
start kwok "$BIN/kwok" --config="$STAGES" --kubeconfig="$CLUSTER_DIR/kwok.kubeconfig" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 --cidr=10.244.0.1/16 --node-ip=10.0.0.1 \
  --server-address="127.0.0.1:$KWOK_PORT"
wait_for kwok "kwok /healthz" curl -fsS "http://127.0.0.1:$KWOK_PORT/healthz"

# node <name> <gpus>: a Node that kwok manages (annotation kwok.x-k8s.io/node=fake).
node() {
  local name=$1 gpus=$2 res
  res="cpu: \"${NODE_CPU:-16}\"
      memory: ${NODE_MEMORY:-64Gi}
      pods: \"${NODE_PODS:-110}\"
      ephemeral-storage: 100Gi"
  [[ $gpus == 0 ]] || res+="
      nvidia.com/gpu: \"$gpus\""
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node-role.kubernetes.io/agent: ""
$([[ $gpus == 0 ]] || echo "    nvidia.com/gpu.present: \"true\"")
status:
  allocatable:
      $res
  capacity:
      $res
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
EOF
}
NODES=()
{
  for ((i = 0; i < ${KWOK_GPU_NODES:-3}; i++)); do node "kwok-gpu-$i" "${NODE_GPUS:-4}"; NODES+=("kwok-gpu-$i"); done
  for ((i = 0; i < ${KWOK_CPU_NODES:-1}; i++)); do node "kwok-cpu-$i" 0; NODES+=("kwok-cpu-$i"); done
} >"$CLUSTER_DIR/nodes.yaml"
log "creating ${#NODES[@]} fake nodes: ${NODES[*]}"
"$KUBECTL" "${ADMIN[@]}" apply -f "$CLUSTER_DIR/nodes.yaml" >/dev/null || fail_with kube-apiserver "creating nodes failed"
wait_for kwok "nodes Ready" "$KUBECTL" "${ADMIN[@]}" wait --for=condition=Ready --timeout=5s node "${NODES[@]}"
# The default ServiceAccount is what pods run as; wait for the controller-manager to create it.
wait_for kube-controller-manager "the default ServiceAccount" "$KUBECTL" "${ADMIN[@]}" -n default get serviceaccount default

mv "$KUBECONFIG_OUT.tmp" "$KUBECONFIG_OUT"
log "control plane ready in $((SECONDS - START))s: kwok nodes (state: $CLUSTER_DIR, logs: $CLUSTER_DIR/logs, stop: hack/cluster-down.sh)"
echo "export KUBECONFIG=$KUBECONFIG_OUT"
