#!/usr/bin/env bash
# Bounded fuzzing of the --set parser, values merging and RayCluster validation:
# one libFuzzer target each in fuzz/ (their bodies: fuzz/src/lib.rs).
#
#   hack/fuzz.sh                              # or: make fuzz
#   FUZZ_SECONDS=600 hack/fuzz.sh raycluster  # one target, longer
#
# Each target runs FUZZ_SECONDS (default 60) from its seed corpus fuzz/corpus/<target>/
# (only read: what the run adds goes to fuzz/work/corpus/<target>/). A panic, or an
# input that takes over 10 s, fails the run; libFuzzer leaves the input in
# fuzz/artifacts/<target>/. Fix the bug and move the input to fuzz/regressions/<target>/,
# which tests/fuzz_regressions.rs runs in `make test`.
#
# cargo-fuzz needs the nightly toolchain; it is installed once into
# ${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/cargo-fuzz.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
version=0.13.2
root="${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/cargo-fuzz"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(set_parser values raycluster raycluster_edits)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
if [ "$("$root/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $version" ]; then
    echo "fuzz: cargo install cargo-fuzz $version into $root"
    cargo +stable install --quiet --locked --force cargo-fuzz --version "$version" --root "$root"
fi
export PATH="$root/bin:$PATH"

# No sanitizer: the code under test is safe Rust, and what we look for is a panic
# (overflow checks and debug assertions stay on, cargo-fuzz's default).
fuzz=(cargo +nightly fuzz)
flags=(--sanitizer none)
started=$SECONDS
"${fuzz[@]}" build "${flags[@]}"
echo "fuzz: built in $((SECONDS - started)) s"

failed=()
summary=()
for target in "${targets[@]}"; do
    work="fuzz/work/corpus/$target"
    log="fuzz/work/$target.log"
    mkdir -p "$work"
    # The first directory is the one libFuzzer adds to; the kept inputs are only read.
    corpora=("$work" "fuzz/corpus/$target")
    [ -d "fuzz/regressions/$target" ] && corpora+=("fuzz/regressions/$target")
    echo "fuzz: $target for $seconds s (log: $log)"
    if "${fuzz[@]}" run "${flags[@]}" "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        runs="$(grep -o '^stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
        summary+=("$target: ${runs:-?} runs in $seconds s, no panic")
    else
        tail -n 40 "$log" >&2
        failed+=("$target")
        summary+=("$target: FAILED, input in fuzz/artifacts/$target/")
    fi
done

printf 'fuzz: %s\n' "${summary[@]}"
echo "fuzz: took $((SECONDS - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${failed[*]} failed; fix the bug and keep the input in fuzz/regressions/<target>/" >&2
    exit 1
fi
