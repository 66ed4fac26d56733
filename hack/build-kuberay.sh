#!/usr/bin/env bash
# Build (once) KubeRay's operator from the Go module proxy, for running it side by side with
# ray-operator on the benchmarks' private control plane (issue 13):
#   github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION (default v1.5.0)
#   -> bin/kuberay-operator, run out of cluster with --kubeconfig
#   its CRDs (the module's config/crd/bases) -> crds/
# Cached in ${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/kuberay-<version>; skipped when its
# stamp holds the version. Cold: the module's dependencies download and compile (a few minutes).
#
# Usage: hack/build-kuberay.sh             # build if missing, print the dir last
#        hack/build-kuberay.sh --print-dir
set -euo pipefail

VERSION=${KUBERAY_VERSION:-v1.5.0}
MODULE=github.com/ray-project/kuberay/ray-operator
CACHE_ROOT=${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}
DIR=$CACHE_ROOT/kuberay-$VERSION

log() { printf '[build-kuberay %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ ${1:-} == --print-dir ]]; then
  echo "$DIR"
  exit 0
fi
if [[ -x $DIR/bin/kuberay-operator && -f $DIR/.stamp && $(<"$DIR/.stamp") == "$VERSION" ]]; then
  echo "$DIR"
  exit 0
fi
command -v go >/dev/null || die "go is not installed"

log "downloading $MODULE@$VERSION"
out=$(go mod download -json "$MODULE@$VERSION" 2>&1) || die "go mod download $MODULE@$VERSION failed (GOPROXY=$(go env GOPROXY)):
$out"
src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$out")
[[ -f $src/main.go && -d $src/config/crd/bases ]] || die "$MODULE@$VERSION has no main.go or config/crd/bases in '$src'"

# Built in a writable copy (the module cache is read-only), in a temporary dir swapped in at
# the end, so an interrupted build leaves nothing half-written in the cache.
tmp=$DIR.tmp
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/crds"
cp -r "$src" "$tmp/src"
chmod -R u+w "$tmp/src"
log "compiling kuberay-operator $VERSION"
start=$SECONDS
(cd "$tmp/src" && CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" \
  go build -trimpath -ldflags='-s -w' -o "$tmp/bin/kuberay-operator" .) ||
  die "go build of $MODULE@$VERSION failed"
cp "$src"/config/crd/bases/*.yaml "$tmp/crds/"
rm -rf "$tmp/src"
echo "$VERSION" >"$tmp/.stamp"
rm -rf "$DIR"
mv "$tmp" "$DIR"
log "built in $((SECONDS - start))s: $DIR/bin/kuberay-operator, CRDs in $DIR/crds"
echo "$DIR"
