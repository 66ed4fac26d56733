# Makefile for ray-operator.
#   make setup  - install/build everything the tests and the demo need (cached in ~/.cache/ray-operator)
#   make demo   - local control plane + operator + example cluster, then `kubectl get rayclusters`
#   make test   - fmt check, clippy -D warnings, unit and integration tests (what CI runs)
#   make bench  - benchmarks, printed as tables
#   make fuzz   - bounded fuzzing of the --set parser, values merging and RayCluster validation

# --- project ---
.PHONY: setup test demo demo-down bench bench-ray bench-lookup bench-memory lint fuzz kuberay

setup: helm ray k8s-bins node-bins

lint:
	cargo fmt --all --check
	cargo clippy --all-targets --locked -- -D warnings

# Integration tests start (or reuse) the two local clusters: .cluster/kwok (fake nodes, for what
# the operator writes) and .cluster (real nodes, for Ray in real pods). Both are left running.
# Not --all-targets: benches have harness = false and would run whole benchmarks.
test: setup lint images
	cargo test --locked --lib --bins --tests
	# The GCS client against the Ray release a year older too (the default is the newest).
	RAY_VERSION=2.47.1 cargo test --locked --test ray_gcs

demo: helm k8s-bins node-bins images
	hack/demo.sh

demo-down:
	-hack/install-helm.sh >/dev/null && KUBECONFIG=.cluster/kubeconfig $${RAY_OPERATOR_CACHE:-$$HOME/.cache/ray-operator}/helm/bin/helm -n ray uninstall example-cluster --wait=false
	$(MAKE) cluster-down

bench: bench-render bench-operator bench-kuberay bench-scale bench-autoscaler bench-ray bench-lookup bench-memory

# One cluster's pods read from the cache (every reconcile and autoscaler round does it), through
# the pod index and by scanning, with 100 to 10,000 other clusters (BENCH_CLUSTERS).
bench-lookup:
	cargo bench --bench pod_lookup

# The heap the operator's caches keep per cluster and per pod (BENCH_CLUSTERS, default 10,000
# clusters of 1 head + 3 workers, as the watches deliver them), counted by the allocator.
bench-memory:
	cargo bench --bench cache_memory

# Task submitted to task running on a new worker, on real Ray in real pods (BENCH_RUNS, default 5).
bench-ray: images
	cargo bench --bench ray_scaleup

# KubeRay's operator (KUBERAY_VERSION, default v1.5.0) and its CRDs, built once from the Go
# module proxy into ~/.cache/ray-operator/kuberay-<version>, to run beside ray-operator on the
# benchmarks' private control plane.
kuberay:
	hack/build-kuberay.sh

# Each fuzz target (fuzz/) for FUZZ_SECONDS (default 60) from its seed corpus; fails on a panic
# and leaves the input in fuzz/artifacts/<target>/ (keep it in fuzz/regressions/<target>/).
fuzz:
	hack/fuzz.sh
# --- end project ---

# --- local control plane (hack/build-k8s.sh, hack/build-node.sh, hack/cluster-up.sh, hack/cluster-down.sh) ---
.PHONY: k8s-bins node-bins cluster-up cluster-up-kwok cluster-down

# The kwok profile's state dir (fake nodes; API on 127.0.0.1:26473).
KWOK_CLUSTER_DIR ?= $(CURDIR)/.cluster/kwok

# Build kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy, etcd, kwok once (cached in ~/.cache/ray-operator).
k8s-bins:
	hack/build-k8s.sh

# Build containerd, ctr, crictl, CoreDNS and the pause image once; apt-get install runc, CNI plugins, iptables if missing.
node-bins:
	hack/build-node.sh

# Control plane + three real nodes node-0..2 (containerd + kubelet each, kube-proxy, CoreDNS); kubeconfig in .cluster/kubeconfig.
cluster-up:
	hack/cluster-up.sh

# Control plane + kwok fake nodes in $(KWOK_CLUSTER_DIR); kubeconfig in $(KWOK_CLUSTER_DIR)/kubeconfig.
cluster-up-kwok: k8s-bins
	CLUSTER_NODES=kwok CLUSTER_DIR=$(KWOK_CLUSTER_DIR) CLUSTER_PORT_BASE=26473 hack/cluster-up.sh

# Stop both profiles (kwok first, and any test's private kwok control plane .cluster/kwok-*), each
# by PID, and undo what the real nodes did to the machine.
cluster-down:
	for dir in .cluster/kwok-*/; do if [ -d "$$dir" ]; then CLUSTER_DIR=$$dir hack/cluster-down.sh; fi; done
	CLUSTER_DIR=$(KWOK_CLUSTER_DIR) hack/cluster-down.sh
	hack/cluster-down.sh
