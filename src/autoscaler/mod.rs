//! The autoscaler's building blocks: a client for Ray's GCS (what the cluster
//! needs, and the calls that act on it) and a pure planner (cluster config +
//! pods + GCS state in, a scaling plan out).

pub mod gcs;
pub mod planner;
pub mod proto;
pub mod resources;

pub use gcs::{ClusterState, GcsClient, GcsError, NodeStatus, RayNode, ResourceBundle};
