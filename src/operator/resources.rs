//! Resource bundles and what one node of a pod type offers to Ray.
//!
//! A bundle is `{"CPU": 4, "GPU": 1, "memory": 2e9, ...}`, as Ray writes it.
//! A pod type's node resources follow the legacy operator, and the pods are
//! told the same numbers (`RAY_OVERRIDE_RESOURCES`), so what the planner
//! expects of a new node is what Ray advertises:
//! - `CPU`: the first container's CPU limit (else its request) rounded up, so
//!   a `500m` pod still gives Ray one whole CPU to schedule a task on;
//! - `GPU`: any limit whose key contains `gpu` (e.g. `nvidia.com/gpu`);
//! - `memory`: 70% of the memory limit (else request), `object_store_memory`
//!   the other 30%. Given explicitly because Ray otherwise sizes its object
//!   store from the memory free when it starts, which a head that already holds
//!   its dashboard can put under Ray's 75 MiB minimum, and `ray start` fails;
//! - then each `rayResources` entry overrides (zeros included: `{CPU: 0}` is a
//!   head that runs no tasks).

use std::collections::BTreeMap;

use crate::api::{PodType, quantity};

/// Resources by name, as Ray reports and requests them.
pub type ResourceBundle = BTreeMap<String, f64>;

/// Share of the memory limit Ray advertises as `memory` (the rest is object store).
pub const RAY_MEMORY_FRACTION: f64 = 0.7;

/// Slack for float comparisons of resource amounts (Ray uses 1e-4 granularity).
const EPS: f64 = 1e-6;

/// A pod type's container resources could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ResourceError {
    #[error("podType {pod_type}: invalid quantity {value:?} for {resource}")]
    Quantity {
        pod_type: String,
        resource: String,
        value: String,
    },
    #[error("podType {pod_type}: more than one container limit matches {resource:?}: {keys:?}")]
    Ambiguous {
        pod_type: String,
        resource: String,
        keys: Vec<String>,
    },
}

/// What one Ray node of this pod type offers, for planning: [`ray_resources`]
/// without the zero amounts.
pub fn node_resources(pod_type: &PodType) -> Result<ResourceBundle, ResourceError> {
    let mut out = ray_resources(pod_type)?;
    out.remove("object_store_memory");
    out.retain(|_, v| *v > 0.0);
    Ok(out)
}

/// What a Ray node of this pod type is told to advertise (the pods'
/// `RAY_OVERRIDE_RESOURCES`): detected from the first container's resources,
/// overridden by `rayResources`, zeros kept.
pub fn ray_resources(pod_type: &PodType) -> Result<ResourceBundle, ResourceError> {
    let spec = pod_type.pod_config.spec.value();
    let resources = &spec["containers"][0]["resources"];
    let mut out = ResourceBundle::new();
    for (ray_name, needle) in [("CPU", "cpu"), ("GPU", "gpu"), ("memory", "memory")] {
        // GPUs are extended resources: Kubernetes requires limits for them.
        let sections: &[&str] = if ray_name == "GPU" {
            &["limits"]
        } else {
            &["limits", "requests"]
        };
        let Some(amount) = sections
            .iter()
            .map(|section| quantity(pod_type, &resources[*section], needle))
            .find_map(Result::transpose)
            .transpose()?
        else {
            continue;
        };
        if ray_name == "memory" {
            out.insert("memory".into(), (amount * RAY_MEMORY_FRACTION).floor());
            out.insert(
                "object_store_memory".into(),
                (amount * (1.0 - RAY_MEMORY_FRACTION)).floor(),
            );
        } else {
            out.insert(ray_name.to_string(), amount.ceil());
        }
    }
    for (name, value) in &pod_type.ray_resources {
        out.insert(name.clone(), *value);
    }
    Ok(out)
}

/// The amount of the one key of `section` (limits or requests) containing `needle`.
fn quantity(
    pod_type: &PodType,
    section: &serde_json::Value,
    needle: &str,
) -> Result<Option<f64>, ResourceError> {
    let Some(section) = section.as_object() else {
        return Ok(None);
    };
    let keys: Vec<&String> = section
        .keys()
        .filter(|k| k.to_lowercase().contains(needle))
        .collect();
    let key = match keys.as_slice() {
        [] => return Ok(None),
        [key] => *key,
        _ => {
            return Err(ResourceError::Ambiguous {
                pod_type: pod_type.name.clone(),
                resource: needle.into(),
                keys: keys.into_iter().cloned().collect(),
            });
        }
    };
    let raw = quantity_string(&section[key]);
    quantity::parse(&raw)
        .map(Some)
        .ok_or_else(|| ResourceError::Quantity {
            pod_type: pod_type.name.clone(),
            resource: key.clone(),
            value: raw,
        })
}

fn quantity_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `request` fits into `available` (missing resources count as zero).
pub fn fits(available: &ResourceBundle, request: &ResourceBundle) -> bool {
    request
        .iter()
        .all(|(k, v)| *v <= EPS || available.get(k).copied().unwrap_or(0.0) + EPS >= *v)
}

