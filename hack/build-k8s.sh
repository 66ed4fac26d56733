#!/usr/bin/env bash
# Build (once) the binaries of a local Kubernetes control plane from Go source:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
#   kubelet, kube-proxy (a real node)                                (k8s.io/kubernetes)
#   etcd                                                             (go.etcd.io/etcd/server/v3/etcdmain)
#   kwok, kwokctl                                                    (sigs.k8s.io/kwok)
#
# They are cached outside the repo, in
#   ${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/k8s-<version>/bin
# and each binary is skipped when its stamp (bin/.<name>.stamp, holding the pinned version)
# matches. Non-interactive; safe to call from CI. The first run downloads ~1 GiB of Go modules
# and compiles for about 11 minutes on two cores (650s measured, cold caches); later runs take a second.
#
# Usage: hack/build-k8s.sh            # build what is missing, print the bin dir last
#        hack/build-k8s.sh --print-bin-dir
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
# Published versions of the k8s.io staging modules matching K8S_VERSION (v1.X.Y -> v0.X.Y).
STAGING_VERSION=v0.${K8S_VERSION#v1.}
# Must match the go.etcd.io/etcd/*/v3 versions required by k8s.io/kubernetes' go.mod.
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}

CACHE_ROOT=${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}
CACHE_DIR=$CACHE_ROOT/k8s-$K8S_VERSION
BIN_DIR=$CACHE_DIR/bin

if [[ ${1:-} == --print-bin-dir ]]; then
  echo "$BIN_DIR"
  exit 0
