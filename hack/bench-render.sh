#!/usr/bin/env bash
# Benchmarks `ray-operator render` against `helm template` (make bench-render).
#
#   hack/bench-render.sh [RUNS]     # default 20 runs per case
#
# Prints a markdown table: median wall time and peak RSS of each tool on the
# same chart and values, and how many times faster render is. Uses the release
# build (RAY_OPERATOR_BIN overrides) and helm from $HELM, the cache or PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
cache="${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}"
helm="${HELM:-}"
[ -n "$helm" ] || { [ -x "$cache/helm/bin/helm" ] && helm="$cache/helm/bin/helm"; } || helm="$(command -v helm || true)"
[ -n "$helm" ] || { echo "helm not found: run \`make helm\`" >&2; exit 1; }
bin="${RAY_OPERATOR_BIN:-target/release/ray-operator}"
[ -n "${RAY_OPERATOR_BIN:-}" ] || cargo build --release --quiet

# median wall ms and max peak RSS (KiB) of RUNS runs of a command
measure() {
    local times=() rss=0 start end r out
    out="$(mktemp)"
    for _ in $(seq "$runs"); do
        start=$(date +%s%N)
        "$@" >/dev/null
        end=$(date +%s%N)
        times+=( $(( (end - start) / 1000 )) )
    done
    # Peak RSS from a separate run, so /usr/bin/time's own start-up is not timed.
    /usr/bin/time -o "$out" -f '%M' "$@" >/dev/null
    r="$(tail -n1 "$out")"; rm -f "$out"
    [ "$r" -gt "$rss" ] && rss="$r"
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
    echo "$median $rss"
}

echo "| values | tool | median wall (ms) | peak RSS (MiB) | render speed-up |"
echo "|---|---|---:|---:|---:|"
for case in "defaults:" "3 worker types:-f tests/fixtures/three-worker-types.yaml"; do
    name="${case%%:*}"; args=(${case#*:})
    read -r h_us h_rss <<<"$(measure "$helm" template release-name charts/ray "${args[@]}")"
    read -r r_us r_rss <<<"$(measure "$bin" render release-name "${args[@]}")"
    ratio=$(awk -v h="$h_us" -v r="$r_us" 'BEGIN {printf "%.0fx", h / r}')
    awk -v n="$name" -v us="$h_us" -v kb="$h_rss" 'BEGIN {printf "| %s | helm template | %.1f | %.1f | |\n", n, us/1000, kb/1024}'
    awk -v n="$name" -v us="$r_us" -v kb="$r_rss" -v x="$ratio" 'BEGIN {printf "| %s | ray-operator render | %.1f | %.1f | %s |\n", n, us/1000, kb/1024, x}'
done
echo
echo "Median of $runs runs per row, process start included; peak RSS from /usr/bin/time -f %M."
