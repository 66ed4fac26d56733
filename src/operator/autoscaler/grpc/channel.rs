//! A persistent HTTP/2 connection for unary gRPC calls.
//!
//! Held between calls it is a socket, a stream counter, two flow-control
//! windows and an (empty) HPACK table: a few hundred bytes, where a tonic
//! channel keeps ~30-50 KiB of buffers and tasks per connection. Buffers live
//! only while a call runs. A call takes the connection out of the channel and
//! puts it back only when the call completed cleanly, so a call that fails or
//! is dropped (timed out) never leaves a connection in an unknown state.

use std::sync::Mutex;
use std::time::Duration;

use super::conn::{Conn, Request, Stale};
use super::error::CallError;
use super::headers;

/// A lazily connected channel to one `host:port`.
pub struct Channel {
    authority: String,
    connect_timeout: Duration,
    idle: Mutex<Option<Conn>>,
}

impl Channel {
    pub fn new(authority: String, connect_timeout: Duration) -> Channel {
        Channel {
            authority,
            connect_timeout,
            idle: Mutex::new(None),
        }
    }

    /// Drops the idle connection, if any; the next call opens a new one.
    pub fn disconnect(&self) {
        self.idle.lock().expect("channel lock").take();
    }

    /// Whether an idle connection is held for the next call.
    pub fn is_connected(&self) -> bool {
        self.idle.lock().expect("channel lock").is_some()
    }

    /// Several calls (path, encoded request) at once, as concurrent streams
    /// of one connection written together: one outcome each, in order. A
    /// reused connection the server had closed is replaced once.
    pub async fn batch(
        &self,
        calls: &[(&str, &[u8])],
        metadata: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Vec<Result<Vec<u8>, CallError>>, CallError> {
        let reused = self.idle.lock().expect("channel lock").take();
        let fresh = reused.is_none();
        let mut conn = match reused {
            Some(conn) => conn,
            None => Conn::open(&self.authority, self.connect_timeout).await?,
        };
        let timeout_ms = timeout.as_millis() as u64;
        let blocks: Vec<Vec<u8>> = calls
            .iter()
            .map(|(path, _)| headers::request(&self.authority, path, timeout_ms, metadata))
            .collect();
        let requests: Vec<Request> = (blocks.iter().zip(calls))
            .map(|(block, (_, message))| Request { block, message })
            .collect();
        let mut result = conn.calls(&requests).await;
        if let Err(Stale(_)) = &result
            && !fresh
        {
            conn = Conn::open(&self.authority, self.connect_timeout).await?;
            result = conn.calls(&requests).await;
        }
        let replies = result.map_err(|Stale(e)| e)?;
        // A gRPC status leaves the connection in step; a broken frame or
        // socket marks it not reusable.
        if conn.reusable() {
            let mut idle = self.idle.lock().expect("channel lock");
            if idle.is_none() {
                *idle = Some(conn);
            }
        }
        Ok(replies)
    }
}
