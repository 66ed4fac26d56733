//! A small client for the Ray GCS calls the autoscaler needs.
//!
//! Replies are turned into plain domain types ([`ClusterState`], [`RayNode`], ...):
//! nothing outside this module (and tests' fake GCS) sees the prost types.
//!
//! Every call carries the `ray_cluster_id` metadata (hex of the id from
//! `GetClusterId`, fetched on first use) and, if configured, `authorization:
//! Bearer <token>`. A call refused with `UNAUTHENTICATED` / `WrongClusterID`
//! (Ray 2.47 and older: `ABORTED` / `AuthError`) means the head restarted with a new id: the id is re-read once and the call
//! retried. The connection is opened by the first call and kept, so a head
//! that is down shows up as a quick per-call error, never as a hang (connect
//! ~1 s, call ~2 s by default).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prost::Message;
use tonic::Code;

use super::grpc::{CallError, Channel};
use super::proto::autoscaler as pb;
use super::proto::ray_rpc;
pub use crate::operator::resources::ResourceBundle;

/// Internal KV key under which `ray.autoscaler.sdk.request_resources` stores its
/// bundles (a JSON list) when Ray's autoscaler v2 is off (the default).
pub const RESOURCE_REQUEST_KV_KEY: &str = "autoscaler_resource_request";

/// How to reach one cluster's GCS.
#[derive(Clone, Debug)]
pub struct GcsOptions {
    /// `host:port` of the GCS (the head's port 6379 by default).
    pub address: String,
    /// Ray auth token, for heads run with `RAY_AUTH_MODE=token`.
    pub auth_token: Option<String>,
    pub connect_timeout: Duration,
    pub call_timeout: Duration,
}

impl GcsOptions {
    /// Options with the default timeouts (connect 1 s, call 2 s) and no token.
    pub fn new(address: impl Into<String>) -> Self {
        GcsOptions {
            address: address.into(),
            auth_token: None,
            connect_timeout: Duration::from_secs(1),
            call_timeout: Duration::from_secs(2),
        }
    }
}

/// A failed GCS call, naming the address and the call.
#[derive(Debug, thiserror::Error)]
pub enum GcsError {
    #[error("GCS address {address:?} is invalid: want host:port")]
    InvalidAddress { address: String },
    #[error("GCS {address}: {call} failed: {code:?}: {message}")]
    Status {
        address: String,
        call: &'static str,
        code: Code,
        message: String,
    },
    #[error("GCS {address}: {call} timed out after {timeout:?}")]
    Timeout {
        address: String,
        call: &'static str,
        timeout: Duration,
    },
    #[error("GCS {address}: {call}: {message}")]
    Reply {
        address: String,
        call: &'static str,
        message: String,
    },
    #[error("invalid Ray node id {node_id:?} (want hex)")]
    NodeId { node_id: String },
}

impl GcsError {
    /// The GCS answered that it has no such service: a Ray older than the
    /// autoscaler API (2.7), which the operator cannot scale.
    pub fn is_unimplemented(&self) -> bool {
        matches!(
            self,
            GcsError::Status {
                code: Code::Unimplemented,
                ..
            }
        )
    }

    /// The head could not be reached (down, restarting, or the network): the
    /// caller should retry later rather than act on the cluster.
    pub fn is_unreachable(&self) -> bool {
        match self {
            GcsError::Timeout { .. } => true,
            GcsError::Status { code, .. } => matches!(
                code,
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown
            ),
            _ => false,
        }
    }
}

/// Ray's view of one node, from `GetClusterResourceState`.
#[derive(Clone, Debug, PartialEq)]
pub struct RayNode {
    /// Hex of the node id, as `DrainNode` takes it and `ray status` shows it.
    pub node_id: String,
    /// `RAY_CLOUD_INSTANCE_ID` of the node: the worker pod's name.
    pub instance_id: String,
    /// `RAY_NODE_TYPE_NAME` of the node: the pod type.
    pub node_type: String,
    pub ip: String,
    pub total: ResourceBundle,
    pub available: ResourceBundle,
    pub status: NodeStatus,
    /// How long the node has been idle (0 while busy).
    pub idle_ms: i64,
}

/// A Ray node's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    Unspecified,
    Running,
    Idle,
    Draining,
    Dead,
}

