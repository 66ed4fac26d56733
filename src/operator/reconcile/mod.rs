//! Reconcile one RayCluster: validate -> plan -> apply -> status.
//!
//! `validate`, `build`, `plan` and `status` are pure and unit-tested; only
//! `apply` and this module's `reconcile` talk to the API server.

pub mod apply;
pub mod backoff;
pub mod build;
pub mod error;
pub mod expectations;
pub mod plan;
pub mod start_script;
pub mod status;
pub mod validate;

#[cfg(test)]
mod mock_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::api::{ClusterObject, InvalidCluster, Phase, RayCluster, RayClusterStatus};
use crate::naming::{self, FIELD_MANAGER};
use crate::operator::board::{AutoscalerTasks, Board};
use crate::operator::cache::{Caches, cluster_key};
use crate::operator::events::Recorder;
use crate::operator::scope::Scope;
use crate::operator::telemetry::metrics::Metrics;
use crate::operator::writer::{Write, Writer};
use expectations::Expectations;
use plan::{PlanInput, RayCheck};

use backoff::{Rejection, Target};
pub use error::Error;

/// What reconciles share: the handles they use and what the operator keeps
/// of each cluster between them.
pub struct Reconciler {
    pub caches: Arc<Caches>,
    pub writer: Arc<Writer>,
    pub events: Arc<Recorder>,
    pub board: Arc<Board>,
    pub autoscalers: Arc<dyn AutoscalerTasks>,
    pub scope: Scope,
    /// The process's counters (they outlive a term).
    pub metrics: Arc<Metrics>,
    pub expectations: Expectations,
    /// Per cluster: transient failures in a row, and what the API server rejected.
    pub backoffs: backoff::Backoffs,
}

impl Reconciler {
    /// Forgets what the operator keeps of a cluster (by key, its UID): it is
    /// gone, and one re-created under its name must start afresh.
    pub fn forget(&self, key: &str) {
        self.expectations.forget(key);
        self.backoffs.forget(key);
        self.board.forget(key);
        self.autoscalers.stop(key);
        self.events.forget(key);
    }

    /// Forgets every cluster whose key `keep` refuses.
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        self.expectations.retain(keep);
        self.backoffs.retain(keep);
        self.board.retain(keep);
        self.autoscalers.retain(keep);
        self.events.retain(keep);
    }

    /// How many clusters each per-cluster map holds (`ray_operator_tracked_clusters`).
    pub fn tracked(&self) -> [(&'static str, usize); 7] {
        let (pending, statuses) = self.expectations.tracked();
        let (retrying, rejected) = self.backoffs.tracked();
        [
            ("expectations", pending),
            ("statuses", statuses),
            ("retries", retrying),
            ("rejections", rejected),
            ("autoscalers", self.autoscalers.tracked()),
            ("board", self.board.tracked()),
            ("events", self.events.tracked()),
        ]
    }
}

