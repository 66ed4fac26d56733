#!/usr/bin/env bash
# Stop the cluster started by hack/cluster-up.sh in $CLUSTER_DIR and remove its state.
# Only the processes recorded in $CLUSTER_DIR/pids are stopped (and only if they still run a
# binary from our bin dirs, so a recycled PID is never killed). For real nodes, hack/node-down.sh
# first removes the pods and undoes what the nodes did to the machine (bridges, iptables, mounts,
# cgroups, sysctls).
#
# A nested state dir (e.g. .cluster/kwok, another profile's) is left alone: `make cluster-down`
# stops that one first, with its own CLUSTER_DIR.
#
# Environment: CLUSTER_DIR (default <repo>/.cluster).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$REPO/.cluster}
LOG_TAG=cluster-down
# shellcheck source=hack/processes.sh
source "$REPO/hack/processes.sh"
BIN=$("$REPO/hack/build-k8s.sh" --print-bin-dir)

if [[ ! -d $CLUSTER_DIR ]]; then
  log "no cluster state in $CLUSTER_DIR; nothing to do"
  exit 0
fi
CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)

if [[ -z ${CLUSTER_LOCK_HELD:-} ]]; then
  exec 9>"$CLUSTER_DIR/up.lock"
  flock 9
fi

# Nested state dirs (subdirs with a ports.env or an up.lock of their own) are never removed here.
mapfile -t NESTED < <(find "$CLUSTER_DIR" -mindepth 2 -maxdepth 2 \( -name ports.env -o -name up.lock \) -printf '%h\n' | sort -u)
OWN=()
for p in "$CLUSTER_DIR"/* "$CLUSTER_DIR"/.[!.]*; do
  [[ -e $p && $p != *.lock ]] || continue
  printf '%s\n' "${NESTED[@]}" | grep -qxF -- "$p" && continue
  OWN+=("$p")
done
if ((${#OWN[@]})) && [[ ! -f $CLUSTER_DIR/ports.env ]]; then
  log "refusing to touch $CLUSTER_DIR: it is not a cluster state dir (no ports.env)"
  exit 1
fi

PROFILE=kwok RC=0
if [[ -f $CLUSTER_DIR/ports.env ]]; then
  PROFILE=$(CLUSTER_NODES='' && source "$CLUSTER_DIR/ports.env" && echo "${CLUSTER_NODES:-kwok}")
fi
OWNER_FILE=/run/ray-operator-nodes/owner # hack/node-env.sh's NODE_OWNER
if [[ $PROFILE == real ]] || [[ -f $OWNER_FILE && $(<"$OWNER_FILE") == "$CLUSTER_DIR" ]]; then
  # On failure still stop the control plane; the owner marker stays, so the next cluster-up
  # cleans up again (node-up.sh prepare).
  CLUSTER_DIR=$CLUSTER_DIR "$REPO/hack/node-down.sh" || { log "ERROR: hack/node-down.sh failed (see above)"; RC=1; }
fi

# Stop in reverse start order: clients first, etcd last and only once the API server is gone
# (on the way out it removes its endpoint lease from etcd, and would wait for a dead etcd).
stop_recorded "$BIN" kwok kube-scheduler kube-controller-manager kube-apiserver
stop_recorded "$BIN" etcd

# Keep the lock files (up.lock; the tests' use.lock and turn.lock, tests/support/cluster.rs:
# another process may be waiting on one) and nested state dirs.
((${#OWN[@]} == 0)) || rm -rf "${OWN[@]}"
log "stopped; removed the state in $CLUSTER_DIR${NESTED[*]:+ (kept nested state dirs: ${NESTED[*]})}"
exit "$RC"
