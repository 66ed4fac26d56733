# The demo's Ray job, run inside the head pod (`kubectl exec ... python -`):
# what ray.nodes() says, then 8 tasks of a whole CPU each, pinned in turn to
# the worker nodes (the head offers a CPU too, and would take them all).
import collections
import socket

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init(address="auto", logging_level="ERROR")
print("ray.nodes() inside the head:")
for node in ray.nodes():
    print(
        "  {:<15} alive={} CPU={} memory={:.0f}MiB".format(
            node["NodeManagerAddress"],
            node["Alive"],
            node["Resources"].get("CPU", 0),
            node["Resources"].get("memory", 0) / 2**20,
        )
    )


@ray.remote(num_cpus=1)
def square(x):
    return socket.gethostname(), x * x


head = ray.get_runtime_context().get_node_id()
workers = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != head]
refs = [
    square.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(workers[i % len(workers)], soft=False)
    ).remote(i)
    for i in range(8)
]
results = ray.get(refs, timeout=300)
print("8 tasks: sum of squares =", sum(r[1] for r in results))
for host, count in sorted(collections.Counter(r[0] for r in results).items()):
    print(f"  {count} task(s) ran on pod {host}")
