//! Shared helpers for integration tests. Use from any `tests/*.rs` with `mod support;`.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

pub mod cluster;
pub mod helm;
pub mod kwok_clusters;
pub mod operator;
pub mod probe;
pub mod proc_status;
pub mod ray;
pub mod real;

/// Polls `check` every 200ms until it returns `Some`, or panics naming `what`.
pub async fn eventually<T, F: AsyncFnMut() -> Option<T>>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
