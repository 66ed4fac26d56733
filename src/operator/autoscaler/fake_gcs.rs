//! An in-process fake of a head's GCS for unit tests of the autoscaler's
//! rounds: a tonic server of the generated protos on a free loopback port.
//! A test sets its Ray nodes (their instance ids are the pods' names), the
//! queued demand and whether drains are accepted, and reads back the
//! `DrainNode` and `ReportAutoscalingState` calls it got.

use std::sync::{Arc, Mutex, MutexGuard};

use tonic::{Request, Response, Status};

use super::gcs::{NodeStatus, ResourceBundle, to_hex};
use super::proto::autoscaler as pb;
use super::proto::autoscaler::autoscaler_state_service_server::{
    AutoscalerStateService, AutoscalerStateServiceServer,
};
use super::proto::ray_rpc;
use super::proto::ray_rpc::internal_kv_gcs_service_server::{
    InternalKvGcsService, InternalKvGcsServiceServer,
};
use super::proto::ray_rpc::node_info_gcs_service_server::{
    NodeInfoGcsService, NodeInfoGcsServiceServer,
};

/// A Ray node of the fake cluster.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its `instance_id`: the pod's name.
    pub pod: String,
    pub node_type: String,
    pub status: NodeStatus,
    pub total: ResourceBundle,
    pub available: ResourceBundle,
    pub idle_ms: i64,
}

impl Node {
    /// A node of the pod `pod` with all of `total` free, busy (not idle).
    pub fn running(pod: &str, node_type: &str, total: ResourceBundle) -> Node {
        Node {
            pod: pod.into(),
            node_type: node_type.into(),
            status: NodeStatus::Running,
            available: total.clone(),
            total,
            idle_ms: 0,
        }
    }

    /// The node idle for `ms`.
    pub fn idle(self, ms: i64) -> Node {
        Node {
            status: NodeStatus::Idle,
            idle_ms: ms,
            ..self
        }
    }

    pub fn with_status(self, status: NodeStatus) -> Node {
        Node { status, ..self }
    }
}

/// What the fake answers.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    pub nodes: Vec<Node>,
    /// Queued demand: a shape and how many of it.
    pub pending: Vec<(ResourceBundle, u64)>,
    pub accept_drains: bool,
}

/// A `DrainNode` call, with the node named by its pod.
#[derive(Clone, Debug, PartialEq)]
pub struct DrainCall {
    pub pod: String,
    pub reason: pb::DrainNodeReason,
}

#[derive(Default)]
struct State {
    setup: Setup,
    drains: Vec<DrainCall>,
    reports: Vec<pb::AutoscalingState>,
}

/// A running fake GCS; it stops with the test's runtime.
#[derive(Clone)]
pub struct FakeGcs {
    pub address: String,
    state: Arc<Mutex<State>>,
}

/// The node id the fake gives the `i`th node: 28 bytes of `i + 1`.
fn node_id(i: usize) -> Vec<u8> {
    vec![i as u8 + 1; 28]
}

impl FakeGcs {
    /// Serves `setup` on a free loopback port.
    pub async fn serve(setup: Setup) -> FakeGcs {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let fake = FakeGcs {
            address: listener.local_addr().expect("an address").to_string(),
            state: Arc::new(Mutex::new(State {
                setup,
                ..State::default()
            })),
        };
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(NodeInfoGcsServiceServer::new(fake.clone()))
                .add_service(InternalKvGcsServiceServer::new(fake.clone()))
                .add_service(AutoscalerStateServiceServer::new(fake.clone()))
                .serve_with_incoming(incoming),
        );
        fake
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake GCS lock")
    }

    /// Changes what the fake answers from the next call on.
    pub fn set(&self, change: impl FnOnce(&mut Setup)) {
        change(&mut self.state().setup);
    }

    /// The `DrainNode` calls so far.
    pub fn drains(&self) -> Vec<DrainCall> {
        self.state().drains.clone()
    }

    /// The `ReportAutoscalingState` calls so far.
    pub fn reports(&self) -> Vec<pb::AutoscalingState> {
        self.state().reports.clone()
    }
}

