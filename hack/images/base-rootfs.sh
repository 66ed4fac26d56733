#!/usr/bin/env bash
# The Debian bookworm root filesystem every Ray image starts from (built once, cached):
#
#   hack/images/base-rootfs.sh [<outdir>]    # default $IMAGES_CACHE/base-bookworm
#
# debootstrap --variant=minbase plus python3 (3.11, the CPython the Ray wheels are downloaded
# for), python3-venv, procps, ca-certificates; user ray (uid/gid 1000, home /home/ray). Apt
# lists, caches, docs, man pages and locales are dropped. Prints <outdir>.
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out=${1:-$IMAGES_CACHE/base-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=python3,python3-venv,procps,ca-certificates
recipe=$(recipe_hash "${BASH_SOURCE[0]}" "$mirror" "$packages")

if stamp_ok "$out.stamp" "$recipe" && [[ -x $out/usr/bin/python3 ]]; then
  log "base rootfs: cached in $out"
  echo "$out"
  exit 0
fi

command -v debootstrap >/dev/null || {
  log "installing debootstrap"
  apt-get install -y -qq debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
}

start=$SECONDS
tmp=$out.tmp
trap 'umount_under "$tmp"' EXIT
safe_rm "$tmp"
mkdir -p "$tmp"
log "base rootfs: debootstrap bookworm ($packages) into $tmp"
debootstrap --variant=minbase --include="$packages" bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
  { tail -20 "$tmp.log" >&2; umount_under "$tmp"; die "debootstrap failed (log: $tmp.log)"; }
umount_under "$tmp" # debootstrap mounts /proc and /sys itself; make sure nothing stays

chroot_run "$tmp" sh -ec '
  groupadd --gid 1000 ray
  useradd --uid 1000 --gid 1000 --create-home --home-dir /home/ray --shell /bin/bash ray
  apt-get clean
'

# Trim: nothing below is needed at run time.
(
  cd "$tmp"
  rm -rf var/lib/apt/lists/* var/cache/apt/* var/cache/debconf/*-old var/cache/ldconfig/* \
    var/log/* usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/lintian \
    usr/share/locale/* usr/share/common-licenses tmp/* root/.cache debootstrap
  # Files the container runtime bind-mounts; never the build host's.
  : >etc/resolv.conf
  : >etc/hostname
  rm -f etc/machine-id var/lib/dbus/machine-id
)
umount_under "$tmp"
[[ -z $(mounts_under "$tmp") ]] || die "mounts left below $tmp"
safe_rm "$out"
mv "$tmp" "$out"
mv "$tmp.log" "$out.log"
echo "$recipe" >"$out.stamp"
log "base rootfs: built in $(since "$start"), $(du -sh "$out" | cut -f1)"
echo "$out"
