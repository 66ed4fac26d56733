#!/usr/bin/env bash
# Lay out the operator image's root filesystem (used by `make images` and by the Dockerfile's
# final stage, so the two stay alike):
#
#   hack/images/operator-rootfs.sh <ray-operator binary> <outdir>
#
#   /usr/local/bin/ray-operator       the binary (the image's PATH is /usr/local/bin)
#   the dynamic loader and exactly the libraries `ldd` lists, at the paths ldd prints
#   /etc/passwd, /etc/group           root and nonroot (65532:65532, home /home/nonroot)
#   /etc/nsswitch.conf                hosts: files dns (glibc >= 2.34 has both built in)
#   /etc/ssl/certs/ca-certificates.crt  when the build host has it
#   /tmp (1777), /home/nonroot (700, 65532)
# No shell. Nothing needs to be writable: the operator runs with readOnlyRootFilesystem.
# Needs bash, ldd and coreutils only (the Dockerfile runs it in rust:*-bookworm).
set -euo pipefail

bin=${1:?usage: operator-rootfs.sh <binary> <outdir>}
out=${2:?usage: operator-rootfs.sh <binary> <outdir>}
[[ -x $bin ]] || { echo "operator-rootfs.sh: $bin is not an executable" >&2; exit 1; }
if [[ -e $out && -n $(ls -A "$out") ]]; then
  echo "operator-rootfs.sh: $out exists and is not empty" >&2
  exit 1
fi

mkdir -p "$out"/{usr/local/bin,etc,tmp,home/nonroot}
install -m 0755 "$bin" "$out/usr/local/bin/ray-operator"

# `ldd` prints "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and, for the loader,
# "/lib64/ld-linux-x86-64.so.2 (0x...)". Copy each file (symlinks resolved) to the printed
# path; the loader finds the libraries in its built-in directories (no ld.so.cache needed).
ldd_out=$(ldd "$bin" 2>&1) || {
  # A static binary needs nothing ("not a dynamic executable").
  grep -q 'not a dynamic executable\|statically linked' <<<"$ldd_out" || { echo "$ldd_out" >&2; exit 1; }
  ldd_out=
}
libs=()
while read -r line; do
  case $line in
    *"=> not found"*) echo "operator-rootfs.sh: missing library: $line" >&2; exit 1 ;;
    *"=> /"*) lib=${line#*=> }; libs+=("${lib%% (*}") ;;
    /*) libs+=("${line%% (*}") ;;
  esac
done <<<"$ldd_out"
for lib in "${libs[@]}"; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
  chmod 0755 "$out$lib"
done

cat >"$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$out/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
echo 'hosts: files dns' >"$out/etc/nsswitch.conf"
chmod 0644 "$out"/etc/{passwd,group,nsswitch.conf}
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  mkdir -p "$out/etc/ssl/certs"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
fi
chmod 1777 "$out/tmp"
chmod 0700 "$out/home/nonroot"
chown 65532:65532 "$out/home/nonroot"
echo "operator-rootfs.sh: $out: ray-operator + ${#libs[@]} libraries" >&2
