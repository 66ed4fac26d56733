#!/usr/bin/env bash
# Installs Ray into cached virtualenvs for the GCS integration tests (tests/ray_gcs.rs).
#
#   hack/install-ray.sh            # both pinned versions
#   hack/install-ray.sh 2.60.0     # only the given version(s)
#
# Each version goes to ${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}/ray-<version>/venv.
# Idempotent: a venv whose `ray` already reports the wanted version is left alone.
# RAY_PYTHON picks the interpreter (default: python3.11, else python3).
set -euo pipefail

# The newest Ray, and a 2.x release about a year older (both have CPython 3.11 wheels).
RAY_VERSIONS_DEFAULT=(2.60.0 2.47.1)

cache="${RAY_OPERATOR_CACHE:-$HOME/.cache/ray-operator}"
python="${RAY_PYTHON:-$(command -v python3.11 || command -v python3)}"
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("${RAY_VERSIONS_DEFAULT[@]}")

for v in "${versions[@]}"; do
    venv="$cache/ray-$v/venv"
    if [ -x "$venv/bin/python" ] && [ "$("$venv/bin/python" -c 'import ray; print(ray.__version__)' 2>/dev/null)" = "$v" ]; then
        echo "ray $v: already installed in $venv"
        continue
    fi
    echo "ray $v: creating $venv with $python"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    echo "ray $v: pip install ray==$v"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "ray==$v"
    echo "ray $v: installed ($("$venv/bin/ray" --version))"
done