fi

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
BUILD_FLAGS=(-trimpath -ldflags='-s -w')
# What `kubectl version`, Node .status.nodeInfo.kubeletVersion and /version report (the source
# defaults to v0.0.0-master+$Format:%H$, which clients fail to parse). Both packages, as
# Kubernetes' hack/lib/version.sh does.
_major=${K8S_VERSION#v} _major=${_major%%.*}
_minor=${K8S_VERSION#v*.} _minor=${_minor%%.*}
K8S_LDFLAGS="-s -w"
for _pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $_pkg.gitVersion=$K8S_VERSION -X $_pkg.gitMajor=$_major -X $_pkg.gitMinor=$_minor"
  K8S_LDFLAGS+=" -X $_pkg.gitTreeState=clean -X $_pkg.buildDate=1970-01-01T00:00:00Z"
done
# The stamp of the Kubernetes binaries: a new suffix relinks binaries built before the change.
K8S_STAMP="$K8S_VERSION ldflags-version"

log() { printf '[build-k8s %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH (need Go >= 1.26 to build Kubernetes $K8S_VERSION)"

# stamped <name> <version>: true when bin/<name> exists and was built from <version>.
stamped() { [[ -x $BIN_DIR/$1 && -f $BIN_DIR/.$1.stamp && $(<"$BIN_DIR/.$1.stamp") == "$2" ]]; }
stamp() { echo "$2" >"$BIN_DIR/.$1.stamp"; }

# download <module@version>: fetch into the module cache, or fail naming the module.
download() {
  local out
  if ! out=$(go mod download -json "$1" 2>&1); then
    die "go mod download $1 failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY)):
$out"
  fi
  # `go mod download -json` may exit 0 with an "Error" field.
  if grep -q '"Error"' <<<"$out"; then
    die "go mod download $1 failed: $(grep '"Error"' <<<"$out")"
  fi
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$out"
}

mkdir -p "$BIN_DIR"
# One build at a time per cache (two test binaries, or a helper checkout, may call this at once):
# a second caller waits here, then finds the binaries stamped.
exec 7>"$CACHE_DIR/build.lock"
flock 7
START=$SECONDS

K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
need_k8s=()
for b in "${K8S_BINS[@]}"; do stamped "$b" "$K8S_STAMP" || need_k8s+=("$b"); done
stamped etcd "$ETCD_VERSION" || need_etcd=1
need_kwok=()
for b in kwok kwokctl; do stamped "$b" "$KWOK_VERSION" || need_kwok+=("$b"); done

if [[ ${#need_k8s[@]} -eq 0 && -z ${need_etcd:-} && ${#need_kwok[@]} -eq 0 && -f $CACHE_DIR/share/kwok-stages.yaml.$KWOK_VERSION ]]; then
  log "all binaries cached in $BIN_DIR (kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
  echo "$BIN_DIR"
  exit 0
fi

todo="${need_k8s[*]} ${need_etcd:+etcd} ${need_kwok[*]}"
if [[ -n ${todo// /} ]]; then
  log "building into $BIN_DIR: $todo"
  log "first run: downloads ~1 GiB of Go modules and compiles for ~11 min on 2 cores (measured: 650s); later runs are instant"
fi

# --- kubernetes components + etcd: one wrapper module ------------------------------------------
if [[ ${#need_k8s[@]} -gt 0 || -n ${need_etcd:-} ]]; then
  MOD_DIR=$CACHE_DIR/src/k8s
  mkdir -p "$MOD_DIR/etcd"
  log "downloading k8s.io/kubernetes@$K8S_VERSION"
  K8S_DIR=$(download "k8s.io/kubernetes@$K8S_VERSION")
  [[ -f $K8S_DIR/go.mod ]] || die "k8s.io/kubernetes@$K8S_VERSION: no go.mod in module cache ($K8S_DIR)"

  # k8s.io/kubernetes requires its staging modules at v0.0.0 (replaced by ./staging/... in its
  # own repo); point each one at its published tag.
  mapfile -t STAGING < <(awk '/^require|^\t/ && $2 == "v0.0.0" && $1 ~ /^k8s\.io\// {print $1}' "$K8S_DIR/go.mod" | sort -u)
  [[ ${#STAGING[@]} -gt 0 ]] || die "found no k8s.io/* v0.0.0 requirements in $K8S_DIR/go.mod"
  log "pinning ${#STAGING[@]} staging modules to $STAGING_VERSION"
  for m in "${STAGING[@]}"; do download "$m@$STAGING_VERSION" >/dev/null; done
  download "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null

  {
    echo "// Generated by hack/build-k8s.sh; do not edit."
    echo "module ray-operator.local/k8s-bins"
    echo
    echo "go 1.26.0"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $K8S_VERSION"
    echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo "	go.etcd.io/etcd/api/v3 $ETCD_VERSION"
    echo "	go.etcd.io/etcd/client/v3 $ETCD_VERSION"
    echo "	go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION"
    echo "	go.etcd.io/etcd/pkg/v3 $ETCD_VERSION"
    echo ")"
    echo
    echo "replace ("
    for m in "${STAGING[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
    echo ")"
  } >"$MOD_DIR/go.mod.new"
  if ! cmp -s "$MOD_DIR/go.mod.new" "$MOD_DIR/go.mod"; then
    mv "$MOD_DIR/go.mod.new" "$MOD_DIR/go.mod"
    rm -f "$MOD_DIR/go.sum"
  else
    rm "$MOD_DIR/go.mod.new"
  fi
  cat >"$MOD_DIR/etcd/main.go" <<'EOF'
// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3/etcdmain.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  cat >"$MOD_DIR/tools.go" <<'EOF'
//go:build tools

// Package tools records the commands built from this module, so `go mod tidy` keeps them.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
EOF
  if [[ ! -s $MOD_DIR/go.sum ]]; then
    log "resolving dependencies (go mod tidy in $MOD_DIR)"
    (cd "$MOD_DIR" && go mod tidy) || die "go mod tidy failed in $MOD_DIR (a module above could not be downloaded or does not match $K8S_VERSION)"
  fi
  # Go refuses an etcd different from what the k8s deps resolved to; check before a long build.
  got_etcd=$(cd "$MOD_DIR" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
  [[ $got_etcd == "$ETCD_VERSION" ]] || log "note: etcd resolved to $got_etcd (pinned $ETCD_VERSION)"

  if [[ ${#need_k8s[@]} -gt 0 ]]; then
    pkgs=()
    for b in "${need_k8s[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    log "compiling ${need_k8s[*]} (kubernetes $K8S_VERSION) - the long part"
    t=$SECONDS
    (cd "$MOD_DIR" && go build -trimpath -ldflags="$K8S_LDFLAGS" -o "$BIN_DIR/" "${pkgs[@]}") \
      || die "building ${need_k8s[*]} from k8s.io/kubernetes@$K8S_VERSION failed"
    for b in "${need_k8s[@]}"; do stamp "$b" "$K8S_STAMP"; done
    log "kubernetes binaries built in $((SECONDS - t))s"
  fi
  if [[ -n ${need_etcd:-} ]]; then
    log "compiling etcd $got_etcd"
    t=$SECONDS
    (cd "$MOD_DIR" && go build "${BUILD_FLAGS[@]}" -o "$BIN_DIR/etcd" ./etcd) \
      || die "building etcd from go.etcd.io/etcd/server/v3@$ETCD_VERSION failed"
    stamp etcd "$ETCD_VERSION"
    log "etcd built in $((SECONDS - t))s"
  fi
fi

# --- kwok: its own module (it pins its own k8s.io client versions) -------------------------------
if [[ ${#need_kwok[@]} -gt 0 ]]; then
  MOD_DIR=$CACHE_DIR/src/kwok
  mkdir -p "$MOD_DIR"
  log "downloading sigs.k8s.io/kwok@$KWOK_VERSION"
  download "sigs.k8s.io/kwok@$KWOK_VERSION" >/dev/null
  if [[ ! -f $MOD_DIR/go.mod ]] || ! grep -q "sigs.k8s.io/kwok $KWOK_VERSION" "$MOD_DIR/go.mod"; then
    rm -f "$MOD_DIR/go.mod" "$MOD_DIR/go.sum"
    cat >"$MOD_DIR/go.mod" <<EOF
// Generated by hack/build-k8s.sh; do not edit.
module ray-operator.local/kwok-bins

go 1.26.0

require sigs.k8s.io/kwok $KWOK_VERSION
EOF
    cat >"$MOD_DIR/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
	_ "sigs.k8s.io/kwok/cmd/kwokctl"
)
EOF
    log "resolving kwok dependencies"
    (cd "$MOD_DIR" && go mod tidy) || die "go mod tidy failed for sigs.k8s.io/kwok@$KWOK_VERSION in $MOD_DIR"
  fi
  pkgs=()
  for b in "${need_kwok[@]}"; do pkgs+=("sigs.k8s.io/kwok/cmd/$b"); done
  log "compiling ${need_kwok[*]} (kwok $KWOK_VERSION)"
  t=$SECONDS
  (cd "$MOD_DIR" && go build "${BUILD_FLAGS[@]}" -o "$BIN_DIR/" "${pkgs[@]}") \
    || die "building ${need_kwok[*]} from sigs.k8s.io/kwok@$KWOK_VERSION failed"
  for b in "${need_kwok[@]}"; do stamp "$b" "$KWOK_VERSION"; done
  log "kwok built in $((SECONDS - t))s"
fi

# --- kwok stages: the node/pod lifecycle the kwok controller plays (kwokctl's defaults) ---------
STAGES=$CACHE_DIR/share/kwok-stages.yaml
if [[ ! -s $STAGES || ! -f $STAGES.$KWOK_VERSION ]]; then
  KWOK_SRC=$(download "sigs.k8s.io/kwok@$KWOK_VERSION")
  mkdir -p "$CACHE_DIR/share"
  S=$KWOK_SRC/kustomize/stage
  for f in "$S"/node/fast/node-initialize.yaml "$S"/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    "$S"/pod/fast/pod-ready.yaml "$S"/pod/fast/pod-complete.yaml "$S"/pod/fast/pod-delete.yaml; do
    [[ -f $f ]] || die "sigs.k8s.io/kwok@$KWOK_VERSION has no stage file $f"
    echo "---"; cat "$f"
  done >"$STAGES"
  touch "$STAGES.$KWOK_VERSION"
fi

log "done in $((SECONDS - START))s; binaries in $BIN_DIR"
echo "$BIN_DIR"
