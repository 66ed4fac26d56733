//! The part of a Pod the operator reads, which is all its pod cache holds.
//!
//! A `k8s_openapi` Pod is 2.4 KiB before any of its strings: its spec and
//! status are inline structs of a hundred fields. Watched as this type, a
//! pod's JSON is read into its metadata, phase and Ready condition alone,
//! and the rest is never allocated.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A pod as the operator caches it (the API's `v1` `Pod`, most fields left out).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedPod {
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CachedPodStatus>,
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
            "metadata": {"name": "p", "namespace": "ns", "labels": {"ray-node-type": "head"}},
            "spec": {"containers": [{"name": "ray", "image": "rayproject/ray"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "conditions": [{"type": "PodScheduled", "status": "True"},
                                      {"type": "Ready", "status": "True", "lastTransitionTime": null}]},
        }))
        .unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
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
