# Makefile for ray-operator. Other targets are added by their owners; keep each block delimited.

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