/// Reconciles one RayCluster.
pub async fn reconcile(cluster: &RayCluster, ctx: &Reconciler) -> Result<Action, Error> {
    let name = cluster.name_any();
    let namespace = cluster.namespace().unwrap_or_default();
    let key = cluster_key(cluster);
    if cluster.meta().deletion_timestamp.is_some() {
        // Kubernetes' garbage collector removes the pods and the Service
        // (a foreground deletion keeps the object while they go); the watch's
        // delete event makes the operator forget the cluster.
        return Ok(Action::await_change());
    }
    if let Some(holder) = ctx.scope.claimed_elsewhere(&namespace).await {
        tracing::info!(cluster = %name, namespace = %namespace, "skipping: namespace {namespace} is claimed by the namespaced operator {holder}");
        // An unread claim is looked up again soon; a held one is long-lived.
        let again = if holder == crate::operator::scope::UNKNOWN_HOLDER {
            5
        } else {
            60
        };
        return Ok(Action::requeue(Duration::from_secs(again)));
    }
    let previous = ctx.expectations.status(&key, cluster.status.as_ref());
    let now = Time(RayClusterStatus::now());
    let validated = match validate::validate(cluster) {
        Ok(v) => v,
        Err(error) => {
            let next = status::from_spec_error(&previous, &error, cluster.meta().generation, now);
            if next != previous {
                tracing::warn!(cluster = %name, namespace = %namespace, "invalid spec: {error}");
                ctx.events
                    .publish(cluster, "InvalidSpec", error.to_string(), true)
                    .await;
            }
            write_status(ctx, cluster, &key, &previous, next).await?;
            return Ok(Action::await_change());
        }
    };

    let pods = ctx
        .expectations
        .view(&key, plan::observed(&ctx.caches, &namespace, &name));
    let view = ctx.board.view(&key);
    let checks = ctx.autoscalers.checks();
    let ray = match view.as_ref().and_then(|v| v.ray.as_ref()) {
        _ if !checks.ray_health => RayCheck::Off,
        Some(health) => RayCheck::Up(health),
        None => RayCheck::Down,
    };
    // What the API server rejected for this spec is not sent again.
    let generation = cluster.meta().generation;
    let mut rejection = ctx.backoffs.rejection(&key, generation);
    let held = match &rejection {
        Some(Rejection {
            target: Target::PodType(pod_type),
            ..
        }) => Some(pod_type.clone()),
        _ => None,
    };
    let input = PlanInput {
        held: held.as_deref(),
        cluster: &validated,
        pods: &pods,
        previous: &previous,
        scaling: view.as_ref().map(|v| &v.scaling),
        unreachable_head: view.as_ref().and_then(|v| v.unreachable_head.as_deref()),
        ray,
    };
    let mut plan = plan::plan(&input, &mut naming::random_suffix);

    if let Some(held) = input.held {
        // A head of a rejected pod type is not sent again either.
        let of_held: Vec<String> = (plan.create.iter())
            .filter(|p| p.pod_type.name == held)
            .map(|p| p.name.clone())
            .collect();
        plan.withdraw(&of_held, &previous);
    }
    if rejection
        .as_ref()
        .is_none_or(|r| r.target != Target::Service)
        && let Err(error) = apply::head_service(&ctx.writer, &ctx.caches, &validated).await
    {
        match rejected(ctx, &key, generation, &error, Target::Service) {
            Some(r) => rejection = Some(r),
            None => return Err(error),
        }
    }
    let mut applied = apply::pods(&ctx.writer, &validated, plan, &previous).await?;
    let deleted = &applied.plan.delete;
    ctx.expectations
        .deleted(&key, deleted.iter().map(|p| p.name.clone()));
    ctx.metrics.pods_created(applied.created.len() as u64);
    ctx.metrics.pods_deleted(deleted.len() as u64);
    ctx.expectations
        .created(&key, std::mem::take(&mut applied.created));
    if let Some(error) = applied.take_error() {
        let target = match &error {
            Error::CreatePod { pod_type, .. } => Target::PodType(pod_type.clone()),
            _ => return Err(error),
        };
        match rejected(ctx, &key, generation, &error, target) {
            Some(r) => rejection = Some(r),
            None => return Err(error),
        }
    }
    let plan = &applied.plan;
    for note in &plan.notes {
        if note.warning {
            tracing::warn!(cluster = %name, namespace = %namespace, reason = note.reason, "{}", note.message);
        } else {
            tracing::info!(cluster = %name, namespace = %namespace, reason = note.reason, "{}", note.message);
        }
        ctx.events
            .publish(cluster, note.reason, note.message.clone(), note.warning)
            .await;
    }
    if plan.head_ready {
        ctx.autoscalers.ensure(cluster);
    }
    let mut next = status::from_plan(&previous, &applied, generation, now.clone());
    if let Some(rejection) = &rejection {
        status::rejected(&mut next, &rejection.message, generation, &now);
        let reported = previous.conditions.iter().any(|c| {
            c.type_ == "Valid" && c.reason == status::REJECTED && c.message == rejection.message
        });
        if !reported {
            tracing::warn!(cluster = %name, namespace = %namespace, "{}", rejection.message);
            ctx.events
                .publish(cluster, status::REJECTED, rejection.message.clone(), true)
                .await;
        }
    }
    let side = status::SideInput {
        cluster: &validated,
        view: view.as_ref(),
        checks: &checks,
        generation,
        now: &now,
    };
    for (reason, message) in status::set_side_conditions(&mut next, &previous, &side) {
        tracing::warn!(cluster = %name, namespace = %namespace, reason, "{message}");
        ctx.events.publish(cluster, reason, message, true).await;
    }
    if let Some(view) = view {
        next.autoscaler = Some(view.status);
    }
    let phase = next.phase;
    write_status(ctx, cluster, &key, &previous, next).await?;
    Ok(match phase {
        _ if rejection.is_some() => Action::requeue(error::REJECTED_BACKOFF),
        Some(Phase::Running) => Action::requeue(Duration::from_secs(300)),
        _ => Action::requeue(Duration::from_secs(10)),
    })
}

