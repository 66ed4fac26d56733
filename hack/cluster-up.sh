#!/usr/bin/env bash
# Start a local Kubernetes control plane on 127.0.0.1 for tests and the demo:
#   etcd, kube-apiserver (RBAC, admission, service-account tokens), kube-controller-manager
#   (garbage collector, service-account token controller, ...), kube-scheduler, and the kwok
#   controller, which plays fake nodes (heartbeats) and fake pods (scheduled -> Running with an IP).
# No kubelet and no container runtime: pods never run anything.
#
# Binaries come from hack/build-k8s.sh (built once and cached outside the repo).
# State (certificates, logs, pids, etcd data, kubeconfig) lives in $CLUSTER_DIR (default .cluster/).
# Running it against a healthy control plane is a no-op.
#
# Concurrent runs on one state dir serialize on $CLUSTER_DIR/up.lock (flock).
#
# Environment:
#   CLUSTER_DIR        state dir (default <repo>/.cluster)
#   CLUSTER_PORT_BASE  first of 6 loopback ports (default 26443): apiserver, etcd client, etcd peer,
#                      controller-manager, scheduler, kwok. Use another base for a second cluster.
#   KWOK_GPU_NODES     number of GPU nodes kwok-gpu-<i> (default 3)
#   KWOK_CPU_NODES     number of CPU-only nodes kwok-cpu-<i> (default 1)
#   NODE_CPU NODE_MEMORY NODE_GPUS NODE_PODS   capacity per node (default 16, 64Gi, 4, 110)
#   CLUSTER_TIMEOUT    seconds to wait for each readiness step (default 90)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$REPO/.cluster}
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
KUBECONFIG_OUT=$CLUSTER_DIR/kubeconfig
TIMEOUT=${CLUSTER_TIMEOUT:-90}

