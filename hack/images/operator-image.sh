#!/usr/bin/env bash
# The operator image as an OCI archive (cached):
#
#   hack/images/operator-image.sh [<out.tar>]
#
# Builds `cargo build --release --locked` in the checkout this script belongs to, lays the binary
# out with hack/images/operator-rootfs.sh (as the Dockerfile does), and packs it with
# hack/images/oci-archive.py as the chart's operatorImage (charts/ray/values.yaml), running as
# 65532:65532 with ENTRYPOINT ["ray-operator"] and PATH=/usr/local/bin. The archive is rebuilt
# only when the binary or these scripts changed. Prints the archive's path; its manifest digest
# is in <out.tar>.digest.
#
# Environment: OPERATOR_BIN skips cargo and packs that binary instead.
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

image=$(image_ref "$(chart_value operatorImage)")
out=${1:-$IMAGES_CACHE/archives/$(archive_name "$image")}
mkdir -p "$(dirname "$out")"

if [[ -n ${OPERATOR_BIN:-} ]]; then
  bin=$OPERATOR_BIN
else
  start=$SECONDS
  log "operator: cargo build --release --locked in $REPO"
  (cd "$REPO" && cargo build --release --locked --quiet)
  bin=$REPO/target/release/ray-operator
  log "operator: cargo done in $(since "$start")"
fi
[[ -x $bin ]] || die "no binary at $bin"

args=(--entrypoint '["ray-operator"]' --env PATH=/usr/local/bin --user 65532:65532 --workdir /)
recipe=$(recipe_hash "$bin" "$IMAGES_LIB_DIR/operator-rootfs.sh" "$IMAGES_LIB_DIR/oci-archive.py" "$image" "${args[@]}")
if stamp_ok "$out.stamp" "$recipe" && [[ -f $out && -f $out.digest ]]; then
  log "operator: $image cached in $out"
  echo "$out"
  exit 0
fi

start=$SECONDS
rootfs=$(mktemp -d "$IMAGES_CACHE/operator-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
rmdir "$rootfs"
"$IMAGES_LIB_DIR/operator-rootfs.sh" "$bin" "$rootfs"
# The binary's mtime is the build's; everything else gets it too, so an unchanged binary packs
# to the same bytes.
find "$rootfs" -exec touch -h -r "$bin" {} +
python3 "$IMAGES_LIB_DIR/oci-archive.py" "$rootfs" "$image" "$out" "${args[@]}" >"$out.digest"
echo "$recipe" >"$out.stamp"
log "operator: $image packed in $(since "$start"), $(du -h "$out" | cut -f1)"
echo "$out"
