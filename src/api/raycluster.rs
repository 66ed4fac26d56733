//! The `RayCluster` custom resource (`rayclusters.cluster.ray.io/v1`).
//!
//! Doc comments on these types become the descriptions in the generated CRD, so
//! `kubectl explain raycluster.spec.podTypes` reads them. Field names and
//! shapes follow the legacy Ray operator's CRD, so its resources are accepted
//! unchanged; what is new (`conditions`, per-podType counts, ...) is additive.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CompactJson, pod_type_name, schema};

/// The head start commands when `headStartRayCommands` is empty: the last
/// one blocks, so it is the container's life.
pub const DEFAULT_HEAD_START_RAY_COMMANDS: [&str; 2] = [
    "ray stop",
    "ulimit -n 65536; ray start --head --port=6379 --no-monitor --dashboard-host 0.0.0.0 --block",
];

/// The worker start commands when `workerStartRayCommands` is empty;
/// `$RAY_HEAD_IP` is the head Service's DNS name.
pub const DEFAULT_WORKER_START_RAY_COMMANDS: [&str; 2] = [
    "ray stop",
    "ulimit -n 65536; ray start --address=$RAY_HEAD_IP:6379 --block",
];

/// Desired state of a Ray cluster: a head node and workers of several pod types.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cluster.ray.io",
    version = "v1",
    kind = "RayCluster",
    plural = "rayclusters",
    singular = "raycluster",
    namespaced,
    doc = "A Ray cluster: a head node and autoscaled workers of several pod types, run by ray-operator.",
    status = "RayClusterStatus",
    printcolumn = r#"{"name":"Status","type":"string","description":"The RayCluster's status.phase","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Restarts","type":"integer","description":"Restarts after autoscaling errors (status.autoscalerRetries)","jsonPath":".status.autoscalerRetries"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","description":"Worker pods the operator wants","jsonPath":".status.desiredWorkers"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","description":"Worker pods that are ready","jsonPath":".status.readyWorkers"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.podTypes.exists(p, p.name == self.headPodType)",
        "message": "headPodType must be the name of one of spec.podTypes",
        "fieldPath": ".headPodType",
        "reason": "FieldValueInvalid"
    },
    {
        "rule": "!has(self.maxWorkers) || self.podTypes.map(p, p.minWorkers).sum() <= self.maxWorkers",
        "message": "the sum of podTypes[].minWorkers must be <= maxWorkers",
        "fieldPath": ".maxWorkers",
        "reason": "FieldValueInvalid"
    }
]))]
pub struct RayClusterSpec {
    /// The most worker nodes the cluster may run in total, over all pod types
    /// (the head is not counted). Unset means only the per-type maxWorkers apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_workers: Option<i32>,

    /// How fast the autoscaler scales up: each round it may launch up to
    /// max(5, upscalingSpeed x running workers) workers of a pod type.
    #[serde(default = "default_upscaling_speed")]
    #[schemars(extend("minimum" = 0, "exclusiveMinimum" = true))]
    pub upscaling_speed: f64,

    /// Workers whose Ray node has been idle this many minutes are removed
    /// (never below the pod type's minWorkers).
    #[serde(default = "default_idle_timeout_minutes")]
    #[schemars(range(min = 0))]
    pub idle_timeout_minutes: i32,

    /// Name of the pod type (in podTypes) that runs the Ray head node.
    pub head_pod_type: String,

    /// The pod types available as nodes of this cluster: the head's, and those of the workers.
    #[schemars(length(min = 1, max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub pod_types: Vec<PodType>,

    /// Extra ports of the head Service `<cluster>-ray-head`. An entry whose name is
    /// one of the defaults (client 10001, dashboard 8265, ray-serve 8000, gcs 6379)
    /// replaces that port; other names are appended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub head_service_ports: Vec<ServicePort>,

    /// Shell commands that start Ray on the head, run in order as the head
    /// container's command; the last must keep running (`ray start --block`).
    /// Empty means the operator's default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub head_start_ray_commands: Vec<String>,

    /// Shell commands that start Ray on a worker, run in order as the worker
    /// container's command. `$RAY_HEAD_IP` is the head Service's address.
    /// Empty means the operator's default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_start_ray_commands: Vec<String>,

    /// Where the operator's autoscaler reaches this cluster's GCS, as `host:port`.
    /// Unset means the head Service on port 6379. Meant for tests and for heads
    /// reached through a proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs_address: Option<String>,

    /// Name of a Secret in the cluster's namespace whose key `auth_token` holds
    /// the Ray token, for clusters that run Ray with `RAY_AUTH_MODE=token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token_secret: Option<String>,
}

