//! The one way the operator writes to the API server: a client and the bound
//! on writes in flight over all clusters.

use std::sync::Arc;

use kube::Client;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::telemetry::metrics::Metrics;
pub use super::telemetry::metrics::Write;

/// Writes to the API server in flight at once, over all clusters, unless
/// `run --writes-in-flight` says otherwise. kube's client speaks HTTP/1.1:
/// each write in flight holds a connection (about 40 KiB with TLS and
/// buffers), and idle connections stay pooled, so this bounds the operator's
/// memory in a burst as well as its load on the API server.
pub const WRITES_IN_FLIGHT: usize = 16;

/// A client and the permits for writing with it; every write is counted.
pub struct Writer {
    client: Client,
    writes: Semaphore,
    metrics: Arc<Metrics>,
}

impl Writer {
    /// A writer with `writes_in_flight` permits (at least one), counting its
    /// writes in `metrics`.
    pub fn new(client: Client, writes_in_flight: usize, metrics: Arc<Metrics>) -> Self {
        Writer {
            client,
            writes: Semaphore::new(writes_in_flight.max(1)),
            metrics,
        }
    }

    /// The client, for building an `Api`; hold a [`permit`](Self::permit)
    /// for each write made with it.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A permit for one write of `kind`; hold it for that one request.
    pub async fn permit(&self, kind: Write) -> SemaphorePermit<'_> {
        let permit = self
            .writes
            .acquire()
            .await
            .expect("the write semaphore is never closed");
        self.metrics.wrote(kind);
        permit
    }
}
