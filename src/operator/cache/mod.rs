//! What the operator keeps of the objects it watches: every RayCluster, each
//! pod's facts that plans read, by cluster ([`pods`]), and the head Services'
//! metadata.

pub mod pod;
pub mod pods;

use k8s_openapi::api::core::v1::Service;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::{Resource, ResourceExt};

use crate::api::ClusterObject;
use pods::PodStore;

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

/// Keeps from a watched RayCluster what the operator reads: never its
/// managed fields, annotations or labels (`kubectl apply` would keep a
/// second copy of the spec in an annotation).
pub fn strip_cluster(cluster: &mut ClusterObject) {
    let meta = cluster.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
    meta.labels = None;
}

/// A term's caches, read by reconciles and autoscaler rounds.
pub struct Caches {
    /// Every RayCluster object, parsed or not (see [`ClusterObject`]).
    pub clusters: Store<ClusterObject>,
    /// Every cluster's pods (kept by the pod watch, through [`PodStore::observe`]).
    pub pods: PodStore,
    /// Head Services (metadata only): a Service whose spec hash matches is not re-applied.
    pub services: Store<PartialObjectMeta<Service>>,
}

/// The writing halves of the caches, which the term's watches fill.
pub struct CacheWriters {
    pub clusters: reflector::store::Writer<ClusterObject>,
    pub services: reflector::store::Writer<PartialObjectMeta<Service>>,
}

impl Caches {
    /// Empty caches and their writers.
    pub fn new() -> (Caches, CacheWriters) {
        let (clusters, cluster_writer) = reflector::store();
        let (services, service_writer) = reflector::store();
        let caches = Caches {
            clusters,
            pods: PodStore::default(),
            services,
        };
        let writers = CacheWriters {
            clusters: cluster_writer,
            services: service_writer,
        };
        (caches, writers)
    }
}
