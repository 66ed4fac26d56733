#!/usr/bin/env bash
# Stop the real nodes of hack/node-up.sh and undo everything they did to the machine:
#   pods (through CRI, so CNI releases addresses and veths), kubelets, kube-proxy, CoreDNS,
#   containerds and their shims; mounts under the nodes' dirs; kube-proxy's, kubelet's and CNI's
#   iptables rules and the nft tables they created; the rayop<i> bridges; the kubelets' cgroups;
#   the sysctls saved before the first kubelet started; paths like /var/log/containers they made.
# Idempotent, and works on what a killed run left (no process alive, state dir half gone).
# Run by hack/cluster-down.sh (real profile) and by node-up.sh prepare (stale state).
#
# Environment: CLUSTER_DIR (the state dir that owns the real nodes). --quiet: fewer log lines.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=node-down
# shellcheck source=hack/processes.sh
source "$HACK/processes.sh"
# shellcheck source=hack/node-env.sh
source "$HACK/node-env.sh"
NODE_COUNT=3 # whatever ports.env says (it may be gone): clean up every node slot
BIN=$("$HACK/build-k8s.sh" --print-bin-dir)
QUIET=${1:-}
say() { [[ $QUIET == --quiet ]] || log "$@"; }

# The machine-wide part belongs to one state dir: never undo another one's nodes.
if [[ -f $NODE_OWNER && $(<"$NODE_OWNER") != "$CLUSTER_DIR" ]]; then
  say "the real nodes of this machine belong to $(<"$NODE_OWNER"), not $CLUSTER_DIR: leaving them alone"
  exit 0
fi

# node_pids: PIDs of our node processes that pid files may not know of (shims, or all of them when
# the state dir was removed): a binary from our bin dirs whose command line names our paths.
node_pids() {
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    [[ $cmd == "$NODE_BIN/"* || $cmd == "$BIN/kubelet "* || $cmd == "$BIN/kube-proxy "* ]] || continue
    [[ $cmd == *"$NODE_RUN/"* || $cmd == *"$CLUSTER_DIR/nodes/"* || $cmd == *"$CLUSTER_DIR/kube-proxy.yaml"* ||
      $cmd == *"$CLUSTER_DIR/Corefile"* ]] && echo "${p#/proc/}"
  done
}

# 1. Kubelets first, so none recreates a pod while the pods are removed.
stop_recorded "$BIN" kubelet-0 kubelet-1 kubelet-2
# 2. Every pod through CRI while containerd still runs: CNI DEL frees IPs, veths, portmaps.
for ((i = 0; i < NODE_COUNT; i++)); do
  sock=$(node_socket "$i")
  [[ -S $sock ]] || continue
  if timeout 5 "$CTR" --address "$sock" version >/dev/null 2>&1; then
    say "removing the pods of node-$i"
    timeout 90 "$CRICTL" --runtime-endpoint "unix://$sock" --timeout 60s rmp -fa >/dev/null 2>&1 ||
      log "warning: crictl rmp -fa on node-$i failed; cleaning up by hand"
  fi
