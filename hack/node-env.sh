# The real nodes of the local cluster: names, paths, addresses, ports. Sourced (with CLUSTER_DIR
# set) by hack/node-up.sh, node-down.sh, cluster-up.sh, cluster-down.sh, and by anything that
# loads images into the nodes:
#
#   CLUSTER_DIR=.cluster source hack/node-env.sh
#   for s in $(node_sockets); do "$CTR" --address "$s" -n k8s.io images import my-image.tar; done
#   # or simply: node_import my-image.tar
#
# Defines NODE_COUNT (0 when CLUSTER_DIR holds a kwok cluster), CTR, CRICTL, NODE_BIN,
# node_sockets, node_import, and the per-node helpers below. Sets no shell options.
# shellcheck shell=bash disable=SC2034

_node_env_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${CLUSTER_DIR:=$_node_env_repo/.cluster}"

NODE_CACHE=${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/node
NODE_BIN=$NODE_CACHE/bin
CTR=$NODE_BIN/ctr
CRICTL=$NODE_BIN/crictl
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2
PAUSE_TAR=$NODE_CACHE/images/pause.tar

# Bridges, iptables rules and cgroups are machine-wide, so only one state dir may run real nodes:
# NODE_RUN/owner names it. Sockets and containerd state live here too (short paths: a unix socket
# path must stay under 108 bytes whatever the checkout's path).
NODE_RUN=/run/ray-operator-nodes
NODE_OWNER=$NODE_RUN/owner

# The profile and ports recorded by cluster-up.sh (absent before the first run).
if [[ -f $CLUSTER_DIR/ports.env ]]; then
  # shellcheck disable=SC1091
  source "$CLUSTER_DIR/ports.env"
fi
if [[ ${CLUSTER_NODES:-real} == real ]]; then NODE_COUNT=3; else NODE_COUNT=0; fi
NODE_PORT_BASE=${PORT_BASE:-${CLUSTER_PORT_BASE:-26443}}

node_name() { echo "node-$1"; }
node_ip() { echo "10.244.$1.1"; }           # the bridge's address: the node's InternalIP
node_subnet() { echo "10.244.$1.0/24"; }    # its pods
node_bridge() { echo "rayop$1"; }
node_dir() { echo "$CLUSTER_DIR/nodes/node-$1"; }           # kubelet root, configs, CNI, IPAM
node_cgroup() { echo "rayop-node-$1"; }                      # kubelet cgroupRoot (/rayop-node-<i>)
node_containerd_root() { echo "$NODE_CACHE/containerd-$1"; } # images survive cluster-down
node_run() { echo "$NODE_RUN/node-$1"; }                     # containerd state (tmpfs-like)
node_socket() { echo "$NODE_RUN/node-$1/containerd.sock"; }

# Ports, after the control plane's base+0..5 (see ports.env): base+10.. is the real nodes'.
kubelet_port() { echo $((NODE_PORT_BASE + 10 + $1)); }
kubelet_healthz_port() { echo $((NODE_PORT_BASE + 13 + $1)); }
containerd_stream_port() { echo $((NODE_PORT_BASE + 16 + $1)); }
KUBE_PROXY_HEALTHZ_PORT=$((NODE_PORT_BASE + 19))
KUBE_PROXY_METRICS_PORT=$((NODE_PORT_BASE + 20))
COREDNS_HEALTH_PORT=$((NODE_PORT_BASE + 21))
COREDNS_READY_PORT=$((NODE_PORT_BASE + 22))
DNS_IP=10.244.0.1       # CoreDNS (a host process) listens here; kubelets' clusterDNS
KUBE_DNS_SERVICE_IP=10.96.0.10

# Sysctls that kubelet (kernel tunables), kube-proxy and the CNI bridge plugin may change: saved
# by node-up.sh prepare, restored by node-down.sh.
NODE_SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.ipv6.conf.all.forwarding
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait)

# node_sockets: each node's containerd socket, one a line (none for a kwok cluster).
node_sockets() {
  local i
  for ((i = 0; i < NODE_COUNT; i++)); do node_socket "$i"; done
}

# node_import <image archive>: import a docker or OCI archive into every node's containerd
# (namespace k8s.io, where the kubelet looks).
node_import() {
  local s out
  for s in $(node_sockets); do
    out=$("$CTR" --address "$s" -n k8s.io images import "$1" 2>&1) || { echo "$out" >&2; return 1; }
  done
}
