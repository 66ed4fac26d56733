# Makefile for ray-operator.
#   make setup  - install/build everything the tests and the demo need (cached in ~/.cache/ray-operator)
#   make demo   - local control plane + operator + example cluster, then `kubectl get rayclusters`
#   make test   - fmt check, clippy -D warnings, unit and integration tests (what CI runs)
#   make bench  - benchmarks, printed as tables

# --- project ---
.PHONY: setup test demo demo-down bench lint

setup: helm ray k8s-bins

lint:
	cargo fmt --all --check
	cargo clippy --all-targets --locked -- -D warnings

# Integration tests start (or reuse) the control plane in .cluster/; it is left running.
# Not --all-targets: benches have harness = false and would run whole benchmarks.
test: setup lint
	cargo test --locked --lib --bins --tests
	# The GCS client against the Ray release a year older too (the default is the newest).
	RAY_VERSION=2.47.1 cargo test --locked --test ray_gcs

demo: k8s-bins
	hack/demo.sh

demo-down:
	-[ -f .cluster/operator.pid ] && kill $$(cat .cluster/operator.pid) && rm -f .cluster/operator.pid
	hack/cluster-down.sh

bench: bench-render bench-operator bench-autoscaler
# --- end project ---

# --- local control plane (hack/build-k8s.sh, hack/cluster-up.sh, hack/cluster-down.sh) ---
.PHONY: k8s-bins cluster-up cluster-down

# Build kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok once (cached in ~/.cache/ray-operator).
k8s-bins:
	hack/build-k8s.sh

# Start etcd + apiserver + controller-manager + scheduler + kwok fake nodes; kubeconfig in .cluster/kubeconfig.
cluster-up:
	hack/cluster-up.sh

cluster-down:
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

# Regenerate charts/ray/values.schema.json from src/values.rs.
values-schema:
	cargo run --quiet -- values-schema > charts/ray/values.schema.json

# Markdown table: ray-operator render vs helm template, wall time and peak RSS.
bench-render: helm
	hack/bench-render.sh
# --- end Helm chart and render ---

# --- autoscaler benchmark (benches/autoscaler.rs; needs `make ray`) ---
.PHONY: bench-autoscaler

# Scale-up latency (.remote() to worker pod) and the cost of 1000 idle clusters, release build.
# BENCH_RUNS, BENCH_INTERVALS (ms, comma-separated), BENCH_CLUSTERS, BENCH_WINDOW_S tune it.
bench-autoscaler: ray
	cargo bench --bench autoscaler
# --- end autoscaler benchmark ---

# --- operator benchmark (hack/bench-operator.sh, benches/operator.rs) ---
.PHONY: bench-operator

# Memory and burst throughput of `ray-operator run` on a private control plane (/tmp/ray-bench-cluster).
bench-operator:
	hack/bench-operator.sh
# --- end operator benchmark ---
