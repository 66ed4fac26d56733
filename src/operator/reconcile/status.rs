//! Status: the RayCluster's `status` computed from a plan (or a spec error)
//! and the previous status. Pure; `now` is passed in.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::apply::Applied;
use super::validate::{SpecError, ValidatedCluster};
use crate::api::{Phase, RayClusterStatus};

/// A total of per-type counts. Each type's count fits an i32, their sum
/// need not (without `spec.maxWorkers` nothing bounds it): it stops at the
/// largest, rather than panicking or wrapping negative.
fn saturating_sum(counts: impl Iterator<Item = i32>) -> i32 {
    counts.fold(0, i32::saturating_add)
}

/// The status after a reconcile that planned `plan`.
pub fn from_plan(
    previous: &RayClusterStatus,
    applied: &Applied,
    generation: Option<i64>,
    now: Time,
) -> RayClusterStatus {
    let plan = &applied.plan;
    let mut status = RayClusterStatus {
        phase: plan.phase,
        autoscaler_retries: plan.autoscaler_retries,
        observed_generation: generation,
        desired_workers: saturating_sum(plan.pod_types.iter().map(|t| t.desired_workers)),
        ready_workers: saturating_sum(plan.pod_types.iter().map(|t| t.ready_workers)),
        pod_types: plan.pod_types.clone(),
        head_launch_config: plan.head_launch_config.clone(),
        autoscaler: previous.autoscaler.clone(),
        conditions: previous.conditions.clone(),
    };
    let head = if plan.head_ready {
        ("True", "HeadRunning", "the head pod is running and ready")
    } else {
        (
            "False",
            "HeadNotReady",
            "the head pod is starting or being replaced",
        )
    };
    let short: Vec<String> = plan
        .pod_types
        .iter()
        .filter(|t| t.ready_workers < t.desired_workers)
        .map(|t| {
            format!(
                "{}: {}/{} ready",
                t.name, t.ready_workers, t.desired_workers
            )
        })
        .collect();
    let workers = if short.is_empty() {
        (
            "True",
            "AllReady",
            "every pod type has its wanted workers ready".to_string(),
        )
    } else {
        ("False", "WorkersStarting", short.join("; "))
    };
    let conditions = [
        (
            "Valid",
            "True",
            "SpecAccepted",
            "the spec is valid".to_string(),
        ),
        ("HeadReady", head.0, head.1, head.2.to_string()),
        ("WorkersReady", workers.0, workers.1, workers.2),
    ];
    let ray = plan.ray.as_ref().map(|r| {
        (
            "RayReady",
            if r.ready { "True" } else { "False" },
            r.reason,
            r.message.clone(),
        )
    });
    for (type_, value, reason, message) in conditions.into_iter().chain(ray) {
        set_condition(
            &mut status.conditions,
            type_,
            value,
            reason,
            &message,
            generation,
            &now,
        );
    }
    status
}

/// The status of a cluster whose spec cannot be acted on: `Error`, with the
/// reason in the `Valid` condition; everything else as it was.
pub fn from_spec_error(
    previous: &RayClusterStatus,
    error: &SpecError,
    generation: Option<i64>,
    now: Time,
) -> RayClusterStatus {
    invalid(previous, "InvalidSpec", &error.to_string(), generation, now)
}

/// The status of a cluster that cannot be acted on for `reason` (the
/// `Valid` condition's): `Error`; everything else as it was.
pub fn invalid(
    previous: &RayClusterStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) -> RayClusterStatus {
    let mut status = previous.clone();
    status.phase = Some(Phase::Error);
    status.observed_generation = generation;
    set_condition(
        &mut status.conditions,
        "Valid",
        "False",
        reason,
        message,
        generation,
        &now,
    );
    status
}

/// The `Valid` reason of a cluster one of whose objects the API server rejected.
pub const REJECTED: &str = "RejectedByApiServer";

/// Marks a status whose cluster has an object the API server rejected as
/// invalid: `Error`, with the API server's word in the `Valid` condition.
pub fn rejected(status: &mut RayClusterStatus, message: &str, generation: Option<i64>, now: &Time) {
    status.phase = Some(Phase::Error);
    set_condition(
        &mut status.conditions,
        "Valid",
        "False",
        REJECTED,
        message,
        generation,
        now,
    );
}

/// What the conditions beside the plan's are made from.
pub struct SideInput<'a> {
    pub cluster: &'a ValidatedCluster,
    pub view: Option<&'a crate::operator::board::AutoscalerView>,
    pub checks: &'a crate::operator::board::Checks,
    pub generation: Option<i64>,
    pub now: &'a Time,
}

/// Sets the conditions beside the plan's on `next`, and returns those worth
/// a Warning Event (reason, message): the warnings whose value or reason
/// changed since `previous`, so a standing one is not repeated.
pub fn set_side_conditions(
    next: &mut RayClusterStatus,
    previous: &RayClusterStatus,
    input: &SideInput,
) -> Vec<(&'static str, String)> {
    let mut warnings = Vec::new();
    for (type_, value, reason, message, warning) in
        side_conditions(input.cluster, input.view, input.checks)
    {
        let changed = !previous
            .conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == value && c.reason == reason);
        set_condition(
            &mut next.conditions,
            type_,
            value,
            reason,
            &message,
            input.generation,
            input.now,
        );
        if changed && warning {
            warnings.push((reason, message));
        }
    }
    warnings
}

/// Conditions beside the plan's, and whether a change to them is worth a
/// Warning Event: `AutoscalerHealthy` from the autoscaler's last round, and
/// `GcsAddressIgnored` when the spec names an address the operator will not dial.
fn side_conditions(
    cluster: &ValidatedCluster,
    view: Option<&crate::operator::board::AutoscalerView>,
    checks: &crate::operator::board::Checks,
) -> Vec<(&'static str, &'static str, &'static str, String, bool)> {
    let mut out = Vec::new();
    if let Some(view) = view {
        if let Some(why) = &view.unsupported {
            out.push((
                "AutoscalerHealthy",
                "False",
                "UnsupportedRay",
                why.clone(),
                true,
            ));
        } else if checks.autoscaling && view.ray.is_some() {
            let message = "the autoscaler reads the head's demand".to_string();
            out.push(("AutoscalerHealthy", "True", "Running", message, false));
        }
    }
    if let Some(address) = &cluster.gcs_address
        && !checks.allow_gcs_address
    {
        let message = format!(
            "spec.gcsAddress {address:?} is ignored: the operator dials only the head Service (it honours gcsAddress only when run with --allow-gcs-address)"
        );
        out.push((
            "GcsAddressIgnored",
            "True",
            "GcsAddressIgnored",
            message,
            true,
        ));
    }
    out
}

/// Sets a condition, keeping its transition time while its value stays the same.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let transition = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == value)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    conditions.retain(|c| c.type_ != type_);
    conditions.push(Condition {
        type_: type_.to_string(),
        status: value.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: transition,
    });
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}