# --- end local control plane ---

# --- Ray for the GCS tests (hack/install-ray.sh; tests/ray_gcs.rs) ---
.PHONY: ray

# Install the pinned Ray versions into cached virtualenvs (~/.cache/ray-operator/ray-<version>/venv).
ray:
	hack/install-ray.sh
# --- end Ray ---

# --- helm for the render parity and manifests tests (hack/install-helm.sh; tests/render_parity.rs, tests/manifests.rs) ---
.PHONY: helm

# Install real helm (and kubectl) into ~/.cache/ray-operator/helm/bin.
helm:
	hack/install-helm.sh
# --- end helm ---

# --- Helm chart and render (hack/install-helm.sh, hack/render-components.sh, hack/bench-render.sh) ---
.PHONY: components values-schema bench-render

# Regenerate components/*.yaml (deploying without Helm) with `ray-operator render`.
components:
	cargo build --release --quiet
	hack/render-components.sh target/release/ray-operator

# Regenerate charts/ray/values.schema.json from src/chart/values.rs.
values-schema:
	cargo run --quiet -- values-schema > charts/ray/values.schema.json

# Markdown table: ray-operator render vs helm template, wall time and peak RSS.
bench-render: helm
	hack/bench-render.sh
# --- end Helm chart and render ---

# --- autoscaler benchmark (benches/autoscaler.rs; needs `make ray`) ---
.PHONY: bench-autoscaler

# Scale-up latency (.remote() to worker pod), the cost of 1000 idle clusters polling a real head,
# and of 10,000 polling fake GCS servers with a probe's demand-to-pod time; release build, on a
# private kwok control plane (/tmp/ray-bench-autoscaler, ports from 28483), stopped afterwards.
# BENCH_RUNS, BENCH_INTERVALS (ms, comma-separated), BENCH_CLUSTERS, BENCH_FAKE_CLUSTERS,
# BENCH_QUIET_MS, BENCH_WINDOW_S tune it.
bench-autoscaler: ray
	KWOK_CLUSTER_DIR=/tmp/ray-bench-autoscaler KWOK_PORT_BASE=28483 cargo bench --bench autoscaler; \
	  rc=$$?; CLUSTER_DIR=/tmp/ray-bench-autoscaler hack/cluster-down.sh >/dev/null; exit $$rc
# --- end autoscaler benchmark ---

# --- benchmarks on a private control plane (hack/bench-plane.sh, benches/operator.rs, benches/scale.rs) ---
.PHONY: bench-operator bench-scale bench-kuberay

# Memory and burst throughput of `ray-operator run` on a private control plane (/tmp/ray-bench-operator).
bench-operator:
	hack/bench-plane.sh operator

# 10,000 clusters of 1 head + 3 workers (40,000 pods) against the control plane's own time for
# 40,000 bare pods, ray-operator then KubeRay at concurrency 16 (BENCH_CONTENDERS); pod counts
# checked per cluster. On 20 kwok nodes, the scheduler at 200 QPS (a plane sized for 40,000 pods).
bench-scale: kuberay
	BENCH_WORKLOADS=$${BENCH_WORKLOADS:-burst} BENCH_BIG=$${BENCH_BIG:-10000} \
	BENCH_CONTENDERS="$${BENCH_CONTENDERS:-ray-operator;kuberay-16}" \
	BENCH_NODES=$${BENCH_NODES:-20} BENCH_NODE_PODS=$${BENCH_NODE_PODS:-2100} \
	BENCH_SCHEDULER_QPS=$${BENCH_SCHEDULER_QPS:-200} ETCD_QUOTA_BYTES=4294967296 \
	hack/bench-plane.sh scale

# ray-operator and KubeRay (its default concurrency, and 16) on the same workloads, one after the
# other on an emptied control plane: 150 head-only clusters; 1,000 x (1 head + 3 workers) against
# the bare-pod floor; one cluster 0 -> 500 workers while another asks for one.
bench-kuberay: kuberay
	hack/bench-plane.sh scale
# --- end benchmarks on a private control plane ---

# --- images for the real nodes (hack/images.sh, hack/images/; Dockerfile for a registry) ---
.PHONY: images

# Build the Ray images and the operator image the chart names as OCI archives (cached in
# ~/.cache/ray-operator/images) and import them into every real node's containerd.
# RAY_VERSIONS, RAY_MINIMAL_VERSIONS pick the Ray versions; IMAGES_IMPORT=0 only builds.
images:
	hack/images.sh
# --- end images ---
