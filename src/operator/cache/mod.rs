//! What the operator keeps of the objects it watches: every RayCluster, each
//! pod stripped to what reconciles read ([`pod`]), the pods' names by
//! cluster ([`index`]) and the head Services' metadata.

pub mod index;
pub mod pod;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::api::ClusterObject;
use index::PodIndex;
use pod::CachedPod;

/// The key of a cluster in the operator's own maps: its UID, so a cluster
/// re-created under the same name starts afresh (`namespace/name` only for
/// an object without one, which the API server never serves).
pub fn cluster_key(cluster: &impl Resource) -> String {
    cluster.uid().unwrap_or_else(|| {
        format!(
            "{}/{}",
            cluster.namespace().unwrap_or_default(),
            cluster.name_any()
        )
    })
}

/// A term's caches, read by reconciles and autoscaler rounds.
pub struct Caches {
    /// Every RayCluster object, parsed or not (see [`ClusterObject`]).
    pub clusters: Store<ClusterObject>,
    pub pods: Store<CachedPod>,
    /// The cached pods' names by cluster (kept by the pod watch).
    pub pod_index: PodIndex,
    /// Head Services (metadata only): a Service whose spec hash matches is not re-applied.
    pub services: Store<PartialObjectMeta<Service>>,
}

/// The writing halves of the caches, which the term's watches fill.
pub struct CacheWriters {
    pub clusters: reflector::store::Writer<ClusterObject>,
    pub pods: reflector::store::Writer<CachedPod>,
    pub services: reflector::store::Writer<PartialObjectMeta<Service>>,
}

impl Caches {
    /// Empty caches and their writers.
    pub fn new() -> (Caches, CacheWriters) {
        let (clusters, cluster_writer) = reflector::store();
        let (pods, pod_writer) = reflector::store();
        let (services, service_writer) = reflector::store();
        let caches = Caches {
            clusters,
            pods,
            pod_index: PodIndex::default(),
            services,
        };
        let writers = CacheWriters {
            clusters: cluster_writer,
            pods: pod_writer,
            services: service_writer,
        };
        (caches, writers)
    }

    /// The cached pods of one cluster, through the index: no scan of the
    /// pods of every other cluster.
    pub fn cluster_pods(&self, namespace: &str, name: &str) -> Vec<Arc<CachedPod>> {
        self.pod_index
            .names(namespace, name)
            .iter()
            .filter_map(|pod| self.pods.get(&ObjectRef::new(pod).within(namespace)))
            .collect()
    }
}
