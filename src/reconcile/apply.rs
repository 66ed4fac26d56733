//! Apply: make the cluster's objects what the plan says, in a fixed order:
//! the head Service (server-side apply), deletions, then creations.

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};

use super::Error;
use super::build;
use super::plan::{NewPod, ObservedPod, PodState};
use super::validate::ValidatedCluster;
use crate::labels::{FIELD_MANAGER, NodeKind};

/// How many pod writes of one cluster run at once.
const WRITES_IN_FLIGHT: usize = 16;

/// Applies the head Service. Applying an unchanged object is a no-op on the
/// server (no new resourceVersion, no watch event).
pub async fn head_service(client: &kube::Client, cluster: &ValidatedCluster) -> Result<(), Error> {
    let service = build::head_service(cluster);
    let name = service.metadata.name.clone().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(client.clone(), &cluster.namespace);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&service),
    )
    .await
    .map_err(|source| Error::Apply {
        object: format!("service/{name}"),
        source,
    })?;
    Ok(())
}

/// Deletes the pods, each only if it is still the pod that was planned for
/// (uid precondition); a pod already gone counts as deleted.
pub async fn delete_pods(
    client: &kube::Client,
    namespace: &str,
    pods: &[ObservedPod],
) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    stream::iter(pods.iter().cloned())
        .map(|pod| {
            let api = api.clone();
            async move {
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
                    Err(source) => Err(Error::Apply {
                        object: format!("pod/{}", pod.name),
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
    client: &kube::Client,
    cluster: &ValidatedCluster,
    pods: &[NewPod],
) -> Vec<Result<ObservedPod, Error>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &cluster.namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    stream::iter(pods.iter().cloned())
        .map(|new| {
            let (api, params) = (api.clone(), params.clone());
            async move {
                let pod_type = match new.kind {
                    NodeKind::Head => &cluster.head,
                    NodeKind::Worker => cluster
                        .workers
                        .iter()
                        .find(|t| t.name == new.pod_type)
                        .expect("planned from this cluster"),
                };
                let pod = build::pod(cluster, pod_type, new.kind, &new.name);
                let created = api
                    .create(&params, &pod)
                    .await
                    .map_err(|source| Error::Apply {
                        object: format!("pod/{}", new.name),
                        source,
                    })?;
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