done
# 3. The rest, by PID; then any of ours the pid files missed (shims of a killed containerd, ...).
stop_recorded "$BIN:$NODE_BIN" kube-proxy coredns containerd-0 containerd-1 containerd-2
mapfile -t strays < <(node_pids)
if ((${#strays[@]})); then
  say "stopping leftover node processes: ${strays[*]}"
  kill -TERM "${strays[@]}" 2>/dev/null || true
  stop_pids "${strays[@]}" -- "$BIN" "$NODE_BIN"
fi
# Container processes live in the kubelets' cgroups (created by node-up.sh, so all ours).
for ((i = 0; i < NODE_COUNT; i++)); do
  for c in /sys/fs/cgroup/pids /sys/fs/cgroup/memory /sys/fs/cgroup/unified; do
    [[ -d $c/$(node_cgroup "$i") ]] || continue
    mapfile -t procs < <(find "$c/$(node_cgroup "$i")" -name cgroup.procs -exec cat {} + 2>/dev/null)
    if ((${#procs[@]})); then
      say "killing ${#procs[@]} leftover container processes of node-$i"
      kill -KILL "${procs[@]}" 2>/dev/null || true
      sleep 0.5
    fi
  done
done

# 4. Mounts under the nodes' dirs (rootfs overlays, netns, shm, volumes), deepest first.
prefixes=("$NODE_RUN/" "$CLUSTER_DIR/nodes/")
for ((i = 0; i < NODE_COUNT; i++)); do prefixes+=("$(node_containerd_root "$i")/"); done
mounts() {
  local mp p
  # Field 5 of mountinfo is the mount point (octal escapes for spaces: our paths have none).
  while read -r _ _ _ _ mp _; do
    for p in "${prefixes[@]}"; do [[ $mp == "$p"* ]] && echo "$mp"; done
  done </proc/self/mountinfo | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-
}
for _ in 1 2 3; do
  mapfile -t mps < <(mounts)
  ((${#mps[@]})) || break
  say "unmounting ${#mps[@]} mounts under the nodes' dirs"
  for mp in "${mps[@]}"; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true; done
done
mapfile -t mps < <(mounts)
((${#mps[@]} == 0)) || log "warning: still mounted: ${mps[*]}"

# 5. iptables: drop every KUBE-* and CNI-* chain and every rule jumping to one (kube-proxy,
#    kubelet canaries, portmap), leaving other rules as they were.
for fam in iptables ip6tables; do
  command -v "$fam-save" >/dev/null || continue
  dump=$("$fam-save" 2>/dev/null) || continue
  grep -qE '(^:|-A |-j |-g )(KUBE-|CNI-)' <<<"$dump" || continue
  say "removing KUBE-* and CNI-* rules ($fam)"
  grep -vE '^:(KUBE-|CNI-)|^-A (KUBE-|CNI-)|-[jg] (KUBE-|CNI-)' <<<"$dump" | "$fam-restore" ||
    log "warning: $fam-restore failed; rules left: $("$fam-save" | grep -cE 'KUBE-|CNI-')"
done
# nft tables that were not there before node-up.sh prepare and hold nothing now (iptables-nft's
# tables, kube-proxy's own): delete them, so `nft list tables` reads as before.
if command -v nft >/dev/null; then
  while read -r _ fam name; do
    [[ -n $name ]] || continue
    grep -qx "table $fam $name" "$NODE_RUN/nft-tables.before" 2>/dev/null && continue
    if [[ $name == kube-proxy ]] || ! nft -j list table "$fam" "$name" | grep -qE '"(rule|set|map)"'; then
      nft delete table "$fam" "$name" 2>/dev/null || log "warning: could not delete nft table $fam $name"
    fi
  done < <(nft list tables 2>/dev/null)
fi

# 6. Bridges (their veths went with the pods' netns).
for link in $(ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: \(rayop[0-9]*\)[:@].*/\1/p'); do
  ip link del "$link" 2>/dev/null || log "warning: could not delete link $link"
done

# 7. cgroups, leaves first.
for ((i = 0; i < NODE_COUNT; i++)); do
  for c in /sys/fs/cgroup/*/; do
    d=$c$(node_cgroup "$i")
    [[ -d $d ]] && { find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
    [[ -d $d ]] && log "warning: cgroup $d is still there"
  done
done

# 8. Sysctls as they were before the first kubelet, and paths the node processes created.
if [[ -f $NODE_RUN/sysctl.saved ]]; then
  while IFS='=' read -r key val; do
    [[ $(sysctl -n "$key" 2>/dev/null) == "$val" ]] || sysctl -qw "$key=$val" 2>/dev/null ||
      log "warning: could not restore $key=$val"
  done <"$NODE_RUN/sysctl.saved"
fi
# Fixed paths the node processes use whatever their config says: the device manager's socket
# (/var/lib/kubelet/device-plugins), /var/log/containers symlinks, libcni's result cache
# (/var/lib/cni), shim sockets and client FIFOs (/run/containerd). Another containerd on the
# machine may use some too: remove only our entries, then the dirs that are empty and were not
# there before node-up.sh prepare.
rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/cni/results/rayop-*
# libcni's cached results name the pod's netns, which lives under $NODE_RUN (loopback ones too).
for f in /var/lib/cni/results/*; do
  if [[ -f $f ]] && grep -qsF "$NODE_RUN/" "$f"; then rm -f "$f"; fi
done
if [[ -d /var/log/containers ]]; then
  find /var/log/containers -maxdepth 1 -type l -lname "$CLUSTER_DIR/nodes/*" -delete 2>/dev/null || true
fi
if [[ -f $NODE_RUN/paths.before ]]; then
  for p in /run/containerd /var/log/containers /var/log/pods /var/lib/kubelet /var/lib/cni; do
    if [[ -e $p ]] && ! grep -qx "$p" "$NODE_RUN/paths.before"; then
      find "$p" -depth -type d -empty -delete 2>/dev/null || true
    fi
  done
fi
rm -rf "$NODE_RUN"
say "real nodes stopped and the machine cleaned up"
