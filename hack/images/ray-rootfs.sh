#!/usr/bin/env bash
# The root filesystem of a Ray image (cached):
#
#   hack/images/ray-rootfs.sh <ray-version> <default|minimal> [<outdir>]
#
# A copy of the base rootfs (hack/images/base-rootfs.sh) with a virtualenv /opt/ray-venv holding
# ray[default]==<version> ("default") or plain ray==<version> ("minimal"), installed offline from
# wheels that pip downloads on the build host for CPython 3.11 / manylinux x86_64 (cached in
# $IMAGES_CACHE/wheels/). /etc/profile.d/ray.sh puts the venv first on PATH, since the operator
# starts Ray with `bash -lc` and /etc/profile resets PATH. The build ends by checking, inside the
# rootfs, that `bash -lc 'ray --version'` and `import ray` report <version> (and, for "default",
# that ray.dashboard and aiohttp import). Prints <outdir> (default $IMAGES_CACHE/rootfs/ray-<tag>).
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version=${1:?usage: ray-rootfs.sh <ray-version> <default|minimal> [<outdir>]}
variant=${2:?usage: ray-rootfs.sh <ray-version> <default|minimal> [<outdir>]}
case $variant in
  default) spec="ray[default]==$version" tag=$version ;;
  minimal) spec="ray==$version" tag=$version-minimal ;;
  *) die "variant must be default or minimal, not $variant" ;;
esac
out=${3:-$IMAGES_CACHE/rootfs/ray-$tag}
venv=/opt/ray-venv

# --- wheels, downloaded on the host (it has the registry access and certificates) ---
wheels=$IMAGES_CACHE/wheels/ray-$tag
wheels_recipe=$(recipe_hash "$spec" cp311 manylinux-2.36-x86_64)
if ! stamp_ok "$wheels.stamp" "$wheels_recipe"; then
  start=$SECONDS
  log "ray $tag: pip download $spec"
  safe_rm "$wheels"
  mkdir -p "$wheels"
  # Every manylinux tag bookworm's glibc 2.36 can run (pip does not expand manylinux_2_x itself).
  platforms=()
  for g in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${g}_x86_64"); done
  platforms+=(--platform manylinux2014_x86_64 --platform linux_x86_64)
  python3 -m pip download --quiet --disable-pip-version-check --no-cache-dir --dest "$wheels" \
    --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none \
    "${platforms[@]}" "$spec"
  echo "$wheels_recipe" >"$wheels.stamp"
  log "ray $tag: $(find "$wheels" -name '*.whl' | wc -l) wheels, $(du -sh "$wheels" | cut -f1), in $(since "$start")"
fi

# --- rootfs ---
base=$("$IMAGES_LIB_DIR/base-rootfs.sh")
recipe=$(recipe_hash "${BASH_SOURCE[0]}" "$base.stamp" "$wheels.stamp" "$spec")
if stamp_ok "$out.stamp" "$recipe" && [[ -x $out$venv/bin/ray ]]; then
  log "ray $tag: rootfs cached in $out"
  echo "$out"
  exit 0
fi

start=$SECONDS
tmp=$out.tmp
trap 'umount_under "$tmp"' EXIT
safe_rm "$tmp"
mkdir -p "$(dirname "$out")"
cp -a "$base" "$tmp"
mkdir -p "$tmp/tmp/wheels"
cp "$wheels"/*.whl "$tmp/tmp/wheels/"

log "ray $tag: installing $spec into $venv (offline)"
chroot_run "$tmp" sh -ec "
  python3 -m venv $venv
  $venv/bin/pip install --quiet --no-index --find-links /tmp/wheels --no-cache-dir \
    --disable-pip-version-check '$spec'
"
safe_rm "$tmp/tmp/wheels" "$tmp/root/.cache"
cat >"$tmp/etc/profile.d/ray.sh" <<EOF
# Ray's virtualenv first on PATH: the operator starts Ray with \`bash -lc\`.
export PATH="$venv/bin:\$PATH"
export LANG=C.UTF-8
EOF
chmod 644 "$tmp/etc/profile.d/ray.sh"
chmod 1777 "$tmp/tmp"

log "ray $tag: checking the rootfs"
check="set -e
  test \"\$(ray --version)\" = 'ray, version $version' || { ray --version; exit 1; }
  test \"\$(python -c 'import ray; print(ray.__version__)')\" = '$version'
  test \"\$(command -v ray)\" = $venv/bin/ray"
[[ $variant == minimal ]] || check+="
  python -c 'import ray.dashboard, aiohttp'"
check_out=$(chroot_run "$tmp" bash -lc "$check" 2>&1) || { echo "$check_out" >&2; die "ray $tag: check failed in $tmp"; }
# The same as the unprivileged user ray (uid 1000) of the legacy images.
check_out=$(chroot_run "$tmp" su ray -c "bash -lc 'cd && ray --version'" 2>&1) ||
  { echo "$check_out" >&2; die "ray $tag: check as user ray failed"; }
log "ray $tag: bash -lc 'ray --version' and import ray give $version, as root and as user ray"

umount_under "$tmp"
safe_rm "$out"
mv "$tmp" "$out"
echo "$recipe" >"$out.stamp"
log "ray $tag: rootfs built in $(since "$start"), $(du -sh "$out" | cut -f1)"
echo "$out"
