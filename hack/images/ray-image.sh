#!/usr/bin/env bash
# A Ray image as an OCI archive (cached):
#
#   hack/images/ray-image.sh <ray-version> <default|minimal> [<out.tar>]
#
# The rootfs of hack/images/ray-rootfs.sh packed by hack/images/oci-archive.py as
# <chart image repository>:<version> ("default", ray[default]) or :<version>-minimal (plain ray),
# e.g. docker.io/rayproject/ray:2.47.1. Config: Env PATH with /opt/ray-venv/bin first, LANG,
# WorkingDir /home/ray, Cmd ["bash"], user root (uid 0; the image also has user ray, uid 1000,
# home /home/ray, as the legacy images ran with). Prints the archive's path; its manifest
# digest is in <out.tar>.digest.
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version=${1:?usage: ray-image.sh <ray-version> <default|minimal> [<out.tar>]}
variant=${2:?usage: ray-image.sh <ray-version> <default|minimal> [<out.tar>]}
case $variant in
  default) tag=$version ;;
  minimal) tag=$version-minimal ;;
  *) die "variant must be default or minimal, not $variant" ;;
esac
repo=$(image_ref "$(chart_value image)")
image=${repo%:*}:$tag
out=${3:-$IMAGES_CACHE/archives/$(archive_name "$image")}
mkdir -p "$(dirname "$out")"

rootfs=$("$IMAGES_LIB_DIR/ray-rootfs.sh" "$version" "$variant")
args=(--env PATH=/opt/ray-venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  --env LANG=C.UTF-8 --workdir /home/ray --cmd '["bash"]'
  --label "org.opencontainers.image.version=$version" --label "io.ray.variant=$variant")
recipe=$(recipe_hash "$rootfs.stamp" "$IMAGES_LIB_DIR/oci-archive.py" "$image" "${args[@]}")
if stamp_ok "$out.stamp" "$recipe" && [[ -f $out && -f $out.digest ]]; then
  log "ray $tag: $image cached in $out"
  echo "$out"
  exit 0
fi
start=$SECONDS
python3 "$IMAGES_LIB_DIR/oci-archive.py" "$rootfs" "$image" "$out" "${args[@]}" >"$out.digest"
echo "$recipe" >"$out.stamp"
log "ray $tag: $image packed in $(since "$start"), $(du -h "$out" | cut -f1)"
echo "$out"
