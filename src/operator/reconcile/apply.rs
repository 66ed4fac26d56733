//! Apply: make the cluster's objects what the plan says, in a fixed order:
//! the head Service (server-side apply), deletions, then creations. What
//! was applied comes back as an [`Applied`], the only thing a status can be
//! computed from.

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};

use super::Error;
use super::build;
use super::plan::{NewPod, ObservedPod, PodPlan, PodState};
use super::validate::ValidatedCluster;
use crate::api::RayClusterStatus;
use crate::naming::{self, FIELD_MANAGER};
use crate::operator::cache::Caches;
use crate::operator::writer::{Write, Writer};
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
    let _permit = writer.permit(Write::Service).await;
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

/// What was applied of a plan.
pub struct Applied<'c> {
    /// The plan, with the pods that could not be created withdrawn.
    pub plan: PodPlan<'c>,
    /// The pods created, as the next plan will see them.
    pub created: Vec<ObservedPod>,
    /// Why the first pod that could not be created was refused.
    first_error: Option<Error>,
}

impl Applied<'_> {
    /// The first creation that failed, if one did (once).
    pub fn take_error(&mut self) -> Option<Error> {
        self.first_error.take()
    }

    /// An `Applied` of a plan carried out in full (for tests of `status`).
    #[cfg(test)]
    pub fn in_full(plan: PodPlan<'_>) -> Applied<'_> {
        Applied {
            plan,
            created: Vec::new(),
            first_error: None,
        }
    }
}

/// Carries out the plan's pod changes: its deletions, then its creations. A
/// failed deletion fails the whole (it is retried); a failed creation is
/// withdrawn from the plan and reported in the result.
pub async fn pods<'c>(
    writer: &Writer,
    cluster: &ValidatedCluster,
    mut plan: PodPlan<'c>,
    previous: &RayClusterStatus,
) -> Result<Applied<'c>, Error> {
    delete_pods(writer, &cluster.namespace, &plan.delete).await?;
    let mut first_error = None;
    let mut created = Vec::new();
    let mut failed = Vec::new();
    for result in create_pods(writer, cluster, &plan.create).await {
        match result {
            Ok(pod) => created.push(pod),
            Err(e) => {
                if let Error::CreatePod { name, .. } = &e {
                    failed.push(name.clone());
                }
                first_error = first_error.or(Some(e));
            }
        }
    }
    plan.withdraw(&failed, previous);
    Ok(Applied {
        plan,
        created,
        first_error,
    })
}

/// Deletes the pods, each only if it is still the pod that was planned for
/// (uid precondition); a pod already gone counts as deleted.
async fn delete_pods(writer: &Writer, namespace: &str, pods: &[ObservedPod]) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(writer.client(), namespace);
    stream::iter(pods.iter().cloned())
        .map(|pod| {
            let api = api.clone();
            async move {
                let _permit = writer.permit(Write::PodDeletion).await;
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
async fn create_pods(
    writer: &Writer,
    cluster: &ValidatedCluster,
    pods: &[NewPod<'_>],
) -> Vec<Result<ObservedPod, Error>> {
    let api: Api<Pod> = Api::namespaced(writer.client(), &cluster.namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    // Built before the stream: its items own their data (a stream of
    // borrowed items trips the compiler's `Send` check of the controller).
    let planned: Vec<(Pod, ObservedPod)> = pods
        .iter()
        .map(|new| {
            let pod = build::pod(cluster, new.pod_type, new.kind, &new.name);
            let observed = ObservedPod {
                name: new.name.clone(),
                uid: None,
                kind: new.kind,
                pod_type: new.pod_type.name.clone(),
                launch_hash: new.pod_type.launch_hash.clone(),
                state: PodState::Pending,
                ready: false,
                created: 0,
                terminating: false,
            };
            (pod, observed)
        })
        .collect();
    stream::iter(planned)
        .map(|(pod, observed)| {
            let (api, params) = (api.clone(), params.clone());
            async move {
                let _permit = writer.permit(Write::PodCreation).await;
                match api.create(&params, &pod).await {
                    Ok(created) => Ok(ObservedPod {
                        uid: created.metadata.uid,
                        created: (created.metadata.creation_timestamp)
                            .map_or(0, |t| t.0.as_second()),
                        ..observed
                    }),
                    Err(source) => {
                        let fields = serde_json::to_value(&pod)
                            .map(|p| super::error::bad_quantities(&p))
                            .unwrap_or_default();
                        Err(Error::CreatePod {
                            name: observed.name,
                            pod_type: observed.pod_type,
                            fields,
                            source,
                        })
                    }
                }
            }
        })
        .buffer_unordered(WRITES_IN_FLIGHT)
        .collect()
        .await
}