/// A pending placement group: all bundles must be placed at once.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Gang {
    pub bundles: Vec<ResourceBundle>,
    /// Bundles carry an anti-affinity constraint (STRICT_SPREAD): each needs its own node.
    pub strict_spread: bool,
    /// Ray's description (placement group id, strategy).
    pub details: String,
}

/// What the cluster has and needs, from `GetClusterResourceState` plus the
/// `request_resources` bundles from the internal KV.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ClusterState {
    /// `cluster_resource_state_version`, to echo in [`AutoscalerReport`].
    pub version: i64,
    /// Live and recently dead nodes (the head included).
    pub nodes: Vec<RayNode>,
    /// Queued task/actor demand: a shape and how many of it.
    pub pending: Vec<(ResourceBundle, u64)>,
    /// Pending placement groups.
    pub gangs: Vec<Gang>,
    /// `request_resources`: bundles the cluster's total capacity must hold
    /// (expanded, one entry per bundle).
    pub constraints: Vec<ResourceBundle>,
}

/// Outcome of `DrainNode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainOutcome {
    pub accepted: bool,
    pub rejection: String,
}

/// Why a node is drained (Ray's `DrainNodeReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainReason {
    /// Idle scale-down: Ray rejects it if the node is busy.
    IdleTermination,
    /// The node goes away regardless (above max, removed type): Ray accepts it.
    Preemption,
}

/// What the autoscaler decided, for `ray status` (`ReportAutoscalingState`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AutoscalerReport {
    /// The [`ClusterState::version`] the decision was based on.
    pub last_seen_version: i64,
    /// Increase on every report.
    pub autoscaler_version: i64,
    /// Pods requested, not yet created: pod type and count.
    pub launching: Vec<(String, u32)>,
    /// Pods created, not yet a Ray node: pod type and pod name.
    pub pending_pods: Vec<(String, String)>,
    /// Demand no pod type can hold.
    pub infeasible: Vec<ResourceBundle>,
}

/// A client for one cluster's GCS. Cheap to share (`&self` methods); keep one per cluster.
///
/// The HTTP/2 connection is opened on the first call and kept until
/// [`GcsClient::disconnect`] or until it fails. Idle, it costs a socket and a
/// few hundred bytes (see [`Channel`]), so every cluster keeps its own open.
pub struct GcsClient {
    opts: GcsOptions,
    channel: Channel,
    cluster_id: Mutex<Option<String>>,
}

/// GCS services, as in the paths of their calls.
const NODE_INFO: &str = "/ray.rpc.NodeInfoGcsService/";
const INTERNAL_KV: &str = "/ray.rpc.InternalKVGcsService/";
const AUTOSCALER: &str = "/ray.rpc.autoscaler.AutoscalerStateService/";
const KV_GET: &str = "InternalKVGet";

/// The internal KV read of `request_resources`' bundles.
fn resource_request_kv() -> ray_rpc::InternalKvGetRequest {
    ray_rpc::InternalKvGetRequest {
        key: RESOURCE_REQUEST_KV_KEY.as_bytes().to_vec(),
        namespace: vec![],
    }
}

