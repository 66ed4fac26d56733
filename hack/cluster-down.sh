#!/usr/bin/env bash
# Stop the local control plane started by hack/cluster-up.sh and remove its state.
# Only the processes recorded in $CLUSTER_DIR/pids are stopped (and only if they still run a
# binary from the state's bin dir, so a recycled PID is never killed).
#
# Environment: CLUSTER_DIR (default <repo>/.cluster).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$REPO/.cluster}
BIN=$("$REPO/hack/build-k8s.sh" --print-bin-dir)

log() { printf '[cluster-down %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ ! -d $CLUSTER_DIR ]]; then
  log "no control plane state in $CLUSTER_DIR; nothing to do"
  exit 0
fi

if [[ -z ${CLUSTER_LOCK_HELD:-} ]]; then
  exec 9>"$CLUSTER_DIR/up.lock"
  flock 9
fi

if [[ -n $(ls -A "$CLUSTER_DIR" | grep -vx up.lock) && ! -f $CLUSTER_DIR/ports.env ]]; then
  log "refusing to touch $CLUSTER_DIR: it is not a control plane state dir (no ports.env)"
  exit 1
fi

# ours <pid>: the process is alive and runs one of our binaries.
ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q "^$BIN/"; }

pids=()
# Stop in reverse start order: clients first, etcd last.
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f=$CLUSTER_DIR/pids/$name.pid
  [[ -f $f ]] || continue
  pid=$(<"$f")
  if ours "$pid"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  fi
done

deadline=$((SECONDS + 15))
for pid in "${pids[@]}"; do
  while ours "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if ours "$pid"; then
    log "pid $pid did not exit after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
done

# Keep up.lock: another process may be waiting on it.
find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name up.lock -exec rm -rf {} +
log "stopped; removed the state in $CLUSTER_DIR"