/// Reports a RayCluster object that does not fit the RayCluster type:
/// `Error` with `Valid=False/InvalidObject` and a Warning Event naming the
/// field; nothing else is done with it until it changes.
pub async fn invalid_object(
    object: &ClusterObject,
    invalid: &InvalidCluster,
    ctx: &Reconciler,
) -> Result<Action, Error> {
    let key = cluster_key(object);
    if object.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (name, namespace) = (object.name_any(), object.namespace().unwrap_or_default());
    if let Some(holder) = ctx.scope.claimed_elsewhere(&namespace).await {
        tracing::info!(cluster = %name, namespace = %namespace, "skipping: namespace {namespace} is claimed by {holder}");
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    let previous = ctx.expectations.status(&key, invalid.status.as_ref());
    let now = Time(RayClusterStatus::now());
    let message = invalid.describe();
    let next = status::invalid(
        &previous,
        "InvalidObject",
        &message,
        object.meta().generation,
        now,
    );
    if next != previous {
        tracing::warn!(cluster = %name, namespace = %namespace, "invalid object: {message}");
        ctx.events
            .publish(object, "InvalidObject", message, true)
            .await;
    }
    write_status(ctx, object, &key, &previous, next).await?;
    Ok(Action::await_change())
}

/// Records that the API server rejected `target` for this generation of the
/// spec; `None` when `error` is no rejection (it is to be retried).
fn rejected(
    ctx: &Reconciler,
    key: &str,
    generation: Option<i64>,
    error: &Error,
    target: Target,
) -> Option<Rejection> {
    if error.class() != error::Class::Rejected {
        return None;
    }
    ctx.metrics.failed(error.stage(), error.reason());
    let rejection = Rejection {
        generation,
        at: std::time::Instant::now(),
        target,
        message: error.rejection_message(),
    };
    ctx.backoffs.rejected(key, rejection.clone());
    Some(rejection)
}

/// Writes the status subresource with server-side apply, only when it changed.
async fn write_status(
    ctx: &Reconciler,
    cluster: &impl Resource<DynamicType = ()>,
    key: &str,
    previous: &RayClusterStatus,
    next: RayClusterStatus,
) -> Result<(), Error> {
    if &next == previous {
        return Ok(());
    }
    if next.phase != previous.phase {
        tracing::info!(
            cluster = %cluster.name_any(), namespace = %cluster.namespace().unwrap_or_default(),
            "phase {} -> {}",
            previous.phase.map_or("<none>", Phase::as_str),
            next.phase.map_or("<none>", Phase::as_str)
        );
    }
    // The wrapper: the answer is the object, which need not parse.
    let api: Api<ClusterObject> = Api::namespaced(
        ctx.writer.client(),
        &cluster.namespace().unwrap_or_default(),
    );
    let patch = serde_json::json!({
        "apiVersion": "cluster.ray.io/v1",
        "kind": "RayCluster",
        "status": &next,
    });
    let _permit = ctx.writer.permit(Write::Status).await;
    api.patch_status(
        &cluster.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::Status { source })?;
    ctx.expectations.wrote_status(key, next);
    Ok(())
}
