//! Shared helpers for integration tests. Use from any `tests/*.rs` with `mod support;`.
#![allow(dead_code)] // each test binary uses a different subset

pub mod cluster;
pub mod helm;
pub mod operator;
pub mod ray;
