//! [`ClusterObject`]: a RayCluster as the watch delivers it, parsed or not.
//!
//! One object that does not fit [`RayCluster`] (an old or edited CRD lets
//! anything through) must not break the watch for every other cluster, so
//! the operator watches this wrapper: an object that does not parse keeps its
//! metadata, its status if that parses, and the path of the field that does
//! not (like kube's `DeserializeGuard`, plus the path).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer};

use super::{RayCluster, RayClusterStatus};

/// A watched RayCluster: `Ok` when it parses.
#[derive(Debug, Clone)]
pub struct ClusterObject(pub Result<RayCluster, InvalidCluster>);

/// A RayCluster object that does not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidCluster {
    pub metadata: ObjectMeta,
    /// The status the operator wrote, when it still parses.
    pub status: Option<RayClusterStatus>,
    /// The field that does not fit (`spec.podTypes`), `.` for the whole object.
    pub path: String,
    pub message: String,
}

impl InvalidCluster {
    /// What is wrong, naming the field.
    pub fn describe(&self) -> String {
        format!(
            "{}: {} (the object does not fit the RayCluster type)",
            self.path, self.message
        )
    }
}

impl<'de> Deserialize<'de> for ClusterObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(ClusterObject::from_value(value))
    }
}

impl ClusterObject {
    /// Parses an object; only an object without parseable metadata is lost
    /// (it becomes an `InvalidCluster` with empty metadata).
    pub fn from_value(value: serde_json::Value) -> Self {
        match serde_path_to_error::deserialize::<_, RayCluster>(&value) {
            Ok(cluster) => ClusterObject(Ok(cluster)),
            Err(error) => {
                let metadata = ObjectMeta::deserialize(&value["metadata"]).unwrap_or_default();
                let status = RayClusterStatus::deserialize(&value["status"]).ok();
                ClusterObject(Err(InvalidCluster {
                    metadata,
                    status,
                    path: error.path().to_string(),
                    message: error.into_inner().to_string(),
                }))
            }
        }
    }

    pub fn cluster(&self) -> Option<&RayCluster> {
        self.0.as_ref().ok()
    }
}

impl Resource for ClusterObject {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        RayCluster::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        RayCluster::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        RayCluster::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        RayCluster::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        self.0.as_ref().map_or_else(|e| &e.metadata, Resource::meta)
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0
            .as_mut()
            .map_or_else(|e| &mut e.metadata, Resource::meta_mut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_that_does_not_fit_keeps_its_metadata_and_names_the_field() {
        let object = json!({
            "apiVersion": "cluster.ray.io/v1",
            "kind": "RayCluster",
            "metadata": {"name": "bad", "namespace": "ns", "uid": "u1"},
            "spec": {"podTypes": "not a list"},
            "status": {"phase": "Running"},
        });
        let ClusterObject(Err(invalid)) = serde_json::from_value(object).unwrap() else {
            panic!("parsed");
        };
        assert_eq!(invalid.metadata.name.as_deref(), Some("bad"));
        assert_eq!(invalid.path, "spec.podTypes");
        assert!(invalid.describe().starts_with("spec.podTypes: "));
        assert_eq!(
            invalid.status.and_then(|s| s.phase),
            Some(super::super::Phase::Running)
        );
    }
}
