//! Build: a validated cluster in, the objects that should exist out. Pure: no
//! client; the caller picks pod names, so the output is reproducible.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::start_script::start_script;
use super::validate::{ValidatedCluster, ValidatedPodType};
use crate::naming::{self, NodeKind};

/// The GCS port; the autoscaler and the workers reach the head on it.
pub const GCS_PORT: i32 = 6379;

/// The head Service's ports before `headServicePorts` are merged in.
const DEFAULT_HEAD_PORTS: [(&str, i32); 4] = [
    ("gcs", GCS_PORT),
    ("client", 10001),
    ("dashboard", 8265),
    ("ray-serve", 8000),
];

/// `<cluster>-<kebab podType>-<suffix>`.
pub fn pod_name(cluster: &ValidatedCluster, pod_type: &ValidatedPodType, suffix: &str) -> String {
    format!("{}-{}-{}", cluster.name, pod_type.slug, suffix)
}

/// The DNS name of the head Service, which workers use as `$RAY_HEAD_IP`.
pub fn head_address(cluster: &ValidatedCluster) -> String {
    format!(
        "{}.{}.svc",
        naming::head_service_name(&cluster.name),
        cluster.namespace
    )
}

/// The head Service `<cluster>-ray-head`: the default ports, with
/// `headServicePorts` replacing those of the same name and appending new ones.
pub fn head_service(cluster: &ValidatedCluster) -> Service {
    let mut ports: Vec<ServicePort> = DEFAULT_HEAD_PORTS
        .iter()
        .map(|(name, port)| service_port(name, *port, None))
        .collect();
    for extra in &cluster.head_service_ports {
        let port = service_port(&extra.name, extra.port, extra.target_port.clone());
        match ports
            .iter_mut()
            .find(|p| p.name.as_deref() == Some(extra.name.as_str()))
        {
            Some(existing) => *existing = port,
            None => ports.push(port),
        }
    }
    let mut service = Service {
        metadata: ObjectMeta {
            name: Some(naming::head_service_name(&cluster.name)),
            namespace: Some(cluster.namespace.clone()),
            labels: Some(naming::cluster_labels(&cluster.name)),
            owner_references: Some(vec![cluster.owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(naming::head_selector(&cluster.name)),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let hash = naming::stable_hash(
        serde_json::to_string(&service)
            .expect("a Service serializes")
            .as_bytes(),
    );
    service.metadata.annotations = Some([(naming::SPEC_HASH.to_string(), hash)].into());
    service
}

fn service_port(name: &str, port: i32, target: Option<IntOrString>) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        protocol: Some("TCP".to_string()),
        target_port: Some(target.unwrap_or(IntOrString::Int(port))),
        ..ServicePort::default()
    }
}

/// A pod of `pod_type` named `name`: the pod config, with the operator's
/// labels, the owner reference, and the first container running Ray.
pub fn pod(
    cluster: &ValidatedCluster,
    pod_type: &ValidatedPodType,
    kind: NodeKind,
    name: &str,
) -> Pod {
    let mut pod_labels = pod_type.metadata.labels.clone().unwrap_or_default();
    pod_labels.extend(naming::cluster_labels(&cluster.name));
    pod_labels.extend([
        (naming::NODE_KIND.to_string(), kind.as_str().to_string()),
        (naming::POD_TYPE.to_string(), pod_type.name.clone()),
        (
            naming::LAUNCH_CONFIG.to_string(),
            pod_type.launch_hash.clone(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            format!("ray-{}", kind.as_str()),
        ),
    ]);
    let mut spec = pod_type.spec.clone();
    // A Ray node's container is not restarted in place unless the pod config
    // asks for it: a head restarted by the kubelet would be a new, empty Ray
    // cluster that nobody counts. The operator replaces the pod instead (a
    // head's failure is then the seed's AutoscalingExceptionRecovery).
    spec.restart_policy
        .get_or_insert_with(|| "Never".to_string());
    let commands = match kind {
        NodeKind::Head => &cluster.head_commands,
        NodeKind::Worker => &cluster.worker_commands,
    };
    run_ray(
        &mut spec.containers[0],
        start_script(kind, commands),
        ray_env(cluster, pod_type, name),
    );
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(cluster.namespace.clone()),
            labels: Some(pod_labels),
            annotations: pod_type.metadata.annotations.clone(),
            owner_references: Some(vec![cluster.owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Ray runs as the container's own command (in place of whatever keep-alive
/// command the pod config has), so a restarted container restarts Ray and
/// nothing needs `pods/exec`.
fn run_ray(container: &mut Container, script: String, env: Vec<EnvVar>) {
    container.command = Some(vec!["/bin/bash".to_string(), "-lc".to_string()]);
    container.args = Some(vec![script]);
    let container_env = container.env.get_or_insert_with(Vec::new);
    for var in env {
        match container_env.iter_mut().find(|e| e.name == var.name) {
            Some(existing) => *existing = var,
            None => container_env.push(var),
        }
    }
}

/// The environment through which Ray learns who it is: the pod name and type
/// (how the autoscaler matches Ray nodes to pods), the head's address, and
/// the resources to advertise (from the pod's resources and `rayResources`;
/// Ray reads them in place of what it detects, also for user-written start
/// commands).
fn ray_env(cluster: &ValidatedCluster, pod_type: &ValidatedPodType, name: &str) -> Vec<EnvVar> {
    let mut env = BTreeMap::from([
        ("RAY_CLOUD_INSTANCE_ID", name.to_string()),
        ("RAY_NODE_TYPE_NAME", pod_type.name.clone()),
        ("RAY_HEAD_IP", head_address(cluster)),
    ]);
    if !pod_type.ray_resources.is_empty() {
        let json =
            serde_json::to_string(&pod_type.ray_resources).expect("a map of numbers serializes");
        env.insert("RAY_OVERRIDE_RESOURCES", json);
    }
    env.into_iter()
        .map(|(name, value)| EnvVar {
            name: name.to_string(),
            value: Some(value),
            value_from: None,
        })
        .collect()
}
