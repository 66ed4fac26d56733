#!/usr/bin/env bash
# Benchmarks `ray-operator render` against `helm template` (make bench-render).
#
#   hack/bench-render.sh [RUNS]     # default 50 interleaved runs per case
#
# Uses the release build (RAY_OPERATOR_BIN overrides) and helm from $HELM, the
# cache or PATH; hack/bench-render.py does the timing and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}"
helm="${HELM:-}"
[ -n "$helm" ] || { [ -x "$cache/helm/bin/helm" ] && helm="$cache/helm/bin/helm"; } || helm="$(command -v helm || true)"
[ -n "$helm" ] || { echo "helm not found: run \`make helm\`" >&2; exit 1; }
bin="${RAY_OPERATOR_BIN:-target/release/ray-operator}"
[ -n "${RAY_OPERATOR_BIN:-}" ] || cargo build --release --quiet --bin ray-operator
exec python3 hack/bench-render.py "$helm" "$bin" "${1:-50}"
