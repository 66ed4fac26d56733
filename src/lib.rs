//! ray-operator: a Kubernetes operator for Ray clusters, and a renderer of its
//! Helm chart with `helm template` parity.

pub mod api;
pub mod autoscaler;
pub mod autoscaling;
pub mod cached_pod;
pub mod controller;
pub mod diff;
pub mod events;
pub mod http;
pub mod labels;
pub mod lease;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod pod_index;
pub mod reconcile;
pub mod render;
pub mod scaling;
pub mod scope;
pub mod values;
