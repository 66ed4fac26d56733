//! Validate: the raw RayCluster spec in, a [`ValidatedCluster`] out, or an
//! error that names the field. Pure: no client, no clock.
//!
//! The API server's schema and CEL rules reject most bad specs already; this
//! stage re-checks them (a CRD may be old or edited) and checks what the
//! schema leaves open, above all the free-form pod configs.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Serialize;

use crate::api::{
    CompactJson, DEFAULT_HEAD_START_RAY_COMMANDS, DEFAULT_WORKER_START_RAY_COMMANDS, PodType,
    RayCluster, ServicePort,
};
// The chart names pods with sprig's kebabcase; the operator names them alike.
use crate::naming::{kebab_case, stable_hash};

/// Cluster names longer than this would make the head Service name
/// (`<cluster>-ray-head`) longer than a DNS label's 63 characters.
pub const MAX_CLUSTER_NAME: usize = 63 - "-ray-head".len();

/// A spec the operator cannot act on; each variant names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error(
        "metadata.name: {name:?} is longer than {MAX_CLUSTER_NAME} characters (the head Service is named <cluster>-ray-head)"
    )]
    NameTooLong { name: String },
    #[error("spec.headPodType: {0:?} is not the name of any of spec.podTypes")]
    UnknownHeadPodType(String),
    #[error("spec.podTypes[{index}].name: {name:?} is used by more than one pod type")]
    DuplicatePodType { index: usize, name: String },
    #[error("spec.podTypes[{index}].minWorkers: {min} is more than maxWorkers {max}")]
    MinAboveMax { index: usize, min: i32, max: i32 },
    #[error("spec.podTypes[{index}].{field}: must not be negative, got {value}")]
    Negative {
        index: usize,
        field: &'static str,
        value: i32,
    },
    #[error("spec.maxWorkers: {max} is less than the sum of podTypes[].minWorkers ({sum})")]
    MinSumAboveMax { sum: i64, max: i32 },
    #[error("spec.podTypes[{index}].podConfig.spec.containers[0].resources: {source}")]
    Resources {
        index: usize,
        source: crate::operator::resources::ResourceError,
    },
    #[error("spec.podTypes[{index}].podConfig.{path}: {message}")]
    PodConfig {
        index: usize,
        path: String,
        message: String,
    },
}

/// One pod type, checked and with its pod template parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPodType {
    pub name: String,
    /// The pod type's name as it appears in pod names.
    pub slug: String,
    pub min_workers: i32,
    pub max_workers: i32,
    /// What its Ray node advertises (`RAY_OVERRIDE_RESOURCES`): from the
    /// container's resources and `rayResources`.
    pub ray_resources: BTreeMap<String, f64>,
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    /// Hash of everything that makes a pod of this type what it is; pods whose
    /// `ray-launch-config` label differs are outdated.
    pub launch_hash: String,
}

/// A RayCluster the operator can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedCluster {
    pub name: String,
    pub namespace: String,
    /// The controller reference every object of the cluster carries, so
    /// Kubernetes' garbage collector removes them with the cluster.
    pub owner: OwnerReference,
    pub head: ValidatedPodType,
    pub workers: Vec<ValidatedPodType>,
    pub max_workers: Option<i32>,
    pub upscaling_speed: f64,
    pub idle_timeout_minutes: i32,
    pub head_service_ports: Vec<ServicePort>,
    pub head_commands: Vec<String>,
    pub worker_commands: Vec<String>,
    pub gcs_address: Option<String>,
    pub auth_token_secret: Option<String>,
}

/// Checks a RayCluster and parses its pod configs.
pub fn validate(cluster: &RayCluster) -> Result<ValidatedCluster, SpecError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    if name.len() > MAX_CLUSTER_NAME {
        return Err(SpecError::NameTooLong { name });
    }
    let spec = &cluster.spec;
    let mut seen = BTreeSet::new();
    for (index, pod_type) in spec.pod_types.iter().enumerate() {
        if !seen.insert(pod_type.name.as_str()) {
            return Err(SpecError::DuplicatePodType {
                index,
                name: pod_type.name.clone(),
            });
        }
        check_counts(index, pod_type)?;
    }
    if let Some(max) = spec.max_workers {
        // In i64, as the CRD's CEL rule sums: two int32 minWorkers can pass
        // i32::MAX, and an i32 sum would wrap (and let the cluster through).
        let sum: i64 = spec
            .pod_types
            .iter()
            .map(|p| i64::from(p.min_workers))
            .sum();
        if sum > i64::from(max) {
            return Err(SpecError::MinSumAboveMax { sum, max });
        }
    }
    let head_commands = or_default(
        &spec.head_start_ray_commands,
        &DEFAULT_HEAD_START_RAY_COMMANDS,
    );
    let worker_commands = or_default(
        &spec.worker_start_ray_commands,
        &DEFAULT_WORKER_START_RAY_COMMANDS,
    );

    let mut head = None;
    let mut workers = Vec::new();
    for (index, pod_type) in spec.pod_types.iter().enumerate() {
        let is_head = pod_type.name == spec.head_pod_type;
        let commands = if is_head {
            &head_commands
        } else {
            &worker_commands
        };
        let validated = validate_pod_type(index, pod_type, commands)?;
        if is_head {
            head = Some(validated);
        } else {
            workers.push(validated);
        }
    }
    let head = head.ok_or_else(|| SpecError::UnknownHeadPodType(spec.head_pod_type.clone()))?;
    let owner = OwnerReference {
        api_version: "cluster.ray.io/v1".to_string(),
        kind: "RayCluster".to_string(),
        name: name.clone(),
        uid: cluster.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    Ok(ValidatedCluster {
        owner,
        name,
        namespace: cluster.metadata.namespace.clone().unwrap_or_default(),
        head,
        workers,
        max_workers: spec.max_workers,
        upscaling_speed: spec.upscaling_speed,
        idle_timeout_minutes: spec.idle_timeout_minutes,
        head_service_ports: spec.head_service_ports.clone(),
        head_commands,
        worker_commands,
        gcs_address: spec.gcs_address.clone(),
        auth_token_secret: spec.auth_token_secret.clone(),
    })
}