fn resources(bundle: &ResourceBundle) -> std::collections::HashMap<String, f64> {
    bundle.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

#[tonic::async_trait]
impl NodeInfoGcsService for FakeGcs {
    async fn get_cluster_id(
        &self,
        _: Request<ray_rpc::GetClusterIdRequest>,
    ) -> Result<Response<ray_rpc::GetClusterIdReply>, Status> {
        Ok(Response::new(ray_rpc::GetClusterIdReply {
            status: None,
            cluster_id: vec![0xc1; 28],
        }))
    }
}

#[tonic::async_trait]
impl InternalKvGcsService for FakeGcs {
    /// No `request_resources` was ever made: the key is not found.
    async fn internal_kv_get(
        &self,
        _: Request<ray_rpc::InternalKvGetRequest>,
    ) -> Result<Response<ray_rpc::InternalKvGetReply>, Status> {
        Ok(Response::new(ray_rpc::InternalKvGetReply {
            status: Some(ray_rpc::GcsStatus {
                code: 17,
                message: "NotFound".into(),
            }),
            value: vec![],
        }))
    }
}

#[tonic::async_trait]
impl AutoscalerStateService for FakeGcs {
    async fn get_cluster_resource_state(
        &self,
        _: Request<pb::GetClusterResourceStateRequest>,
    ) -> Result<Response<pb::GetClusterResourceStateReply>, Status> {
        let state = self.state();
        let setup = &state.setup;
        let node_states = (setup.nodes.iter().enumerate())
            .map(|(i, n)| pb::NodeState {
                node_id: node_id(i),
                instance_id: n.pod.clone(),
                ray_node_type_name: n.node_type.clone(),
                available_resources: resources(&n.available),
                total_resources: resources(&n.total),
                status: match n.status {
                    NodeStatus::Unspecified => pb::NodeStatus::Unspecified,
                    NodeStatus::Running => pb::NodeStatus::Running,
                    NodeStatus::Idle => pb::NodeStatus::Idle,
                    NodeStatus::Draining => pb::NodeStatus::Draining,
                    NodeStatus::Dead => pb::NodeStatus::Dead,
                } as i32,
                idle_duration_ms: n.idle_ms,
                node_ip_address: format!("10.0.0.{}", i + 1),
                ..Default::default()
            })
            .collect();
        let pending_resource_requests = (setup.pending.iter())
            .map(|(bundle, count)| pb::ResourceRequestByCount {
                request: Some(pb::ResourceRequest {
                    resources_bundle: resources(bundle),
                    placement_constraints: vec![],
                }),
                count: *count as i64,
            })
            .collect();
        Ok(Response::new(pb::GetClusterResourceStateReply {
            cluster_resource_state: Some(pb::ClusterResourceState {
                cluster_resource_state_version: 1,
                node_states,
                pending_resource_requests,
                ..Default::default()
            }),
        }))
    }

    async fn report_autoscaling_state(
        &self,
        req: Request<pb::ReportAutoscalingStateRequest>,
    ) -> Result<Response<pb::ReportAutoscalingStateReply>, Status> {
        let report = req.into_inner().autoscaling_state.unwrap_or_default();
        self.state().reports.push(report);
        Ok(Response::new(pb::ReportAutoscalingStateReply {}))
    }

    async fn request_cluster_resource_constraint(
        &self,
        _: Request<pb::RequestClusterResourceConstraintRequest>,
    ) -> Result<Response<pb::RequestClusterResourceConstraintReply>, Status> {
        Ok(Response::new(pb::RequestClusterResourceConstraintReply {}))
    }

    async fn drain_node(
        &self,
        req: Request<pb::DrainNodeRequest>,
    ) -> Result<Response<pb::DrainNodeReply>, Status> {
        let req = req.into_inner();
        let mut state = self.state();
        let pod = (state.setup.nodes.iter().enumerate())
            .find(|(i, _)| node_id(*i) == req.node_id)
            .map(|(_, n)| n.pod.clone())
            .ok_or_else(|| Status::not_found(format!("no node {}", to_hex(&req.node_id))))?;
        let reason = pb::DrainNodeReason::try_from(req.reason)
            .map_err(|_| Status::invalid_argument("an unknown drain reason"))?;
        state.drains.push(DrainCall { pod, reason });
        let accepted = state.setup.accept_drains;
        Ok(Response::new(pb::DrainNodeReply {
            is_accepted: accepted,
            rejection_reason_message: if accepted {
                String::new()
            } else {
                "the node is busy".into()
            },
        }))
    }
}
