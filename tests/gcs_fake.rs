//! The GCS client against an in-process fake GCS (no Ray needed): metadata,
//! the cluster-id re-read, the `request_resources` KV fallback, timeouts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use ray_operator::operator::autoscaler::gcs::{AutoscalerReport, GcsClient, GcsOptions};
use ray_operator::operator::autoscaler::proto::autoscaler as pb;
use ray_operator::operator::autoscaler::proto::autoscaler::autoscaler_state_service_server::{
    AutoscalerStateService, AutoscalerStateServiceServer,
};
use ray_operator::operator::autoscaler::proto::ray_rpc;
use ray_operator::operator::autoscaler::proto::ray_rpc::internal_kv_gcs_service_server::{
    InternalKvGcsService, InternalKvGcsServiceServer,
};
use ray_operator::operator::autoscaler::proto::ray_rpc::node_info_gcs_service_server::{
    NodeInfoGcsService, NodeInfoGcsServiceServer,
};
use ray_operator::operator::resources::bundle;

/// Shared state of the fake: the current cluster id, the required token, what it saw.
#[derive(Default)]
struct Fake {
    cluster_id: Mutex<Vec<u8>>,
    token: Option<String>,
    /// Sleep this long in GetClusterResourceState.
    delay: Duration,
    /// Ray nodes in GetClusterResourceState's reply.
    nodes: usize,
    seen_ids: Mutex<Vec<String>>,
    /// Pending instances of the last ReportAutoscalingState.
    reported_pods: Mutex<Vec<String>>,
}

#[derive(Clone)]
struct Gcs(Arc<Fake>);

