#!/usr/bin/env bash
# Import an image archive into the containerd of every real node of the local cluster:
#
#   hack/images/import.sh <archive.tar> <image-name>
#
# <image-name> as the chart spells it (rayproject/ray:2.47.1) or in full
# (docker.io/rayproject/ray:2.47.1). Nodes come from hack/node-env.sh (CLUSTER_DIR, default
# <repo>/.cluster): `ctr -n k8s.io images import` per node socket, the nodes in parallel. A node
# that already has the image with the archive's manifest digest (<archive>.digest, else the
# archive's index.json) is skipped. Fails when the cluster has no real nodes.
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

archive=${1:?usage: import.sh <archive.tar> <image-name>}
image=$(image_ref "${2:?usage: import.sh <archive.tar> <image-name>}")
[[ -f $archive ]] || die "no archive $archive"

export CLUSTER_DIR=${CLUSTER_DIR:-$REPO/.cluster}
[[ -f $REPO/hack/node-env.sh ]] || die "hack/node-env.sh is missing"
# shellcheck disable=SC1091
source "$REPO/hack/node-env.sh"
[[ ${NODE_COUNT:-0} -gt 0 ]] || die "the cluster in $CLUSTER_DIR has no real nodes (NODE_COUNT=${NODE_COUNT:-0})"
[[ -x $CTR ]] || die "no ctr at $CTR (hack/build-node.sh builds it)"

if [[ -s $archive.digest ]]; then
  want=$(<"$archive.digest")
else
  want=$(tar -xOf "$archive" --occurrence=1 index.json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
fi

# have <socket>: the manifest digest the node's containerd has for $image (empty when none).
have() {
  "$CTR" --address "$1" -n k8s.io images ls "name==$image" 2>/dev/null | awk -v n="$image" '$1 == n { print $3 }'
}

import_one() {
  local sock=$1 start=$SECONDS got
  if [[ $(have "$sock") == "$want" ]]; then
    log "import $image: $sock already has $want"
    return 0
  fi
  local err
  err=$(mktemp)
  "$CTR" --address "$sock" -n k8s.io images import "$archive" >/dev/null 2>"$err" || {
    grep -v DEPRECATION "$err" >&2
    rm -f "$err"
    die "ctr import of $archive into $sock failed"
  }
  rm -f "$err"
  got=$(have "$sock")
  [[ $got == "$want" ]] || die "after import, $sock has $image at '$got', not $want"
  log "import $image: into $sock in $(since "$start")"
}

pids=()
for sock in $(node_sockets); do
  [[ -S $sock ]] || die "no containerd socket $sock (is the cluster up? hack/cluster-up.sh)"
  import_one "$sock" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
