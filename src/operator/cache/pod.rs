//! A pod as the operator watches it ([`CachedPod`]: the part of a Pod it
//! reads) and as its plans see it ([`ObservedPod`], what the pod cache keeps).
//!
//! A `k8s_openapi` Pod is 2.4 KiB before any of its strings: its spec and
//! status are inline structs of a hundred fields. Watched as `CachedPod`, a
//! pod's JSON is read into its metadata, phase and Ready condition alone,
//! and the rest is never allocated.

use std::borrow::Cow;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Deserializer, Serialize};

use crate::naming::{self, NodeKind};

/// A pod as the operator watches it (the API's `v1` `Pod`, most fields left out).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedPod {
    #[serde(deserialize_with = "read_metadata")]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CachedPodStatus>,
}

/// The part of a pod's metadata the operator reads (the watch needs the
/// resource version, the controller the owner). The rest, managed fields and
/// annotations above all, is skipped as it is read, never allocated; of the
/// labels, only the operator's own (`ray-*`) are kept.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WatchedMetadata {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    owner_references: Option<Vec<OwnerReference>>,
}

fn read_metadata<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    let meta = WatchedMetadata::deserialize(deserializer)?;
    Ok(ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        labels: meta.labels.map(|mut labels| {
            labels.retain(|key, _| key.starts_with("ray-"));
            labels
        }),
        creation_timestamp: meta.creation_timestamp,
        deletion_timestamp: meta.deletion_timestamp,
        owner_references: meta.owner_references,
        ..ObjectMeta::default()
    })
}

/// A pod's phase and conditions.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedPodStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<CachedPodCondition>,
}

/// A pod condition's type (`Ready`, ...) and status (`True`, `False`, `Unknown`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedPodCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
}

impl CachedPod {
    /// Whether the pod's Ready condition is `True`.
    pub fn ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    }
}

/// Where a pod is in its life, as far as the plan cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// Not yet running (unscheduled, pulling, or created a moment ago).
    Pending,
    Running,
    /// Its containers exited (`Succeeded` or `Failed`): Ray is gone from it.
    Finished,
}

/// What the operator knows of one pod of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedPod {
    pub name: String,
    pub uid: Option<String>,
    pub kind: NodeKind,
    pub pod_type: String,
    pub launch_hash: String,
    pub state: PodState,
    pub ready: bool,
    /// Creation time in seconds since the epoch; newer pods go first on scale-down.
    pub created: i64,
    pub terminating: bool,
}

impl ObservedPod {
    /// Reads a pod's labels and status; `None` for a pod the operator did not make.
    pub fn from_pod(pod: &CachedPod) -> Option<Self> {
        let labels = pod.metadata.labels.as_ref()?;
        let kind = match labels.get(naming::NODE_KIND)?.as_str() {
            "head" => NodeKind::Head,
            "worker" => NodeKind::Worker,
            _ => return None,
        };
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        let state = match phase {
            "Running" => PodState::Running,
            "Succeeded" | "Failed" => PodState::Finished,
            _ => PodState::Pending,
        };
        let ready = pod.ready();
        Some(ObservedPod {
            name: pod.metadata.name.clone()?,
            uid: pod.metadata.uid.clone(),
            kind,
            pod_type: labels.get(naming::POD_TYPE).cloned().unwrap_or_default(),
            launch_hash: labels
                .get(naming::LAUNCH_CONFIG)
                .cloned()
                .unwrap_or_default(),
            state,
            ready: state == PodState::Running && ready,
            created: pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(0, |t| t.0.as_second()),
            terminating: pod.metadata.deletion_timestamp.is_some(),
        })
    }
}

impl kube::Resource for CachedPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn reads_a_pod_leaving_out_its_spec() {
        let pod: CachedPod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "7",
                         "labels": {"ray-node-type": "head", "app": "x"},
                         "annotations": {"a": "b"}, "generateName": "p-", "finalizers": ["f"],
                         "ownerReferences": [{"apiVersion": "cluster.ray.io/v1", "kind": "RayCluster",
                                              "name": "c", "uid": "u", "controller": true}],
                         "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"containers": [{"name": "ray", "image": "rayproject/ray"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "conditions": [{"type": "PodScheduled", "status": "True"},
                                      {"type": "Ready", "status": "True", "lastTransitionTime": null}]},
        }))
        .unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
        assert_eq!(pod.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(
            pod.metadata.labels,
            Some([("ray-node-type".to_string(), "head".to_string())].into()),
            "only the operator's labels"
        );
        assert_eq!(pod.metadata.owner_references.as_ref().unwrap()[0].name, "c");
        let left_out = &pod.metadata;
        assert!(left_out.annotations.is_none() && left_out.managed_fields.is_none());
        assert!(left_out.generate_name.is_none() && left_out.finalizers.is_none());
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
        assert!(pod.ready());
        assert_eq!(
            CachedPod::url_path(&(), Some("ns")),
            "/api/v1/namespaces/ns/pods"
        );
        assert!(std::mem::size_of::<CachedPod>() < 600);
    }
}
