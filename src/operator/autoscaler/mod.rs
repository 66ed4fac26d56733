//! The autoscaler's building blocks: a client for Ray's GCS (what the cluster
//! needs, and the calls that act on it) and a pure planner (cluster config +
//! pods + GCS state in, a scaling plan out).

#[cfg(test)]
mod fake_gcs;
pub mod gcs;
mod grpc;
pub mod planner;
pub mod proto;
pub mod task;

pub use gcs::{
    AutoscalerReport, ClusterState, DrainOutcome, DrainReason, Gang, GcsClient, GcsError,
    GcsOptions, NodeStatus, RayNode, ResourceBundle,
};
pub use planner::{AutoscalerConfig, Drain, DrainCause, Plan, WorkerPod, WorkerType, plan};
