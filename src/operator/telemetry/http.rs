//! The operator's small HTTP endpoint: `/healthz`, `/readyz` and `/metrics`.
//!
//! Three fixed GET routes do not justify a web framework; this reads the
//! request line and answers with `Connection: close`.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the endpoint serves.
pub trait Health: Send + Sync + 'static {
    /// Caches synced and, with leader election, the Lease held.
    fn ready(&self) -> bool;
    /// The Prometheus text.
    fn metrics(&self) -> String;
}

/// Serves until the process ends.
pub async fn serve(listener: TcpListener, health: Arc<dyn Health>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let health = health.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let Ok(n) = socket.read(&mut buf).await else {
                return;
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (code, body) = respond(path, health.as_ref());
            let response = format!(
                "HTTP/1.1 {code}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}

fn respond(path: &str, health: &dyn Health) -> (&'static str, String) {
    match path {
        "/healthz" | "/livez" => ("200 OK", "ok\n".into()),
        "/readyz" if health.ready() => ("200 OK", "ok\n".into()),
        "/readyz" => ("503 Service Unavailable", "not ready\n".into()),
        "/metrics" => ("200 OK", health.metrics()),
        _ => ("404 Not Found", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(bool);
    impl Health for Fixed {
        fn ready(&self) -> bool {
            self.0
        }
        fn metrics(&self) -> String {
            "m 1\n".into()
        }
    }

    #[test]
    fn routes() {
        assert_eq!(respond("/healthz", &Fixed(false)).0, "200 OK");
        assert_eq!(
            respond("/readyz", &Fixed(false)).0,
            "503 Service Unavailable"
        );
        assert_eq!(respond("/readyz", &Fixed(true)).0, "200 OK");
        assert_eq!(respond("/metrics", &Fixed(true)).1, "m 1\n");
        assert_eq!(respond("/x", &Fixed(true)).0, "404 Not Found");
    }
}