impl Gcs {
    /// Checks metadata the way Ray does: token first, then the cluster id.
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let md = req.metadata();
        if let Some(token) = &self.0.token {
            let want = format!("Bearer {token}");
            if md.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
                return Err(Status::unauthenticated(
                    "InvalidAuthToken: wrong or missing token",
                ));
            }
        }
        if let Some(id) = md.get("ray_cluster_id").and_then(|v| v.to_str().ok()) {
            self.0.seen_ids.lock().unwrap().push(id.to_string());
            let current: String = self
                .0
                .cluster_id
                .lock()
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if id != current {
                return Err(Status::unauthenticated(format!(
                    "WrongClusterID: got {id}, want {current}"
                )));
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl NodeInfoGcsService for Gcs {
    async fn get_cluster_id(
        &self,
        req: Request<ray_rpc::GetClusterIdRequest>,
    ) -> Result<Response<ray_rpc::GetClusterIdReply>, Status> {
        self.check(&req)?;
        Ok(Response::new(ray_rpc::GetClusterIdReply {
            status: None,
            cluster_id: self.0.cluster_id.lock().unwrap().clone(),
        }))
    }
}

#[tonic::async_trait]
impl InternalKvGcsService for Gcs {
    async fn internal_kv_get(
        &self,
        req: Request<ray_rpc::InternalKvGetRequest>,
    ) -> Result<Response<ray_rpc::InternalKvGetReply>, Status> {
        self.check(&req)?;
        assert_eq!(req.get_ref().key, b"autoscaler_resource_request");
        assert!(req.get_ref().namespace.is_empty());
        Ok(Response::new(ray_rpc::InternalKvGetReply {
            status: None,
            value: br#"[{"CPU": 1}, {"CPU": 1}, {"GPU": 2}]"#.to_vec(),
        }))
    }
}

#[tonic::async_trait]
impl AutoscalerStateService for Gcs {
    async fn get_cluster_resource_state(
        &self,
        req: Request<pb::GetClusterResourceStateRequest>,
    ) -> Result<Response<pb::GetClusterResourceStateReply>, Status> {
        self.check(&req)?;
        tokio::time::sleep(self.0.delay).await;
        Ok(Response::new(pb::GetClusterResourceStateReply {
            cluster_resource_state: Some(pb::ClusterResourceState {
                cluster_resource_state_version: 3,
                node_states: (0..self.0.nodes)
                    .map(|i| pb::NodeState {
                        node_id: vec![7; 28],
                        instance_id: format!("worker-{i:06}"),
                        ray_node_type_name: "cpu".into(),
                        total_resources: [("CPU".to_string(), 4.0)].into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
        }))
    }
    async fn report_autoscaling_state(
        &self,
        req: Request<pb::ReportAutoscalingStateRequest>,
    ) -> Result<Response<pb::ReportAutoscalingStateReply>, Status> {
        self.check(&req)?;
        let state = req.into_inner().autoscaling_state.unwrap_or_default();
        *self.0.reported_pods.lock().unwrap() = state
            .pending_instances
            .into_iter()
            .map(|p| p.instance_id)
            .collect();
        Ok(Response::new(pb::ReportAutoscalingStateReply {}))
    }
    async fn request_cluster_resource_constraint(
        &self,
        req: Request<pb::RequestClusterResourceConstraintRequest>,
    ) -> Result<Response<pb::RequestClusterResourceConstraintReply>, Status> {
        self.check(&req)?;
        Ok(Response::new(pb::RequestClusterResourceConstraintReply {}))
    }
    async fn drain_node(
        &self,
        req: Request<pb::DrainNodeRequest>,
    ) -> Result<Response<pb::DrainNodeReply>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        Ok(Response::new(pb::DrainNodeReply {
            is_accepted: r.node_id == [0xab, 0xcd]
                && r.reason == pb::DrainNodeReason::IdleTermination as i32,
            rejection_reason_message: String::new(),
        }))
    }
}

/// Serves the fake on a free loopback port; returns its address.
async fn serve(fake: Arc<Fake>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let gcs = Gcs(fake);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(NodeInfoGcsServiceServer::new(gcs.clone()))
            .add_service(InternalKvGcsServiceServer::new(gcs.clone()))
            .add_service(AutoscalerStateServiceServer::new(gcs))
            .serve(addr),
    );
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    addr.to_string()
}

/// A TCP relay to `target` on a free loopback port.
struct Relay {
    addr: String,
    /// Connections accepted, and still open.
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap().to_string(),
            accepted: Arc::default(),
            open: Arc::default(),
            links: Arc::default(),
        };
        let (accepted, open, links) = (
            relay.accepted.clone(),
            relay.open.clone(),
            relay.links.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                open.fetch_add(1, Ordering::SeqCst);
                let open = open.clone();
                let target = target.clone();
                let link = tokio::spawn(async move {
                    /// Counts the link closed however its task ends (aborted included).
                    struct Closed(Arc<AtomicUsize>);
                    impl Drop for Closed {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _closed = Closed(open);
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links.lock().unwrap().push(link.abort_handle());
            }
        });
        relay
    }

    /// Closes every open connection, as a restarting server or a proxy's
    /// idle timeout would.
    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    async fn wait_closed(&self) {
        let t = Instant::now();
        while self.open.load(Ordering::SeqCst) > 0 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the connection stays open"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn fake(id: u8) -> Arc<Fake> {
    Arc::new(Fake {
        cluster_id: Mutex::new(vec![id; 28]),
        ..Default::default()
    })
}

#[tokio::test]
async fn sends_the_cluster_id_and_rereads_it_after_a_head_restart() {
    let fake = fake(1);
    let gcs = GcsClient::new(GcsOptions::new(serve(fake.clone()).await)).unwrap();
    let state = gcs.cluster_state().await.unwrap();
    assert_eq!(state.version, 3);
    // No GCS constraint: the request_resources bundles come from the KV.
    assert_eq!(
        state.constraints,
        vec![
            bundle([("CPU", 1.0)]),
            bundle([("CPU", 1.0)]),
            bundle([("GPU", 2.0)])
        ]
    );
    assert!(
        fake.seen_ids
            .lock()
            .unwrap()
            .iter()
            .all(|id| *id == "01".repeat(28))
    );

    // The head restarts with a new id: one refused call, a re-read, a retry.
    *fake.cluster_id.lock().unwrap() = vec![2; 28];
    let outcome = gcs
        .drain_node(
            "abcd",
            ray_operator::operator::autoscaler::DrainReason::IdleTermination,
            "idle",
            0,
        )
        .await
        .unwrap();
    assert!(outcome.accepted);
    assert_eq!(
        fake.seen_ids.lock().unwrap().last().unwrap(),
        &"02".repeat(28)
    );
    assert!(
        gcs.drain_node(
            "zz",
            ray_operator::operator::autoscaler::DrainReason::Preemption,
            "",
            0
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn sends_the_auth_token() {
    let fake = Arc::new(Fake {
        token: Some("s3cret".into()),
        cluster_id: Mutex::new(vec![7; 28]),
        ..Default::default()
    });
    let addr = serve(fake).await;
    let without = GcsClient::new(GcsOptions::new(addr.clone())).unwrap();
    let err = without.cluster_id().await.unwrap_err();
    assert!(err.to_string().contains("InvalidAuthToken"), "{err}");
    let with = GcsClient::new(GcsOptions {
        auth_token: Some("s3cret".into()),
        ..GcsOptions::new(addr)
    })
    .unwrap();
    assert_eq!(with.cluster_id().await.unwrap(), "07".repeat(28));
    with.report_state(&Default::default()).await.unwrap();
    with.request_cluster_resource_constraint(&[(bundle([("CPU", 1.0)]), 2)])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_slow_gcs_times_out() {
    let fake = Arc::new(Fake {
        delay: Duration::from_secs(10),
        cluster_id: Mutex::new(vec![1; 28]),
        ..Default::default()
    });
    let addr = serve(fake).await;
    let opts = GcsOptions {
        call_timeout: Duration::from_millis(300),
        ..GcsOptions::new(addr)
    };
    let gcs = GcsClient::new(opts).unwrap();
    let t = Instant::now();
    let err = gcs.cluster_state().await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("GetClusterResourceState"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test]
async fn disconnect_closes_the_connection_and_the_next_call_opens_one() {
    let relay = Relay::start(serve(fake(1)).await).await;
    let gcs = GcsClient::new(GcsOptions::new(relay.addr.clone())).unwrap();
    assert!(!gcs.is_connected());
    // GetClusterId, then twice GetClusterResourceState + InternalKVGet: one connection.
    gcs.cluster_state().await.unwrap();
    gcs.cluster_state().await.unwrap();
    assert!(gcs.is_connected());
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 1);

    gcs.disconnect();
    assert!(!gcs.is_connected());
    relay.wait_closed().await;
    // A new connection; the cluster id is remembered.
    assert_eq!(gcs.cluster_state().await.unwrap().version, 3);
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(relay.open.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced_without_an_error() {
    let relay = Relay::start(serve(fake(1)).await).await;
    let gcs = GcsClient::new(GcsOptions::new(relay.addr.clone())).unwrap();
    gcs.cluster_state().await.unwrap();
    assert!(gcs.is_connected());
    relay.cut();
    relay.wait_closed().await;
    // The held connection is dead; the call notices and retries on a new one.
    assert_eq!(gcs.cluster_state().await.unwrap().version, 3);
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 2);
    assert!(gcs.is_connected());
}

#[tokio::test]
async fn replies_and_requests_larger_than_a_frame_and_a_window_go_through() {
    // ~3,000 nodes: a reply of well over 64 KiB (the initial window) in many frames.
    let fake = Arc::new(Fake {
        cluster_id: Mutex::new(vec![1; 28]),
        nodes: 3000,
        ..Default::default()
    });
    let gcs = GcsClient::new(GcsOptions::new(serve(fake.clone()).await)).unwrap();
    let state = gcs.cluster_state().await.unwrap();
    assert_eq!(state.nodes.len(), 3000);
    assert_eq!(state.nodes[2999].instance_id, "worker-002999");
    // A report of 5,000 pending pods: a request larger than the server's window.
    let pods: Vec<(String, String)> = (0..5000)
        .map(|i| {
            (
                "cpu".to_string(),
                format!("pending-pod-with-a-long-name-{i:06}"),
            )
        })
        .collect();
    let report = AutoscalerReport {
        pending_pods: pods.clone(),
        ..Default::default()
    };
    gcs.report_state(&report).await.unwrap();
    let seen = fake.reported_pods.lock().unwrap().clone();
    assert_eq!(seen.len(), 5000);
    assert_eq!(seen[4999], pods[4999].1);
    // Still one healthy connection, for the next call.
    assert_eq!(gcs.cluster_state().await.unwrap().nodes.len(), 3000);
}
