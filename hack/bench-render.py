#!/usr/bin/env python3
"""Times `ray-operator render` against `helm template` (make bench-render).

    hack/bench-render.py HELM RAY_OPERATOR [RUNS]

Like hyperfine: each tool runs a few warm-up times, then RUNS times in a row,
started with posix_spawn and reaped with waitpid, so the wall time is the
process's own life (exec, run, exit) without a shell's fork or a `date`
process around it. (Interleaving the tools instead adds about 1 ms to every
render: each helm run leaves the CPU caches cold.) Peak RSS comes from
`/usr/bin/time -f %M`, which forks from a small process: a posix_spawn'd
child's ru_maxrss would include the Python parent's memory. Prints a markdown
table of the medians.
"""
import os
import statistics
import subprocess
import sys
import time

WARMUP = 3
CASES = [
    ("defaults", []),
    ("3 worker types", ["-f", "tests/fixtures/three-worker-types.yaml"]),
]


def wall(argv):
    """Wall seconds of one run; exits on a non-zero status."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status = os.waitpid(pid, 0)
        seconds = time.perf_counter() - start
    finally:
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)}: exit status {os.waitstatus_to_exitcode(status)}")
    return seconds


def peak_rss_kib(argv):
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1])


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    helm, render = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    print("| values | tool | median wall (ms) | peak RSS (MiB) | render speed-up |")
    print("|---|---|---:|---:|---:|")
    for name, args in CASES:
        tools = {
            "helm template": [helm, "template", "release-name", "charts/ray", *args],
            "ray-operator render": [render, "render", "release-name", *args],
        }
        med, rss = {}, {}
        for tool, argv in tools.items():
            for _ in range(WARMUP):
                wall(argv)
            med[tool] = statistics.median(wall(argv) for _ in range(runs)) * 1000
            rss[tool] = peak_rss_kib(argv)
        speedup = med["helm template"] / med["ray-operator render"]
        for tool in tools:
            extra = f"{speedup:.1f}x" if tool == "ray-operator render" else ""
            print(f"| {name} | {tool} | {med[tool]:.2f} | {rss[tool] / 1024:.1f} | {extra} |")
    print()
    load = os.getloadavg()[0]
    print(f"Median of {runs} runs per row after {WARMUP} warm-up runs; wall time from "
          f"posix_spawn to waitpid, peak RSS from /usr/bin/time -f %M. Load average at the end: "
          f"{load:.2f} on {os.cpu_count()} cores (a busy machine slows a 2 ms process more, "
          "relatively, than a 50 ms one).")


if __name__ == "__main__":
    main()