impl GcsClient {
    /// A client that connects on its first call: fails only on an address
    /// that is not `host:port`.
    pub fn new(opts: GcsOptions) -> Result<Self, GcsError> {
        let valid = opts.address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && port.parse::<u16>().is_ok()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c))
        });
        if !valid {
            return Err(GcsError::InvalidAddress {
                address: opts.address.clone(),
            });
        }
        Ok(GcsClient {
            channel: Channel::new(opts.address.clone(), opts.connect_timeout),
            opts,
            cluster_id: Mutex::new(None),
        })
    }

    /// Closes the idle connection; the next call opens a new one. The
    /// cluster id is kept.
    pub fn disconnect(&self) {
        self.channel.disconnect();
    }

    /// Whether a connection is held for the next call.
    pub fn is_connected(&self) -> bool {
        self.channel.is_connected()
    }

    /// Replaces the remembered cluster id, as if the head had restarted with a
    /// new one (tests use it to exercise the re-read on `WrongClusterID`).
    #[doc(hidden)]
    pub fn set_cluster_id(&self, hex: &str) {
        *self.cluster_id.lock().expect("cluster id lock") = Some(hex.to_string());
    }

    pub fn address(&self) -> &str {
        &self.opts.address
    }

    /// The cluster id (28 bytes) as hex; also remembered for the metadata.
    pub async fn cluster_id(&self) -> Result<String, GcsError> {
        const CALL: &str = "GetClusterId";
        let request = ray_rpc::GetClusterIdRequest {}.encode_to_vec();
        let mut replies = self.raw_calls(&[(NODE_INFO, CALL, request)], None).await?;
        let reply: ray_rpc::GetClusterIdReply =
            self.decode(CALL, &replies.pop().expect("a reply per call")?)?;
        self.check_gcs_status("GetClusterId", reply.status.as_ref())?;
        let id = to_hex(&reply.cluster_id);
        *self.cluster_id.lock().expect("cluster id lock") = Some(id.clone());
        Ok(id)
    }

    /// Nodes, demand and constraints: `GetClusterResourceState` plus the
    /// `request_resources` bundles from the internal KV (used when the GCS
    /// reports no constraint itself, i.e. Ray's autoscaler v2 is off).
    pub async fn cluster_state(&self) -> Result<ClusterState, GcsError> {
        // Both calls in one write: an idle cluster's round is one exchange.
        let state_request = pb::GetClusterResourceStateRequest::default().encode_to_vec();
        let kv_request = resource_request_kv().encode_to_vec();
        let calls = [
            (AUTOSCALER, "GetClusterResourceState", state_request),
            (INTERNAL_KV, KV_GET, kv_request),
        ];
        let mut replies = self.calls(&calls).await?.into_iter();
        let (state, kv) = (replies.next(), replies.next());
        let state = state.expect("a reply per call")?;
        let state: pb::GetClusterResourceStateReply =
            self.decode("GetClusterResourceState", &state)?;
        let mut state = convert_state(state.cluster_resource_state.unwrap_or_default());
        if state.constraints.is_empty() {
            let kv = kv.expect("a reply per call")?;
            state.constraints = self.kv_bundles(self.decode(KV_GET, &kv)?)?;
        }
        Ok(state)
    }

    /// The bundles last set by `ray.autoscaler.sdk.request_resources` (KV key
    /// [`RESOURCE_REQUEST_KV_KEY`]); empty if never set.
    pub async fn resource_request(&self) -> Result<Vec<ResourceBundle>, GcsError> {
        let reply = self
            .call(INTERNAL_KV, KV_GET, &resource_request_kv())
            .await?;
        self.kv_bundles(reply)
    }

    fn kv_bundles(
        &self,
        reply: ray_rpc::InternalKvGetReply,
    ) -> Result<Vec<ResourceBundle>, GcsError> {
        // A missing key is reported as NotFound (code 17) in the GcsStatus.
        if reply.status.as_ref().is_some_and(|s| s.code != 0) || reply.value.is_empty() {
            return Ok(vec![]);
        }
        parse_resource_request(&reply.value).map_err(|message| self.reply_error(KV_GET, message))
    }

    /// Asks Ray to drain a node; for [`DrainReason::IdleTermination`] Ray
    /// refuses a busy node. After acceptance the raylet exits (~2 s) and the
    /// pod should be deleted. `deadline_ms` is a unix timestamp (0: none).
    pub async fn drain_node(
        &self,
        node_id_hex: &str,
        reason: DrainReason,
        message: &str,
        deadline_ms: i64,
    ) -> Result<DrainOutcome, GcsError> {
        let node_id = from_hex(node_id_hex).ok_or_else(|| GcsError::NodeId {
            node_id: node_id_hex.into(),
        })?;
        let reason = match reason {
            DrainReason::IdleTermination => pb::DrainNodeReason::IdleTermination,
            DrainReason::Preemption => pb::DrainNodeReason::Preemption,
        };
        let req = pb::DrainNodeRequest {
            node_id,
            reason: reason as i32,
            reason_message: message.into(),
            deadline_timestamp_ms: deadline_ms,
        };
        let reply: pb::DrainNodeReply = self.call(AUTOSCALER, "DrainNode", &req).await?;
        Ok(DrainOutcome {
            accepted: reply.is_accepted,
            rejection: reply.rejection_reason_message,
        })
    }

    /// Tells Ray what the autoscaler is doing (shown by `ray status`).
    pub async fn report_state(&self, report: &AutoscalerReport) -> Result<(), GcsError> {
        let state = pb::AutoscalingState {
            last_seen_cluster_resource_state_version: report.last_seen_version,
            autoscaler_state_version: report.autoscaler_version,
            pending_instance_requests: report
                .launching
                .iter()
                .map(|(t, n)| pb::PendingInstanceRequest {
                    instance_type_name: t.clone(),
                    ray_node_type_name: t.clone(),
                    count: i32::try_from(*n).unwrap_or(i32::MAX),
                    request_ts: 0,
                })
                .collect(),
            infeasible_resource_requests: report.infeasible.iter().map(to_request).collect(),
            pending_instances: report
                .pending_pods
                .iter()
                .map(|(t, pod)| pb::PendingInstance {
                    instance_type_name: t.clone(),
                    ray_node_type_name: t.clone(),
                    instance_id: pod.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let req = pb::ReportAutoscalingStateRequest {
            autoscaling_state: Some(state),
        };
        self.call::<pb::ReportAutoscalingStateReply>(AUTOSCALER, "ReportAutoscalingState", &req)
            .await?;
        Ok(())
    }

    /// Sets the cluster resource constraint directly (what `request_resources`
    /// does under autoscaler v2); mostly for tests. Replaces any earlier one.
    pub async fn request_cluster_resource_constraint(
        &self,
        bundles: &[(ResourceBundle, u64)],
    ) -> Result<(), GcsError> {
        let constraint = pb::ClusterResourceConstraint {
            resource_requests: bundles
                .iter()
                .map(|(b, n)| pb::ResourceRequestByCount {
                    request: Some(to_request(b)),
                    count: *n as i64,
                })
                .collect(),
        };
        let req = pb::RequestClusterResourceConstraintRequest {
            cluster_resource_constraint: Some(constraint),
        };
        self.call::<pb::RequestClusterResourceConstraintReply>(
            AUTOSCALER,
            "RequestClusterResourceConstraint",
            &req,
        )
        .await?;
        Ok(())
    }

    /// A call with the cluster id metadata; re-reads the id once if the GCS
    /// says it is wrong (the head restarted).
    async fn call<Rep: Message + Default>(
        &self,
        service: &'static str,
        call: &'static str,
        req: &impl Message,
    ) -> Result<Rep, GcsError> {
        let mut replies = self.calls(&[(service, call, req.encode_to_vec())]).await?;
        let reply = replies.pop().expect("a reply per call")?;
        self.decode(call, &reply)
    }

    /// Calls (service, call, encoded request) sent together with the cluster
    /// id metadata, a reply (encoded) or error each; all again once, after
    /// re-reading the id, if the GCS says it is wrong.
    async fn calls(
        &self,
        calls: &[(&'static str, &'static str, Vec<u8>)],
    ) -> Result<Vec<Result<Vec<u8>, GcsError>>, GcsError> {
        let known = self.cluster_id.lock().expect("cluster id lock").clone();
        let id = match known {
            Some(id) => id,
            None => self.cluster_id().await?,
        };
        let replies = self.raw_calls(calls, Some(&id)).await?;
        let stale = replies.iter().any(|r| {
            matches!(r, Err(GcsError::Status { code, message, .. }) if is_wrong_cluster_id(*code, message))
        });
        if !stale {
            return Ok(replies);
        }
        tracing::info!(address = %self.opts.address, call = calls[0].1, "GCS cluster id changed (head restarted); re-reading it");
        let id = self.cluster_id().await?;
        self.raw_calls(calls, Some(&id)).await
    }

    fn decode<Rep: Message + Default>(
        &self,
        call: &'static str,
        reply: &[u8],
    ) -> Result<Rep, GcsError> {
        Rep::decode(reply).map_err(|e| self.reply_error(call, format!("undecodable reply: {e}")))
    }

    /// The calls on the wire: an error for the whole batch if the channel
    /// failed (no connection, timeout), else one outcome per call.
    async fn raw_calls(
        &self,
        calls: &[(&'static str, &'static str, Vec<u8>)],
        id: Option<&str>,
    ) -> Result<Vec<Result<Vec<u8>, GcsError>>, GcsError> {
        let first = calls.first().map_or("", |c| c.1);
        let mut metadata = Vec::with_capacity(2);
        if let Some(id) = id {
            metadata.push(("ray_cluster_id", id));
        }
        let bearer;
        if let Some(token) = &self.opts.auth_token {
            // A header value is visible ASCII (RFC 9110 §5.5), as tonic checked.
            if !token.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(self.reply_error(first, "auth token is not valid metadata".into()));
            }
            bearer = format!("Bearer {token}");
            metadata.push(("authorization", bearer.as_str()));
        }
        let paths: Vec<String> = calls
            .iter()
            .map(|(service, call, _)| format!("{service}{call}"))
            .collect();
        let batch: Vec<(&str, &[u8])> = (paths.iter().zip(calls))
            .map(|(path, (_, _, message))| (path.as_str(), message.as_slice()))
            .collect();
        // Connecting and calling each have their own bound; this bounds both.
        let budget = self.opts.call_timeout + self.opts.connect_timeout;
        let sent = self
            .channel
            .batch(&batch, &metadata, self.opts.call_timeout);
        match tokio::time::timeout(budget, sent).await {
            Err(_) => Err(GcsError::Timeout {
                address: self.opts.address.clone(),
                call: first,
                timeout: budget,
            }),
            Ok(Err(e)) => Err(self.call_error(first, e)),
            Ok(Ok(replies)) => Ok((replies.into_iter().zip(calls))
                .map(|(reply, (_, call, _))| reply.map_err(|e| self.call_error(call, e)))
                .collect()),
        }
    }

    fn call_error(&self, call: &'static str, e: CallError) -> GcsError {
        let status = |code: Code, message: String| GcsError::Status {
            address: self.opts.address.clone(),
            call,
            code,
            message,
        };
        match e {
            // The server gave up at the deadline sent as `grpc-timeout`
            // (tonic's servers say CANCELLED "Timeout expired").
            CallError::Status { code, message }
                if Code::from_i32(code) == Code::DeadlineExceeded
                    || (Code::from_i32(code) == Code::Cancelled && message.contains("Timeout")) =>
            {
                GcsError::Timeout {
                    address: self.opts.address.clone(),
                    call,
                    timeout: self.opts.call_timeout,
                }
            }
            CallError::Status { code, message } => status(Code::from_i32(code), message),
            e @ (CallError::Connect(_) | CallError::Io(_)) => {
                status(Code::Unavailable, e.to_string())
            }
            e @ CallError::Protocol(_) => status(Code::Internal, e.to_string()),
        }
    }

    fn check_gcs_status(
        &self,
        call: &'static str,
        status: Option<&ray_rpc::GcsStatus>,
    ) -> Result<(), GcsError> {
        match status {
            Some(s) if s.code != 0 => {
                Err(self.reply_error(call, format!("status {}: {}", s.code, s.message)))
            }
            _ => Ok(()),
        }
    }

    fn reply_error(&self, call: &'static str, message: String) -> GcsError {
        GcsError::Reply {
            address: self.opts.address.clone(),
            call,
            message,
        }
    }
}

/// How the GCS refuses a stale `ray_cluster_id`: `UNAUTHENTICATED "WrongClusterID..."`
/// (Ray 2.5x), `ABORTED "AuthError"` (Ray 2.47 and older).
fn is_wrong_cluster_id(code: Code, message: &str) -> bool {
    (code == Code::Unauthenticated && message.contains("WrongClusterID"))
        || (code == Code::Aborted && message.contains("AuthError"))
}

fn to_request(bundle: &ResourceBundle) -> pb::ResourceRequest {
    pb::ResourceRequest {
        resources_bundle: bundle.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        placement_constraints: vec![],
    }
}

fn bundle_of(req: Option<&pb::ResourceRequest>) -> ResourceBundle {
    req.map(|r| {
        r.resources_bundle
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    })
    .unwrap_or_default()
}

/// Converts Ray's reply to the domain types.
fn convert_state(s: pb::ClusterResourceState) -> ClusterState {
    let nodes = s
        .node_states
        .into_iter()
        .map(|n| RayNode {
            node_id: to_hex(&n.node_id),
            status: match pb::NodeStatus::try_from(n.status) {
                Ok(pb::NodeStatus::Running) => NodeStatus::Running,
                Ok(pb::NodeStatus::Idle) => NodeStatus::Idle,
                Ok(pb::NodeStatus::Draining) => NodeStatus::Draining,
                Ok(pb::NodeStatus::Dead) => NodeStatus::Dead,
                _ => NodeStatus::Unspecified,
            },
            instance_id: n.instance_id,
            node_type: n.ray_node_type_name,
            ip: n.node_ip_address,
            total: n.total_resources.into_iter().collect(),
            available: n.available_resources.into_iter().collect(),
            idle_ms: n.idle_duration_ms,
        })
        .collect();
    let pending = s
        .pending_resource_requests
        .iter()
        .map(|r| (bundle_of(r.request.as_ref()), r.count.max(0) as u64))
        .filter(|(_, n)| *n > 0)
        .collect();
    let gangs = s
        .pending_gang_resource_requests
        .iter()
        .map(|g| Gang {
            bundles: g.requests.iter().map(|r| bundle_of(Some(r))).collect(),
            strict_spread: g.requests.iter().any(|r| {
                r.placement_constraints
                    .iter()
                    .any(|c| c.anti_affinity.is_some())
            }),
            details: g.details.clone(),
        })
        .collect();
    let constraints = s
        .cluster_resource_constraints
        .iter()
        .flat_map(|c| &c.resource_requests)
        .flat_map(|r| std::iter::repeat_n(bundle_of(r.request.as_ref()), r.count.max(0) as usize))
        .collect();
    ClusterState {
        version: s.cluster_resource_state_version,
        nodes,
        pending,
        gangs,
        constraints,
    }
}

/// Parses the KV value of `request_resources`: a JSON list of bundles.
pub fn parse_resource_request(value: &[u8]) -> Result<Vec<ResourceBundle>, String> {
    let raw: Vec<BTreeMap<String, f64>> = serde_json::from_slice(value)
        .map_err(|e| format!("request_resources value is not a list of bundles: {e}"))?;
    Ok(raw
        .into_iter()
        .map(|b| b.into_iter().filter(|(_, v)| *v > 0.0).collect())
        .filter(|b: &ResourceBundle| !b.is_empty())
        .collect())
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string, `None` if it is not hex.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::resources::bundle;

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[0, 1, 0xab]), "0001ab");
        assert_eq!(from_hex("0001ab"), Some(vec![0, 1, 0xab]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
    }

    #[test]
    fn kv_request_parses() {
        let v = br#"[{"CPU": 1}, {"CPU": 1}, {"GPU": 1, "CPU": 0}]"#;
        assert_eq!(
            parse_resource_request(v).unwrap(),
            vec![
                bundle([("CPU", 1.0)]),
                bundle([("CPU", 1.0)]),
                bundle([("GPU", 1.0)])
            ]
        );
        assert!(parse_resource_request(b"{}").is_err());
    }

    #[test]
    fn converts_reply() {
        let req = |cpu: f64, anti: bool| pb::ResourceRequest {
            resources_bundle: [("CPU".to_string(), cpu)].into(),
            placement_constraints: if anti {
                vec![pb::PlacementConstraint {
                    anti_affinity: Some(pb::AntiAffinityConstraint {
                        label_name: "_PG_x".into(),
                        label_value: "".into(),
                    }),
                    affinity: None,
                }]
            } else {
                vec![]
            },
        };
        let s = pb::ClusterResourceState {
            cluster_resource_state_version: 7,
            node_states: vec![pb::NodeState {
                node_id: vec![0xab, 0xcd],
                instance_id: "pod-1".into(),
                ray_node_type_name: "cpu".into(),
                status: pb::NodeStatus::Idle as i32,
                idle_duration_ms: 1234,
                total_resources: [("CPU".to_string(), 2.0)].into(),
                ..Default::default()
            }],
            pending_resource_requests: vec![pb::ResourceRequestByCount {
                request: Some(req(4.0, false)),
                count: 3,
            }],
            pending_gang_resource_requests: vec![pb::GangResourceRequest {
                requests: vec![req(1.0, true), req(1.0, true)],
                details: "pg".into(),
            }],
            cluster_resource_constraints: vec![pb::ClusterResourceConstraint {
                resource_requests: vec![pb::ResourceRequestByCount {
                    request: Some(req(1.0, false)),
                    count: 2,
                }],
            }],
            ..Default::default()
        };
        let c = convert_state(s);
        assert_eq!(c.version, 7);
        assert_eq!(c.nodes[0].node_id, "abcd");
        assert_eq!(c.nodes[0].status, NodeStatus::Idle);
        assert_eq!(c.nodes[0].idle_ms, 1234);
        assert_eq!(c.pending, vec![(bundle([("CPU", 4.0)]), 3)]);
        assert!(c.gangs[0].strict_spread);
        assert_eq!(c.gangs[0].bundles.len(), 2);
        assert_eq!(c.constraints, vec![bundle([("CPU", 1.0)]); 2]);
    }
}