log() { printf '[cluster-up %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

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

# Ports are fixed per state dir: reuse the recorded ones so a health check hits the right cluster.
if [[ -f $CLUSTER_DIR/ports.env ]]; then
  # shellcheck disable=SC1091
  source "$CLUSTER_DIR/ports.env"
else
  BASE=${CLUSTER_PORT_BASE:-26443}
  API_PORT=$BASE ETCD_PORT=$((BASE + 1)) ETCD_PEER_PORT=$((BASE + 2))
  KCM_PORT=$((BASE + 3)) SCHED_PORT=$((BASE + 4)) KWOK_PORT=$((BASE + 5))
fi

# healthy: the apiserver answers /readyz and every recorded process is alive.
healthy() {
  [[ -f $KUBECONFIG_OUT && -d $CLUSTER_DIR/pids ]] || return 1
  local p
  for p in "$CLUSTER_DIR"/pids/*.pid; do
    [[ -f $p ]] && kill -0 "$(<"$p")" 2>/dev/null || return 1
  done
  [[ $("$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" --request-timeout=5s get --raw /readyz 2>/dev/null) == ok ]]
}

if healthy; then
  log "control plane in $CLUSTER_DIR is already running and ready; nothing to do"
  echo "export KUBECONFIG=$KUBECONFIG_OUT"
  exit 0
fi

if [[ -d $CLUSTER_DIR/pids ]]; then
  log "found a stale or unhealthy control plane in $CLUSTER_DIR; stopping it first"
  CLUSTER_DIR=$CLUSTER_DIR "$REPO/hack/cluster-down.sh"
  mkdir -p "$CLUSTER_DIR"
fi

for port in "$API_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$KCM_PORT" "$SCHED_PORT" "$KWOK_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port 127.0.0.1:$port is already in use (set CLUSTER_PORT_BASE to use other ports)"
  fi
done

mkdir -p "$CLUSTER_DIR"/{pki,logs,pids,etcd}
cat >"$CLUSTER_DIR/ports.env" <<EOF
API_PORT=$API_PORT ETCD_PORT=$ETCD_PORT ETCD_PEER_PORT=$ETCD_PEER_PORT
KCM_PORT=$KCM_PORT SCHED_PORT=$SCHED_PORT KWOK_PORT=$KWOK_PORT
EOF

# --- certificates --------------------------------------------------------------------------------
PKI=$CLUSTER_DIR/pki
ossl() { openssl "$@" >/dev/null 2>&1 || die "openssl $1 failed (args: $*)"; }
log "generating certificates in $PKI"
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
  -subj "/CN=ray-operator-local-ca"
# sign <name> <subject> [<subjectAltName>]: a certificate signed by the CA.
sign() {
  local name=$1 subj=$2 san=${3:-}
  local ext=$PKI/$name.ext
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $san ]]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  ossl req -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subj"
  ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -out "$PKI/$name.crt" -days 3650 -extfile "$ext"
  rm -f "$PKI/$name.csr" "$ext"
}
sign apiserver "/CN=kube-apiserver" \
  "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign admin "/O=system:masters/CN=kubernetes-admin"
sign controller-manager "/CN=system:kube-controller-manager"
sign scheduler "/CN=system:kube-scheduler"
sign kwok "/O=system:masters/CN=kwok-controller"
ossl genrsa -out "$PKI/sa.key" 2048
ossl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

# kubeconfig <file> <cert name>
kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ray-operator-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: ray-operator-local
  context:
    cluster: ray-operator-local
    user: $2
current-context: ray-operator-local
EOF
}
kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" controller-manager
kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" scheduler
kubeconfig "$CLUSTER_DIR/kwok.kubeconfig" kwok
kubeconfig "$KUBECONFIG_OUT.tmp" admin

# --- processes -----------------------------------------------------------------------------------
# start <name> <binary> <args...>: run in its own session, log to logs/<name>.log, pid to pids/.
start() {
  local name=$1
  shift
  # 9>&-: the component must not inherit (and so hold forever) the up.lock descriptor.
  setsid "$@" >"$CLUSTER_DIR/logs/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$CLUSTER_DIR/pids/$name.pid"
}
# fail_with <name> <message>: die showing the tail of that component's log.
fail_with() {
  log "ERROR: $2"
  log "last lines of $CLUSTER_DIR/logs/$1.log:"
  tail -n 25 "$CLUSTER_DIR/logs/$1.log" >&2 || true
  log "the processes are left running for inspection; stop them with: CLUSTER_DIR=$CLUSTER_DIR hack/cluster-down.sh"
  exit 1
}
# wait_for <name> <what> <command...>: retry until it succeeds, the process dies, or the timeout.
wait_for() {
  local name=$1 what=$2 deadline=$((SECONDS + TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$(<"$CLUSTER_DIR/pids/$name.pid")" 2>/dev/null || fail_with "$name" "$name exited while waiting for $what"
    ((SECONDS < deadline)) || fail_with "$name" "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.5
  done
}
ADMIN=(--kubeconfig "$KUBECONFIG_OUT.tmp")

log "starting etcd on 127.0.0.1:$ETCD_PORT"
start etcd "$BIN/etcd" --name=local --data-dir="$CLUSTER_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="local=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes=1073741824 --log-level=warn
wait_for etcd "etcd /health" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

log "starting kube-apiserver on https://127.0.0.1:$API_PORT"
start kube-apiserver "$BIN/kube-apiserver" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none \
  --allow-privileged=true --cert-dir="$CLUSTER_DIR/pki/apiserver-generated" --v=1
wait_for kube-apiserver "kube-apiserver /readyz" \
  bash -c "[[ \$('$KUBECTL' ${ADMIN[*]} --request-timeout=5s get --raw /readyz) == ok ]]"

log "starting kube-controller-manager, kube-scheduler, kwok"
KCM_CFG=$CLUSTER_DIR/controller-manager.kubeconfig
start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$KCM_CFG" --authentication-kubeconfig="$KCM_CFG" --authorization-kubeconfig="$KCM_CFG" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
  --controllers='*' --use-service-account-credentials=true \
  --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --cert-dir="$CLUSTER_DIR/pki/kcm-generated" --v=1
SCHED_CFG=$CLUSTER_DIR/scheduler.kubeconfig
start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$SCHED_CFG" --authentication-kubeconfig="$SCHED_CFG" --authorization-kubeconfig="$SCHED_CFG" \
  --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false \
  --cert-dir="$CLUSTER_DIR/pki/scheduler-generated" --v=1
start kwok "$BIN/kwok" --config="$STAGES" --kubeconfig="$CLUSTER_DIR/kwok.kubeconfig" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 --cidr=10.244.0.1/16 --node-ip=10.0.0.1 \
  --server-address="127.0.0.1:$KWOK_PORT"

wait_for kube-controller-manager "kube-controller-manager /healthz" curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
wait_for kube-scheduler "kube-scheduler /healthz" curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz"
wait_for kwok "kwok /healthz" curl -fsS "http://127.0.0.1:$KWOK_PORT/healthz"

# --- fake nodes ----------------------------------------------------------------------------------
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
log "control plane ready in $((SECONDS - START))s (state: $CLUSTER_DIR, logs: $CLUSTER_DIR/logs, stop: hack/cluster-down.sh)"
echo "export KUBECONFIG=$KUBECONFIG_OUT"
