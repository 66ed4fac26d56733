#!/usr/bin/env bash
# `make images`: build the images the chart names as OCI archives and import them into the
# containerd of every real node of the local cluster (no registry needed):
#
#   docker.io/rayproject/ray:<v>            ray[default]==<v>, for each v in RAY_VERSIONS
#   docker.io/rayproject/ray:<v>-minimal    plain ray==<v>, for each v in RAY_MINIMAL_VERSIONS
#   docker.io/rayproject/ray-operator:0.1.0 target/release/ray-operator of this checkout
#
# (repositories and the operator's tag from charts/ray/values.yaml). Everything heavy is cached
# in ${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/images (base rootfs, wheels, rootfs per
# image, archives) behind stamps, and a node that already has an image at the archive's digest
# is skipped: a warm run takes seconds. Starts the cluster with hack/cluster-up.sh (a no-op
# when it is healthy) before importing.
#
# Environment:
#   RAY_VERSIONS          Ray versions of the [default] images (default "2.47.1 2.60.0")
#   RAY_MINIMAL_VERSIONS  Ray versions of the -minimal images (default "2.47.1")
#   IMAGES_IMPORT=0       only build the archives (no cluster needed)
#   CLUSTER_DIR           the cluster's state dir (default <repo>/.cluster)
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/images/lib.sh"

read -r -a ray_versions <<<"${RAY_VERSIONS:-2.47.1 2.60.0}"
read -r -a minimal_versions <<<"${RAY_MINIMAL_VERSIONS:-2.47.1}"
export CLUSTER_DIR=${CLUSTER_DIR:-$REPO/.cluster}

# One run at a time per cache (a second waits).
exec 8>"$IMAGES_CACHE/images.lock"
flock 8

total=$SECONDS
timings=()
archives=()
images=()
add() { # add <archive> <seconds> <what>
  archives+=("$1")
  images+=("$(archive_image_name "$1")")
  timings+=("$(printf '%-48s %5ss  %s' "$3" "$2" "$(du -h "$1" | cut -f1)")")
}
# The image name an archive holds: its index.json annotation.
archive_image_name() {
  tar -xOf "$1" --occurrence=1 index.json | sed -n 's/.*"io.containerd.image.name":"\([^"]*\)".*/\1/p'
}

for v in "${ray_versions[@]}"; do
  t=$SECONDS
  a=$("$IMAGES_LIB_DIR/ray-image.sh" "$v" default)
  add "$a" $((SECONDS - t)) "build ray:$v"
done
for v in "${minimal_versions[@]}"; do
  t=$SECONDS
  a=$("$IMAGES_LIB_DIR/ray-image.sh" "$v" minimal)
  add "$a" $((SECONDS - t)) "build ray:$v-minimal"
done
t=$SECONDS
a=$("$IMAGES_LIB_DIR/operator-image.sh")
add "$a" $((SECONDS - t)) "build ray-operator"

if [[ ${IMAGES_IMPORT:-1} != 0 ]]; then
  t=$SECONDS
  # 8>&-: daemons it starts must not inherit (and hold) the lock.
  "$REPO/hack/cluster-up.sh" >&2 8>&-
  timings+=("$(printf '%-48s %5ss' "cluster-up" $((SECONDS - t)))")
  # shellcheck disable=SC1091
  source "$REPO/hack/node-env.sh"
  [[ ${NODE_COUNT:-0} -gt 0 ]] ||
    die "the cluster in $CLUSTER_DIR has no real nodes (a kwok cluster?): nothing to import into"
  for i in "${!archives[@]}"; do
    t=$SECONDS
    "$IMAGES_LIB_DIR/import.sh" "${archives[$i]}" "${images[$i]}"
    timings+=("$(printf '%-48s %5ss' "import ${images[$i]#docker.io/}" $((SECONDS - t)))")
  done
fi

log "done in $((SECONDS - total))s:"
printf '  %s\n' "${timings[@]}" >&2
printf '%s\n' "${images[@]}"