/// One kind of Ray node: its pod template and how many of it may run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.minWorkers <= self.maxWorkers",
        "message": "minWorkers must be <= maxWorkers",
        "fieldPath": ".minWorkers",
        "reason": "FieldValueInvalid"
    }
]))]
pub struct PodType {
    /// Name of the pod type, unique within the cluster; part of its pods' names.
    #[schemars(
        length(min = 1, max = pod_type_name::MAX_LEN),
        regex(pattern = pod_type_name::PATTERN)
    )]
    pub name: String,

    /// The fewest workers of this type the cluster keeps.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub min_workers: i32,

    /// The most workers of this type the cluster may run.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_workers: i32,

    /// Resources the node advertises to Ray (e.g. `{"CPU": 0}` on the head to keep
    /// tasks off it, or custom resources). Each overrides what is detected from
    /// the pod's limits.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("additionalProperties" = {"type": "number", "minimum": 0}))]
    pub ray_resources: BTreeMap<String, f64>,

    /// The Pod to run for nodes of this type. Its first container runs Ray.
    pub pod_config: PodConfig,

    /// Accepted for compatibility with the legacy operator; not used (Ray runs as
    /// the container's own command, nothing is executed in a running pod).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup_commands: Vec<String>,

    /// Accepted for compatibility with the legacy operator; not used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_setup_commands: Vec<String>,
}

/// A Pod object (apiVersion, kind, metadata, spec). Only its outline is in the
/// CRD's schema, to keep the CRD small enough for client-side `kubectl apply`;
/// the operator checks the pod spec itself and reports problems in the status.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodConfig {
    /// `v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `Pod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Labels and annotations for the pods; `name` and `generateName` are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::preserved_object")]
    pub metadata: Option<CompactJson>,
    /// A Kubernetes PodSpec; the first container runs Ray.
    #[schemars(schema_with = "schema::pod_spec_outline")]
    pub spec: CompactJson,
}

/// A port of the head Service.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name; a default port of the same name is replaced.
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
    /// Port the Service exposes.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Port (number or name) on the head pod; defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
}

/// Observed state of a Ray cluster, written by the operator.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RayClusterStatus {
    /// Empty until the operator registers the cluster; then `Updating`, `Running`,
    /// `AutoscalingExceptionRecovery` or `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// How many times the cluster restarted because of an autoscaling error
    /// (the head went down).
    #[serde(default)]
    pub autoscaler_retries: i64,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Worker pods wanted, over all pod types.
    #[serde(default)]
    pub desired_workers: i32,
    /// Worker pods running and ready, over all pod types.
    #[serde(default)]
    pub ready_workers: i32,
    /// Per worker pod type: wanted and ready worker pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub pod_types: Vec<PodTypeStatus>,
    /// The pod-config hash of the head the cluster runs now; a change to the
    /// head pod type's config restarts the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_launch_config: Option<String>,
    /// What the autoscaler last saw and did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<AutoscalerStatus>,
    /// `HeadReady`, `WorkersReady`, `Valid`, `AutoscalerHealthy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl RayClusterStatus {
    /// The time now as a status keeps it: in whole seconds, as the API
    /// server stores a `metav1.Time` (and k8s-openapi writes one). A status
    /// holding a finer time never reads back equal to what was written.
    pub fn now() -> Timestamp {
        let now = Timestamp::now();
        Timestamp::from_second(now.as_second()).unwrap_or(now)
    }
}

/// Empty until the operator registers the cluster; then `Updating` (launching or
/// applying a change), `Running` (head and minimum workers up, autoscaling
/// healthy), `AutoscalingExceptionRecovery` (the head went down; Ray restarts)
/// or `Error` (the spec cannot be acted on; see the `Valid` condition).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// The operator is launching the cluster or applying a change to it.
    Updating,
    /// The cluster's head and minimum workers run and autoscaling is healthy.
    Running,
    /// The head went down (autoscaling failed); Ray is being restarted.
    AutoscalingExceptionRecovery,
    /// The operator cannot act on the spec; see the `Valid` condition.
    Error,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Updating => "Updating",
            Phase::Running => "Running",
            Phase::AutoscalingExceptionRecovery => "AutoscalingExceptionRecovery",
            Phase::Error => "Error",
        }
    }
}

/// Wanted and ready workers of one pod type.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTypeStatus {
    /// The pod type.
    pub name: String,
    /// Worker pods wanted now (between minWorkers and maxWorkers).
    pub desired_workers: i32,
    /// Worker pods running and ready.
    pub ready_workers: i32,
}

/// The autoscaler's view of the cluster.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    /// Resource requests waiting for a node, as `count x {resources}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_demand: Vec<String>,
    /// Requests no pod type can ever fit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub infeasible_demand: Vec<String>,
    /// The last scaling decision, e.g. `launch 2 x rayWorkerType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<String>,
    /// When the last decision was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision_time: Option<String>,
}

fn default_upscaling_speed() -> f64 {
    1.0
}

fn default_idle_timeout_minutes() -> i32 {
    5
}