fn check_counts(index: usize, pod_type: &PodType) -> Result<(), SpecError> {
    for (field, value) in [
        ("minWorkers", pod_type.min_workers),
        ("maxWorkers", pod_type.max_workers),
    ] {
        if value < 0 {
            return Err(SpecError::Negative {
                index,
                field,
                value,
            });
        }
    }
    if pod_type.min_workers > pod_type.max_workers {
        return Err(SpecError::MinAboveMax {
            index,
            min: pod_type.min_workers,
            max: pod_type.max_workers,
        });
    }
    Ok(())
}

fn or_default(commands: &[String], default: &[&str]) -> Vec<String> {
    if commands.is_empty() {
        default.iter().map(|c| c.to_string()).collect()
    } else {
        commands.to_vec()
    }
}

fn validate_pod_type(
    index: usize,
    pod_type: &PodType,
    commands: &[String],
) -> Result<ValidatedPodType, SpecError> {
    let config = &pod_type.pod_config;
    let pod_error = |path: &str, message: String| SpecError::PodConfig {
        index,
        path: path.to_string(),
        message,
    };
    let metadata: ObjectMeta = match &config.metadata {
        Some(json) => {
            parse_at(json).map_err(|(path, msg)| pod_error(&join("metadata", &path), msg))?
        }
        None => ObjectMeta::default(),
    };
    let spec: PodSpec =
        parse_at(&config.spec).map_err(|(path, msg)| pod_error(&join("spec", &path), msg))?;
    if spec.containers.is_empty() {
        return Err(pod_error(
            "spec.containers",
            "must hold at least one container (the first runs Ray)".into(),
        ));
    }
    if spec.containers[0].image.as_deref().unwrap_or("").is_empty() {
        return Err(pod_error(
            "spec.containers[0].image",
            "the Ray container needs an image".into(),
        ));
    }
    Ok(ValidatedPodType {
        name: pod_type.name.clone(),
        slug: kebab_case(&pod_type.name),
        min_workers: pod_type.min_workers,
        max_workers: pod_type.max_workers,
        ray_resources: crate::operator::resources::ray_resources(pod_type)
            .map_err(|source| SpecError::Resources { index, source })?,
        launch_hash: launch_hash(config, commands),
        metadata,
        spec,
    })
}

/// Hash of the pod config and start commands. `serde_json::Value` keeps object
/// keys sorted, so equal configs hash equal however they were written.
fn launch_hash(config: &crate::api::PodConfig, commands: &[String]) -> String {
    #[derive(Serialize)]
    struct LaunchConfig<'a> {
        pod: &'a crate::api::PodConfig,
        commands: &'a [String],
    }
    let canonical = serde_json::to_value(LaunchConfig {
        pod: config,
        commands,
    })
    .expect("serializable");
    stable_hash(canonical.to_string().as_bytes())[..10].to_string()
}

/// Parses JSON into `T` (straight from the text: no tree of it is built), on
/// failure giving the path within it and why.
fn parse_at<T: serde::de::DeserializeOwned>(json: &CompactJson) -> Result<T, (String, String)> {
    let mut text = serde_json::Deserializer::from_str(json.as_str());
    serde_path_to_error::deserialize(&mut text).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // The position in the operator's own copy of the text means nothing
        // to the user; the path says where.
        let position = format!(" at line {} column {}", inner.line(), inner.column());
        let message = inner.to_string();
        let message = message.strip_suffix(&position).unwrap_or(&message);
        (path, message.to_string())
    })
}

fn join(prefix: &str, path: &str) -> String {
    if path == "." || path.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{path}")
    }
}
