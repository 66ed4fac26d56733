//! Generated prost/tonic types for the subset of Ray's protos in `proto/`.
//! Only `gcs.rs` (and tests' fake GCS) should touch these; the planner works on
//! the domain types in `gcs.rs`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// `ray.rpc`: cluster id and internal KV.
pub mod ray_rpc {
    tonic::include_proto!("ray.rpc");
}

/// `ray.rpc.autoscaler`: the autoscaler state service.
pub mod autoscaler {
    tonic::include_proto!("ray.rpc.autoscaler");
}