/// Takes `request` out of `available` (call only after [`fits`]).
pub fn subtract(available: &mut ResourceBundle, request: &ResourceBundle) {
    for (k, v) in request {
        if let Some(a) = available.get_mut(k) {
            *a = (*a - v).max(0.0);
        }
    }
}

/// `{CPU: 4, GPU: 1}`: a short, stable rendering for status and logs.
pub fn format_bundle(bundle: &ResourceBundle) -> String {
    let parts: Vec<String> = bundle.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Builds a bundle from literal pairs (handy in tests and callers).
pub fn bundle<const N: usize>(pairs: [(&str, f64); N]) -> ResourceBundle {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PodConfig;
    use serde_json::json;

    fn pod_type(limits: serde_json::Value, ray: &[(&str, f64)]) -> PodType {
        with_resources(json!({ "limits": limits }), ray)
    }

    fn with_resources(resources: serde_json::Value, ray: &[(&str, f64)]) -> PodType {
        PodType {
            name: "w".into(),
            min_workers: 0,
            max_workers: 1,
            ray_resources: ray.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            pod_config: PodConfig {
                spec: json!({"containers": [{"name": "ray", "resources": resources}]}).into(),
                ..Default::default()
            },
            setup_commands: vec![],
            worker_setup_commands: vec![],
        }
    }

    #[test]
    fn node_resources_from_limits() {
        let t = pod_type(
            json!({"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": 2}),
            &[],
        );
        let want = bundle([
            ("CPU", 1.0),
            ("GPU", 2.0),
            ("memory", (1073741824.0f64 * 0.7).floor()),
        ]);
        assert_eq!(node_resources(&t).unwrap(), want);
        let t = pod_type(json!({"cpu": 4}), &[]);
        assert_eq!(node_resources(&t).unwrap(), bundle([("CPU", 4.0)]));
    }

    #[test]
    fn ray_resources_override_and_zero_dropped() {
        let t = pod_type(
            json!({"cpu": "2", "memory": "1Gi"}),
            &[("CPU", 0.0), ("custom", 3.0)],
        );
        let r = node_resources(&t).unwrap();
        assert_eq!(r.get("CPU"), None);
        assert_eq!(r.get("custom"), Some(&3.0));
        assert!(r.contains_key("memory"));
    }

    #[test]
    fn ray_is_told_whole_cpus_memory_and_object_store_with_zeros_kept() {
        let gib = 1073741824.0f64;
        // A fractional CPU limit still gives Ray one CPU to run a task on.
        let t = pod_type(json!({"cpu": "500m", "memory": "2Gi"}), &[]);
        let want = bundle([
            ("CPU", 1.0),
            ("memory", (2.0 * gib * 0.7).floor()),
            ("object_store_memory", (2.0 * gib * 0.3).floor()),
        ]);
        assert_eq!(ray_resources(&t).unwrap(), want);
        // Requests count when there is no limit (not for GPUs: those need limits).
        let t = with_resources(
            json!({"requests": {"cpu": "1500m", "memory": "1Gi", "nvidia.com/gpu": 1}}),
            &[],
        );
        let r = ray_resources(&t).unwrap();
        assert_eq!((r["CPU"], r.get("GPU")), (2.0, None));
        assert_eq!(r["memory"], (gib * 0.7).floor());
        // A limit wins over a request.
        let t = with_resources(
            json!({"requests": {"cpu": "1"}, "limits": {"cpu": "3"}}),
            &[],
        );
        assert_eq!(ray_resources(&t).unwrap()["CPU"], 3.0);
        // rayResources override, and a zero is passed on so Ray does not detect one.
        let t = pod_type(json!({"cpu": "2"}), &[("CPU", 0.0), ("custom", 3.0)]);
        assert_eq!(
            ray_resources(&t).unwrap(),
            bundle([("CPU", 0.0), ("custom", 3.0)])
        );
        // Nothing set: Ray detects for itself.
        assert!(
            ray_resources(&with_resources(json!({}), &[]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_limits_are_errors() {
        let t = pod_type(json!({"cpu": "lots"}), &[]);
        assert!(matches!(
            node_resources(&t),
            Err(ResourceError::Quantity { .. })
        ));
        let t = pod_type(json!({"nvidia.com/gpu": 1, "amd.com/gpu": 1}), &[]);
        assert!(matches!(
            node_resources(&t),
            Err(ResourceError::Ambiguous { .. })
        ));
    }

    #[test]
    fn fit_and_subtract() {
        let mut a = bundle([("CPU", 2.0), ("GPU", 1.0)]);
        assert!(fits(&a, &bundle([("CPU", 2.0)])));
        assert!(!fits(&a, &bundle([("CPU", 3.0)])));
        assert!(!fits(&a, &bundle([("TPU", 1.0)])));
        assert!(fits(&a, &bundle([("TPU", 0.0)])));
        subtract(&mut a, &bundle([("CPU", 1.5)]));
        assert_eq!(a["CPU"], 0.5);
        assert_eq!(format_bundle(&a), "{CPU: 0.5, GPU: 1}");
    }
}
