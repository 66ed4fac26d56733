//! Apply: make the cluster's objects what the plan says, in a fixed order:
//! the head Service (server-side apply), deletions, then creations.

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};

use super::Error;
use super::build;
use super::plan::{NewPod, ObservedPod, PodState};
use super::validate::ValidatedCluster;
use crate::naming::{self, FIELD_MANAGER, NodeKind};
use crate::operator::cache::Caches;
use crate::operator::writer::Writer;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

/// How many pod writes of one cluster run at once (all clusters together are
/// bounded by the [`Writer`]).
const WRITES_IN_FLIGHT: usize = 8;

/// Applies the head Service unless the cached one carries the same spec hash
/// (so a settled cluster's reconcile makes no write at all).
pub async fn head_service(
    writer: &Writer,
    caches: &Caches,
    cluster: &ValidatedCluster,
) -> Result<(), Error> {
    let service = build::head_service(cluster);
    let name = service.metadata.name.clone().unwrap_or_default();
    let wanted = service.annotations().get(naming::SPEC_HASH);
    let cached = caches
        .services
        .get(&ObjectRef::new(&name).within(&cluster.namespace));
    if cached.is_some_and(|c| c.annotations().get(naming::SPEC_HASH) == wanted) {
        return Ok(());
    }
    let api: Api<Service> = Api::namespaced(writer.client(), &cluster.namespace);
    let _permit = writer.permit().await;
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&service),
    )
    .await
    .map_err(|source| Error::Service {
        name: name.clone(),
        source,
    })?;
    Ok(())
}

/// Deletes the pods, each only if it is still the pod that was planned for
/// (uid precondition); a pod already gone counts as deleted.
pub async fn delete_pods(
    writer: &Writer,
    namespace: &str,
    pods: &[ObservedPod],
) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(writer.client(), namespace);
    stream::iter(pods.iter().cloned())
        .map(|pod| {
            let api = api.clone();
            async move {
                let _permit = writer.permit().await;
                let params = DeleteParams {
                    preconditions: pod.uid.clone().map(|uid| Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::background()
                };
                match api.delete(&pod.name, &params).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
                    Err(source) => Err(Error::DeletePod {
                        name: pod.name.clone(),
                        source,
                    }),
                }
            }
        })
        .buffer_unordered(WRITES_IN_FLIGHT)
        .try_collect()
        .await
}

/// Creates the pods. Pods are immutable and get fresh names, so they are
/// created (POST), which fails loudly on a name clash instead of merging
/// into another pod. Returns, per pod, how it will look to the next plan or
/// why it could not be created.
pub async fn create_pods(
    writer: &Writer,
    cluster: &ValidatedCluster,
    pods: &[NewPod],
) -> Vec<Result<ObservedPod, Error>> {
    let api: Api<Pod> = Api::namespaced(writer.client(), &cluster.namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    stream::iter(pods.iter().cloned())
        .map(|new| {
            let (api, params) = (api.clone(), params.clone());
            async move {
                let _permit = writer.permit().await;
                let pod_type = match new.kind {
                    NodeKind::Head => &cluster.head,
                    NodeKind::Worker => cluster
                        .workers
                        .iter()
                        .find(|t| t.name == new.pod_type)
                        .expect("planned from this cluster"),
                };
                let pod = build::pod(cluster, pod_type, new.kind, &new.name);
                let created = match api.create(&params, &pod).await {
                    Ok(created) => created,
                    Err(source) => {
                        let fields = serde_json::to_value(&pod)
                            .map(|p| super::error::bad_quantities(&p))
                            .unwrap_or_default();
                        return Err(Error::CreatePod {
                            name: new.name.clone(),
                            pod_type: new.pod_type.clone(),
                            fields,
                            source,
                        });
                    }
                };
                Ok(ObservedPod {
                    name: new.name,
                    uid: created.metadata.uid,
                    kind: new.kind,
                    pod_type: new.pod_type,
                    launch_hash: pod_type.launch_hash.clone(),
                    state: PodState::Pending,
                    ready: false,
                    created: created
                        .metadata
                        .creation_timestamp
                        .map_or(0, |t| t.0.as_second()),
                    terminating: false,
                })
            }
        })
        .buffer_unordered(WRITES_IN_FLIGHT)
        .collect()
        .await
}
