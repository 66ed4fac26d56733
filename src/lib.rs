//! ray-operator: a Kubernetes operator for Ray clusters, and a renderer of its
//! Helm chart with `helm template` parity.

pub mod api;
