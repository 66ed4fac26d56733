//! ray-operator: a Kubernetes operator for Ray clusters, and a renderer of its
//! Helm chart with `helm template` parity.
//!
//! Three sides and what they share:
//! - [`api`]: the RayCluster types, from which the CRD is generated;
//! - [`chart`]: the chart's values, `render` (`helm template`) and `diff`;
//! - [`operator`]: `run`, its caches, leases, events and telemetry, the
//!   reconcile pipeline and the autoscaler;
//! - [`naming`]: label keys, hashes and names both the chart and the
//!   operator give to objects.

pub mod api;
pub mod chart;
pub mod naming;
pub mod operator;
