# shellcheck shell=bash
# Shared helpers of hack/images/*.sh (sourced, not run).
#
# IMAGES_CACHE: ${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/images, where root filesystems,
# wheels and archives are kept between runs. Each cached thing has a stamp file next to it that
# holds the hash of the recipe it was built from; a matching stamp means "done, skip".

IMAGES_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$IMAGES_LIB_DIR/../.." && pwd)
IMAGES_CACHE=${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/images
mkdir -p "$IMAGES_CACHE"

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Hash of the given files' contents and of any extra strings: the recipe of a cached thing.
recipe_hash() {
  local f
  {
    for f in "$@"; do
      if [[ -f $f ]]; then sha256sum <"$f"; else printf '%s\n' "$f"; fi
    done
  } | sha256sum | cut -c1-16
}

stamp_ok() { [[ -f $1 && $(<"$1") == "$2" ]]; }

# Mount points at or below $1, deepest first.
mounts_under() {
  local dir
  dir=$(realpath -m "$1")
  awk -v d="$dir" '{ gsub(/\\040/, " ", $2); if ($2 == d || index($2, d "/") == 1) print $2 }' /proc/self/mounts |
    sort -r
}

# Unmount everything at or below $1 (lazily when busy). Safe to call when nothing is mounted.
umount_under() {
  local m
  while read -r m; do
    [[ -n $m ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "WARNING: could not unmount $m"
  done < <(mounts_under "$1")
}

# rm -rf that refuses to descend into a tree that still has something mounted in it.
safe_rm() {
  local d
  for d in "$@"; do
    [[ -e $d ]] || continue
    umount_under "$d"
    [[ -z $(mounts_under "$d") ]] || die "refusing to remove $d: still has mounts"
    rm -rf --one-file-system "$d"
  done
}

# Run a command inside a root filesystem with /proc mounted (and unmounted again whatever
# happens) and a clean environment: no host PIP_*, SSL_*, proxy or certificate variables.
# /dev is the rootfs's own (debootstrap creates the few device nodes), never a bind of the host's.
chroot_run() {
  local root=$1
  shift
  mkdir -p "$root/proc"
  mount -t proc proc "$root/proc"
  local rc=0
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive \
    chroot "$root" "$@" || rc=$?
  umount "$root/proc" 2>/dev/null || umount -l "$root/proc"
  return $rc
}

# Seconds since $1 (an earlier $SECONDS), e.g. "12s".
since() { printf '%ss' $((SECONDS - $1)); }

# chart_value <key>: a top-level scalar of charts/ray/values.yaml, e.g. `image`.
chart_value() {
  local v
  v=$(sed -n "s/^$1:[[:space:]]*//p" "$REPO/charts/ray/values.yaml" | head -1)
  v=${v%%#*}
  v=${v//\"/}
  v=${v//\'/}
  v=${v%"${v##*[![:space:]]}"}
  [[ -n $v ]] || die "no $1 in charts/ray/values.yaml"
  echo "$v"
}

# image_ref <name>: the full reference containerd stores, e.g. rayproject/ray:2.47.1 ->
# docker.io/rayproject/ray:2.47.1, busybox -> docker.io/library/busybox:latest.
image_ref() {
  local ref=$1 first=${1%%/*}
  if [[ $ref != */* ]]; then
    ref=docker.io/library/$ref
  elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then
    ref=docker.io/$ref
  fi
  local last=${ref##*/}
  [[ $last == *:* || $last == *@* ]] || ref=$ref:latest
  echo "$ref"
}

# archive_name <ref>: a file name for the archive of <ref>, e.g. rayproject-ray-2.47.1.tar.
archive_name() {
  local r=${1#docker.io/}
  r=${r#library/}
  r=${r//\//-}
  echo "${r//:/-}.tar"
}
