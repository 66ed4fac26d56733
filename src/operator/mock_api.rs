//! A mock API server for unit tests of the stages that talk to Kubernetes,
//! in the style of kube-rs/controller-rs's fixtures: `tower_test`'s mock
//! service stands behind a real `kube::Client`, and a test states each
//! request it expects, in order, and the answer. A request the test did not
//! expect fails it (wrong method or path, or one after
//! [`ApiServer::expect_nothing_more`]), and so does an expected one that
//! never comes (within [`WAIT`]).

use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

/// How long a test waits for a request, or for the stage under test to end.
pub const WAIT: Duration = Duration::from_secs(5);

/// The server's side of the mock.
pub struct ApiServer(Handle<Request<Body>, Response<Body>>);

/// A client whose requests go to the returned [`ApiServer`].
pub fn pair() -> (Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServer(handle))
}

/// A request as received: its method, path (without the query) and body.
#[derive(Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Value,
}

impl ApiServer {
    /// Receives the next request, and answers it with what `answer` makes
    /// of it (a status code and a JSON body).
    async fn next(&mut self, answer: impl FnOnce(&Received) -> (u16, Value)) -> Received {
        let (request, send) = tokio::time::timeout(WAIT, self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request came within {WAIT:?}"))
            .expect("the client is gone");
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("a request body");
        let received = Received {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        };
        let (status, body) = answer(&received);
        send.send_response(
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
        received
    }

    /// Expects `method` on `path` next, answers `status` with `body`, and
    /// returns the request.
    pub async fn expect(
        &mut self,
        method: Method,
        path: &str,
        status: u16,
        body: Value,
    ) -> Received {
        let received = self.next(|_| (status, body)).await;
        assert_eq!(
            (&received.method, received.path.as_str()),
            (&method, path),
            "expected {method} {path}, got {received:?}"
        );
        received
    }

    /// Expects one `method` request on each of `paths`, in any order (they
    /// are sent concurrently), answering each with what `answer` makes of
    /// it; returns them in the order they came.
    pub async fn expect_each(
        &mut self,
        method: Method,
        paths: &[&str],
        answer: impl Fn(&Received) -> (u16, Value),
    ) -> Vec<Received> {
        let mut left: Vec<&str> = paths.to_vec();
        let mut all = Vec::new();
        while !left.is_empty() {
            let received = self.next(&answer).await;
            let Some(at) = left.iter().position(|p| *p == received.path) else {
                panic!("expected {method} on one of {left:?}, got {received:?}");
            };
            assert_eq!(received.method, method, "{received:?}");
            left.remove(at);
            all.push(received);
        }
        all
    }

    /// Fails on any request that comes before `until` ends (the stage under
    /// test, having sent what the test expected of it), at once rather than
    /// when that stage times out waiting for an answer.
    pub async fn nothing_until(&mut self, until: impl Future<Output = ()>) {
        let mut until = std::pin::pin!(until);
        tokio::select! {
            biased;
            () = &mut until => {}
            request = self.0.next_request() => match request {
                Some((request, _)) => panic!(
                    "an unexpected request: {} {}",
                    request.method(),
                    request.uri()
                ),
                None => until.await,
            },
        }
    }

    /// Fails on any further request: call it once the stage under test has
    /// returned (its client may still be alive elsewhere).
    pub async fn expect_nothing_more(mut self) {
        let more = tokio::time::timeout(Duration::from_millis(200), self.0.next_request()).await;
        if let Ok(Some((request, _))) = more {
            panic!(
                "an unexpected request: {} {}",
                request.method(),
                request.uri()
            );
        }
    }
}

/// An object as the API server answers its creation: the request's body
/// with a UID and a creation time.
pub fn created(received: &Received) -> (u16, Value) {
    let mut object = received.body.clone();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("x")
        .to_string();
    object["metadata"]["uid"] = json!(format!("uid-{name}"));
    object["metadata"]["creationTimestamp"] = json!("2026-12-01T00:00:00Z");
    (201, object)
}

/// A `Status` failure, as the API server sends it.
pub fn failure(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }),
    )
}
