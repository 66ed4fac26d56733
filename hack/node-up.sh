#!/usr/bin/env bash
# The real nodes of the local cluster (CLUSTER_NODES=real), in two steps run by hack/cluster-up.sh:
#   node-up.sh prepare   before the API server: claim the machine (one real profile per machine),
#                        clean up what a killed run left, save sysctls, create the bridges
#                        rayop<i> (10.244.<i>.1/24) and the kubelets' cgroup roots
#   node-up.sh start     after the control plane: per node a containerd and a kubelet; one
#                        kube-proxy (iptables) and one CoreDNS (10.244.0.1:53) for the machine;
#                        waits for nodes Ready and DNS answering
#   node-up.sh check     exit 0 when every node is Ready (cluster-up's health check)
# Names, paths and ports are in hack/node-env.sh; teardown is hack/node-down.sh.
#
# Environment (from cluster-up.sh): CLUSTER_DIR, BIN (kubernetes binaries), TIMEOUT,
# ADMIN_KUBECONFIG.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=node-up
# shellcheck source=hack/processes.sh
source "$HACK/processes.sh"
# shellcheck source=hack/node-env.sh
source "$HACK/node-env.sh"
: "${BIN:?} ${TIMEOUT:=90}"
PKI=$CLUSTER_DIR/pki
KUBECTL=("$BIN/kubectl" --kubeconfig "${ADMIN_KUBECONFIG:-$CLUSTER_DIR/kubeconfig}" --request-timeout=10s)
NODES=()
for ((i = 0; i < NODE_COUNT; i++)); do NODES+=("$(node_name "$i")"); done
prepare() {
  [[ $(id -u) == 0 ]] || die "real nodes need root (bridges, iptables, cgroups, mounts); use CLUSTER_NODES=kwok"
  mkdir -p "$NODE_RUN"
  # Claim the machine under a lock (in the cache: nothing left in /run): two state dirs must not
  # both pass the check.
  mkdir -p "$NODE_CACHE"
  exec 8>"$NODE_CACHE/machine.lock"
  flock 8
  local owner=""
  [[ -f $NODE_OWNER ]] && owner=$(<"$NODE_OWNER")
  if [[ -n $owner && $owner != "$CLUSTER_DIR" ]] && state_dir_active "$owner"; then
    die "the real nodes of this machine belong to the cluster in $owner (bridges, iptables and cgroups are machine-wide: one real cluster per machine).
  Stop it first (CLUSTER_DIR=$owner hack/cluster-down.sh), reuse it (KUBECONFIG=$owner/kubeconfig), or start this one with CLUSTER_NODES=kwok."
  fi
  # A run whose processes were killed (ended session, crashed CI) leaves bridges, mounts, rules.
  if [[ -n $owner ]] || ip -o link show type bridge | grep -q ': rayop[0-9]'; then
    log "cleaning up what an earlier run of real nodes left (owner: ${owner:-unknown})"
    CLUSTER_DIR=${owner:-$CLUSTER_DIR} "$HACK/node-down.sh" --quiet
    mkdir -p "$NODE_RUN"
  fi
  echo "$CLUSTER_DIR" >"$NODE_OWNER"

  # Baseline for node-down.sh: what to restore and which nft tables and paths were there before.
  local s v
  for s in "${NODE_SYSCTLS[@]}"; do
    v=$(sysctl -n "$s" 2>/dev/null) && printf '%s=%s\n' "$s" "$v"
  done >"$NODE_RUN/sysctl.saved"
  nft list tables 2>/dev/null >"$NODE_RUN/nft-tables.before" || true
  for p in /run/containerd /var/log/containers /var/log/pods /var/lib/kubelet /var/lib/cni; do
    [[ -e $p ]] && echo "$p"
  done >"$NODE_RUN/paths.before"

  sysctl -qw net.ipv4.ip_forward=1
  local i br
  for ((i = 0; i < NODE_COUNT; i++)); do
    br=$(node_bridge "$i")
    ip link add "$br" type bridge || die "cannot create bridge $br"
    ip addr add "$(node_ip "$i")/24" dev "$br"
    ip link set "$br" up
  done
  # kubelet requires its cgroupRoot to exist in every v1 hierarchy; cpuset children start with
  # no CPUs or memory nodes, so copy the root's.
  local c d
  for ((i = 0; i < NODE_COUNT; i++)); do
    for c in /sys/fs/cgroup/*/; do
      mountpoint -q "$c" || continue
      d=$c$(node_cgroup "$i")
      mkdir -p "$d"
      if [[ -f $c/cpuset.cpus ]]; then
        cat "$c/cpuset.cpus" >"$d/cpuset.cpus"
        cat "$c/cpuset.mems" >"$d/cpuset.mems"
      fi
    done
  done
  log "bridges $(for ((i = 0; i < NODE_COUNT; i++)); do printf '%s ' "$(node_bridge "$i")"; done)and cgroups ready; owner $CLUSTER_DIR"
}

# write_node_configs <i>: CNI conflist, containerd config, kubelet config and certs of node <i>.
write_node_configs() {
  local i=$1 dir name ip
  dir=$(node_dir "$i") name=$(node_name "$i") ip=$(node_ip "$i")
  mkdir -p "$dir"/{cni,ipam,kubelet,pki,pod-logs} "$(node_run "$i")"
  [[ -f $PKI/$name.crt ]] || sign "$name" "/O=system:nodes/CN=system:node:$name"
  [[ -f $PKI/$name-serving.crt ]] || sign "$name-serving" "/CN=$name" "IP:$ip,DNS:$name"
  kubeconfig "$dir/kubeconfig" "$name"
  : >"$dir/resolv.conf" # empty: pods resolve through cluster DNS only

  # hairpinMode: a pod reaching a Service whose endpoint is itself (kube-proxy masquerades it).
  # No ipMasq: pods keep their own addresses from pod to pod; there is no outside to reach.
  cat >"$dir/cni/10-rayop.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "rayop", "plugins": [
  {"type": "bridge", "bridge": "$(node_bridge "$i")", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$dir/ipam", "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "$(node_subnet "$i")", "gateway": "$ip"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
EOF

  # No CAP_SYS_RESOURCE: oom scores cannot go below 0, hence oom_score and restrict_oom_score_adj.
  # Plugins that would create /opt/containerd or an NRI socket under /var/run are disabled.
  cat >"$dir/containerd.toml" <<EOF
version = 3
root = "$(node_containerd_root "$i")"
state = "$(node_run "$i")/state"
oom_score = 0
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri", "io.containerd.image-verifier.v1.bindir",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$(node_socket "$i")"
[ttrpc]
  address = "$(node_socket "$i").ttrpc"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
        Root = "$(node_run "$i")/runc"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$dir/cni"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "$(containerd_stream_port "$i")"
EOF

  # Settings this VM needs: cgroup v1 (failCgroupV1), no CAP_SYS_RESOURCE (oomScoreAdj 0), images
  # that can never be pulled back (no image GC), a mostly full disk is fine (evictionHard).
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: $(kubelet_port "$i")
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(kubelet_healthz_port "$i")
tlsCertFile: $PKI/$name-serving.crt
tlsPrivateKeyFile: $PKI/$name-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$(node_socket "$i")
cgroupDriver: cgroupfs
cgroupRoot: /$(node_cgroup "$i")
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $dir/resolv.conf
podLogsDir: $dir/pod-logs
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%, imagefs.inodesFree: 1%}
serializeImagePulls: false
maxPods: 110
EOF
}

# dns_answers <name>: CoreDNS on $DNS_IP returns NOERROR with an answer for <name> (a raw A query
# through bash's /dev/udp: no dig or python needed on a fresh machine).
dns_answers() {
  local q="\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" label hex
  local IFS=.
  for label in $1; do q+=$(printf '\\x%02x' "${#label}")$label; done
  q+="\x00\x00\x01\x00\x01"
  # The first dd sends the query as one datagram (printf alone writes it in pieces), the second
  # reads one; timeout in case none comes.
  hex=$(timeout 2 bash -c 'exec 3<>"/dev/udp/$1/53" && printf "$2" | dd bs=512 iflag=fullblock status=none >&3 && dd bs=512 count=1 status=none <&3' _ "$DNS_IP" "$q" |
    od -An -tx1 | tr -d ' \n') || true
  # id 1234, rcode 0 (low nibble of byte 3), answer count > 0
  [[ ${#hex} -ge 16 && ${hex:0:4} == 1234 && ${hex:7:1} == 0 && $((16#${hex:12:4})) -gt 0 ]]
}

start_nodes() {
  [[ -x $NODE_BIN/containerd && -s $PAUSE_TAR ]] || die "missing $NODE_BIN/containerd or $PAUSE_TAR (run hack/build-node.sh)"
  [[ $(<"$NODE_OWNER") == "$CLUSTER_DIR" ]] || die "$NODE_OWNER does not name $CLUSTER_DIR (run node-up.sh prepare first)"
  local i sock out
  for ((i = 0; i < NODE_COUNT; i++)); do
    write_node_configs "$i"
    start "containerd-$i" env PATH="$NODE_BIN:$PATH" "$NODE_BIN/containerd" --config "$(node_dir "$i")/containerd.toml"
  done
  [[ -f $PKI/kube-proxy.crt ]] || sign kube-proxy "/CN=system:kube-proxy"
  [[ -f $PKI/coredns.crt ]] || sign coredns "/O=system:masters/CN=coredns"
  kubeconfig "$CLUSTER_DIR/kube-proxy.kubeconfig" kube-proxy
  kubeconfig "$CLUSTER_DIR/coredns.kubeconfig" coredns

  for ((i = 0; i < NODE_COUNT; i++)); do
    sock=$(node_socket "$i")
    wait_for "containerd-$i" "containerd socket $sock" "$CTR" --address "$sock" version
    if ! "$CTR" --address "$sock" -n k8s.io images ls -q 2>/dev/null | grep -qx "$PAUSE_IMAGE"; then
      out=$("$CTR" --address "$sock" -n k8s.io images import "$PAUSE_TAR" 2>&1) ||
        fail_with "containerd-$i" "importing $PAUSE_TAR into node-$i failed: $out"
    fi
    # Pods of a killed run are still in containerd's metadata: remove them (and their CNI state).
    "$CRICTL" --runtime-endpoint "unix://$sock" --timeout 30s rmp -fa >/dev/null 2>&1 || true
    start "kubelet-$i" "$BIN/kubelet" --config="$(node_dir "$i")/kubelet.yaml" \
      --kubeconfig="$(node_dir "$i")/kubeconfig" --root-dir="$(node_dir "$i")/kubelet" \
      --cert-dir="$(node_dir "$i")/pki" --hostname-override="$(node_name "$i")" --node-ip="$(node_ip "$i")" --v=1
  done

  cat >"$CLUSTER_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CLUSTER_DIR/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: 10.244.0.0/16
hostnameOverride: $(node_name 0)
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
nodePortAddresses: [10.244.0.0/16]
oomScoreAdj: 0
# Leave the machine's conntrack sysctls and route_localnet alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 200ms}
EOF
  start kube-proxy "$BIN/kube-proxy" --config="$CLUSTER_DIR/kube-proxy.yaml" --v=1

  cat >"$CLUSTER_DIR/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $DNS_IP
    errors
    health 127.0.0.1:$COREDNS_HEALTH_PORT
    ready 127.0.0.1:$COREDNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $CLUSTER_DIR/coredns.kubeconfig ray-operator-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    loadbalance
}
EOF
  start coredns "$NODE_BIN/coredns" -conf "$CLUSTER_DIR/Corefile"

  # kube-dns: the usual Service name for cluster DNS, endpoints set by hand (CoreDNS is no pod).
  "${KUBECTL[@]}" apply -f - >/dev/null <<EOF || fail_with kube-apiserver "creating the kube-dns Service failed"
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $KUBE_DNS_SERVICE_IP
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: cluster-up.ray-operator.local}
addressType: IPv4
endpoints: [{addresses: [$DNS_IP]}]
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
EOF

  for ((i = 0; i < NODE_COUNT; i++)); do
    wait_for "kubelet-$i" "node-$i to register" "${KUBECTL[@]}" get node "$(node_name "$i")"
  done
  for ((i = 0; i < NODE_COUNT; i++)); do
    wait_for "kubelet-$i" "node-$i Ready" "${KUBECTL[@]}" wait --for=condition=Ready --timeout=5s node "$(node_name "$i")"
  done
  wait_for kube-proxy "kube-proxy /healthz" curl -fsS "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz"
  wait_for coredns "CoreDNS /ready" curl -fsS "http://127.0.0.1:$COREDNS_READY_PORT/ready"
  wait_for coredns "kubernetes.default.svc.cluster.local from $DNS_IP" dns_answers kubernetes.default.svc.cluster.local
  log "nodes Ready: ${NODES[*]}; DNS on $DNS_IP"
}

check() {
  [[ -f $NODE_OWNER && $(<"$NODE_OWNER") == "$CLUSTER_DIR" ]] || return 1
  local n
  for n in "${NODES[@]}"; do
    [[ $("${KUBECTL[@]}" get node "$n" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] || return 1
  done
  dns_answers kubernetes.default.svc.cluster.local
}

case ${1:-} in
  prepare) prepare ;;
  start) start_nodes ;;
  check) check ;;
  *) die "usage: node-up.sh prepare|start|check" ;;
esac
