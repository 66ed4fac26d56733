//! Plan: the validated cluster and the pods that exist in, the pods to create
//! and delete out, with the phase they put the cluster in. Pure: the caller
//! gathers the pods (and what it expects of its own recent writes) and
//! supplies the names of new pods.

use std::collections::BTreeSet;

use crate::operator::board::{RayHealth, Scaling};
use crate::operator::cache::Caches;
pub use crate::operator::cache::pod::{ObservedPod, PodState};

use super::validate::{ValidatedCluster, ValidatedPodType};
use crate::api::{Phase, PodTypeStatus, RayClusterStatus};
use crate::naming::NodeKind;

/// The pods of a cluster in the operator's cache, as a plan sees them.
pub fn observed(caches: &Caches, namespace: &str, name: &str) -> Vec<ObservedPod> {
    caches.pods.cluster(namespace, name)
}

/// Whether, and what, the operator knows of Ray itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RayCheck<'a> {
    /// Not checked (`--ray-health=false`): pods that run are enough.
    Off,
    /// The GCS has not answered yet, or stopped answering.
    Down,
    Up(&'a RayHealth),
}

/// A condition's value, reason and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
}

/// A pod to create, with the pod type it is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPod<'c> {
    pub kind: NodeKind,
    pub pod_type: &'c ValidatedPodType,
    pub name: String,
}

/// Something worth a Kubernetes Event and a log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub reason: &'static str,
    pub message: String,
    pub warning: bool,
}

/// The plan for one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodPlan<'c> {
    pub create: Vec<NewPod<'c>>,
    pub delete: Vec<ObservedPod>,
    pub notes: Vec<Note>,
    pub phase: Option<Phase>,
    pub autoscaler_retries: i64,
    pub head_launch_config: Option<String>,
    pub head_ready: bool,
    pub pod_types: Vec<PodTypeStatus>,
    /// Whether Ray runs (the `RayReady` condition); `None` when not checked.
    pub ray: Option<Readiness>,
}

impl PodPlan<'_> {
    /// Takes back the pods to create of these names (the API server
    /// refused them, or their pod type is held): the plan no longer creates
    /// them, no note announces them, and a withdrawn head leaves the head's
    /// launch config and the restart count as they were, so the next
    /// reconcile does not take a head that never existed for a lost one.
    pub fn withdraw(&mut self, names: &[String], previous: &RayClusterStatus) {
        let (gone, kept): (Vec<NewPod>, Vec<NewPod>) =
            self.create.drain(..).partition(|p| names.contains(&p.name));
        self.create = kept;
        for pod in &gone {
            self.notes
                .retain(|n| !n.message.contains(pod.name.as_str()));
            if pod.kind == NodeKind::Head {
                self.head_launch_config = previous.head_launch_config.clone();
                self.autoscaler_retries = previous.autoscaler_retries;
            }
        }
    }
}

/// Everything the plan reads.
pub struct PlanInput<'c, 'a> {
    pub cluster: &'c ValidatedCluster,
    /// Pods of the cluster, including those just created and not yet seen by
    /// the watch (as Pending); without those just deleted.
    pub pods: &'a [ObservedPod],
    pub previous: &'a RayClusterStatus,
    pub scaling: Option<&'a Scaling>,
    /// The head pod whose Ray the autoscaler found unreachable past its grace
    /// period. Named, so a head that replaced it is not blamed.
    pub unreachable_head: Option<&'a str>,
    pub ray: RayCheck<'a>,
    /// A pod type whose pods the API server rejected for this spec: no
    /// worker of it is created (nor announced) until the spec changes.
    pub held: Option<&'a str>,
}

/// Plans one reconcile; `new_suffix` gives the random part of new pod names.
pub fn plan<'c>(input: &PlanInput<'c, '_>, new_suffix: &mut dyn FnMut() -> String) -> PodPlan<'c> {
    let cluster = input.cluster;
    let mut out = PodPlan {
        autoscaler_retries: input.previous.autoscaler_retries,
        ..PodPlan::default()
    };
    let live: Vec<&ObservedPod> = input.pods.iter().filter(|p| !p.terminating).collect();

    let decision = plan_head(input, &live, &mut out, new_suffix);
    let head = decision.kept();
    let head_restarted = decision == HeadDecision::Restart;
    let head_running = head.is_some_and(|h| h.state == PodState::Running);
    let desired = desired_workers(cluster, input.scaling);
    let mut settled = true;
    for (pod_type, desired) in cluster.workers.iter().zip(desired) {
        let workers = WorkerRound {
            desired,
            head_restarted,
            head_running,
        };
        let status = plan_workers(input, pod_type, &live, workers, &mut out, new_suffix);
        settled &= status.ready_workers >= pod_type.min_workers;
        out.pod_types.push(status);
    }
    // Workers of pod types that are no longer configured.
    let known: BTreeSet<&str> = cluster.workers.iter().map(|t| t.name.as_str()).collect();
    let strays: Vec<ObservedPod> = live
        .iter()
        .filter(|p| p.kind == NodeKind::Worker && !known.contains(p.pod_type.as_str()))
        .map(|p| (*p).clone())
        .collect();
    if !strays.is_empty() {
        out.notes.push(note(
            "RemovedPodType",
            format!(
                "deleting {} worker(s) of pod types no longer configured",
                strays.len()
            ),
        ));
        out.delete.extend(strays);
    }

    out.head_ready = !head_restarted && head.is_some_and(|h| h.ready);
    out.ray = ray_readiness(input, &live, out.head_ready);
    let recovering = out.phase == Some(Phase::AutoscalingExceptionRecovery)
        || (input.previous.phase == Some(Phase::AutoscalingExceptionRecovery) && !out.head_ready);
    out.phase = Some(if recovering {
        Phase::AutoscalingExceptionRecovery
    } else if out.head_ready
        && settled
        && out.ray.as_ref().is_none_or(|r| r.ready)
        && !out.notes.iter().any(|n| n.reason == "ReplacingWorkers")
    {
        Phase::Running
    } else {
        Phase::Updating
    });
    out
}

/// `Running` needs Ray itself to run: the head's GCS answers, the head is an
/// alive Ray node, and so is each pod type's minimum of ready workers.
fn ray_readiness(input: &PlanInput, live: &[&ObservedPod], head_ready: bool) -> Option<Readiness> {
    let readiness = |ready, reason, message: &str| Readiness {
        ready,
        reason,
        message: message.to_string(),
    };
    let health = match input.ray {
        RayCheck::Off => return None,
        RayCheck::Down if !head_ready => {
            return Some(readiness(
                false,
                "WaitingForHead",
                "the head pod is not ready",
            ));
        }
        RayCheck::Down => {
            return Some(readiness(
                false,
                "GcsUnreachable",
                "the head's Ray GCS does not answer",
            ));
        }
        RayCheck::Up(health) => health,
    };
    let Some(joined) = &health.joined else {
        return Some(readiness(
            true,
            "GcsAnswers",
            "the head's Ray GCS answers (this Ray does not list its nodes)",
        ));
    };
    let head_joined = live
        .iter()
        .any(|p| p.kind == NodeKind::Head && p.ready && joined.contains(&p.name));
    if !head_joined {
        return Some(readiness(
            false,
            "HeadNotJoined",
            "the head's GCS answers but the head is not a Ray node yet",
        ));
    }
    let short: Vec<String> = input
        .cluster
        .workers
        .iter()
        .filter_map(|t| {
            let alive = live
                .iter()
                .filter(|p| p.kind == NodeKind::Worker && p.pod_type == t.name && p.ready)
                .filter(|p| joined.contains(&p.name))
                .count() as i32;
            (alive < t.min_workers).then(|| format!("{}: {alive}/{} in Ray", t.name, t.min_workers))
        })
        .collect();
    Some(if short.is_empty() {
        readiness(
            true,
            "RayRunning",
            "the head's Ray GCS answers and the minimum workers are alive in Ray",
        )
    } else {
        readiness(false, "WorkersNotJoined", &short.join("; "))
    })
}

fn note(reason: &'static str, message: String) -> Note {
    Note {
        reason,
        message,
        warning: false,
    }
}

/// What a round does with the head.
#[derive(Debug, PartialEq)]
enum HeadDecision<'a> {
    /// This head stays.
    Keep(&'a ObservedPod),
    /// A first head is created: nothing runs yet, so nothing restarts.
    Create,
    /// A new head replaces the Ray cluster: its workers go with the old one.
    Restart,
}

impl<'a> HeadDecision<'a> {
    fn kept(&self) -> Option<&'a ObservedPod> {
        match self {
            HeadDecision::Keep(head) => Some(head),
            HeadDecision::Create | HeadDecision::Restart => None,
        }
    }
}

/// Keeps exactly one current head.
fn plan_head<'a, 'c>(
    input: &PlanInput<'c, '_>,
    live: &[&'a ObservedPod],
    out: &mut PodPlan<'c>,
    new_suffix: &mut dyn FnMut() -> String,
) -> HeadDecision<'a> {
    let cluster = input.cluster;
    let wanted = &cluster.head.launch_hash;
    let mut heads: Vec<&ObservedPod> = live
        .iter()
        .copied()
        .filter(|p| p.kind == NodeKind::Head)
        .collect();
    // Best first: current config, running, ready, oldest.
    heads.sort_by_key(|p| {
        (
            &p.launch_hash != wanted,
            p.state != PodState::Running,
            !p.ready,
            p.created,
        )
    });
    let keep = heads
        .first()
        .copied()
        .filter(|h| h.state != PodState::Finished);
    out.delete.extend(
        heads
            .iter()
            .skip(usize::from(keep.is_some()))
            .map(|p| (*p).clone()),
    );

    let had_head = input.previous.head_launch_config.is_some();
    let reason = match keep {
        Some(h) if &h.launch_hash != wanted => Restart::ConfigChanged,
        Some(h)
            if input.unreachable_head == Some(h.name.as_str()) && h.state == PodState::Running =>
        {
            Restart::Unhealthy
        }
        Some(h) => {
            out.head_launch_config = Some(wanted.clone());
            return HeadDecision::Keep(h);
        }
        None if heads.iter().any(|h| h.state == PodState::Finished) => Restart::HeadFailed,
        None if had_head => Restart::HeadLost,
        None => Restart::FirstStart,
    };
    if let Some(h) = keep {
        out.delete.push(h.clone());
    }
    let name = super::build::pod_name(cluster, &cluster.head, &new_suffix());
    out.create.push(NewPod {
        kind: NodeKind::Head,
        pod_type: &cluster.head,
        name: name.clone(),
    });
    out.head_launch_config = Some(wanted.clone());
    match reason {
        Restart::FirstStart => {
            out.notes
                .push(note("CreatedHead", format!("creating head pod {name}")));
            HeadDecision::Create
        }
        Restart::ConfigChanged => {
            out.notes.push(note(
                "Restarting",
                format!(
                    "head pod type {} changed: restarting the Ray cluster with head {name}",
                    cluster.head.name
                ),
            ));
            HeadDecision::Restart
        }
        failure => {
            out.autoscaler_retries += 1;
            out.phase = Some(Phase::AutoscalingExceptionRecovery);
            out.notes.push(Note {
                reason: "HeadFailed",
                message: format!(
                    "{}: restarting the Ray cluster with head {name}",
                    failure.describe()
                ),
                warning: true,
            });
            HeadDecision::Restart
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Restart {
    FirstStart,
    ConfigChanged,
    HeadFailed,
    HeadLost,
    Unhealthy,
}

impl Restart {
    fn describe(self) -> &'static str {
        match self {
            Restart::HeadFailed => "the head pod failed",
            Restart::HeadLost => "the head pod is gone",
            Restart::Unhealthy => "the head's Ray is unreachable",
            Restart::FirstStart | Restart::ConfigChanged => "",
        }
    }
}

/// What the head's plan means for the workers of each type.
#[derive(Clone, Copy)]
struct WorkerRound {
    desired: i32,
    head_restarted: bool,
    head_running: bool,
}

/// The workers of one pod type: replace outdated and finished ones, then
/// create or delete to reach the wanted count.
fn plan_workers<'c>(
    input: &PlanInput<'c, '_>,
    pod_type: &'c ValidatedPodType,
    live: &[&ObservedPod],
    round: WorkerRound,
    out: &mut PodPlan<'c>,
    new_suffix: &mut dyn FnMut() -> String,
) -> PodTypeStatus {
    let WorkerRound {
        desired,
        head_restarted,
        head_running,
    } = round;
    let mine: Vec<&ObservedPod> = live
        .iter()
        .copied()
        .filter(|p| p.kind == NodeKind::Worker && p.pod_type == pod_type.name)
        .collect();
    let status = |ready| PodTypeStatus {
        name: pod_type.name.clone(),
        desired_workers: desired,
        ready_workers: ready,
    };
    if head_restarted {
        // Workers belong to the old Ray cluster; new ones join the new head once it runs.
        out.delete.extend(mine.iter().map(|p| (*p).clone()));
        return status(0);
    }
    let (mut current, stale): (Vec<&ObservedPod>, Vec<&ObservedPod>) = mine
        .into_iter()
        .partition(|p| p.launch_hash == pod_type.launch_hash && p.state != PodState::Finished);
    let outdated = stale
        .iter()
        .filter(|p| p.state != PodState::Finished)
        .count();
    if outdated > 0 {
        out.notes.push(note(
            "ReplacingWorkers",
            format!(
                "pod type {} changed: replacing {outdated} worker(s)",
                pod_type.name
            ),
        ));
    }
    out.delete.extend(stale.into_iter().cloned());

    let count = current.len() as i32;
    if count < desired && head_running && input.held != Some(pod_type.name.as_str()) {
        let names: Vec<String> = (count..desired)
            .map(|_| super::build::pod_name(input.cluster, pod_type, &new_suffix()))
            .collect();
        out.notes.push(note(
            "CreatedWorkers",
            format!(
                "creating {} worker(s) of type {}: {}",
                names.len(),
                pod_type.name,
                names.join(", ")
            ),
        ));
        out.create.extend(names.into_iter().map(|name| NewPod {
            kind: NodeKind::Worker,
            pod_type,
            name,
        }));
    } else if count > desired {
        let remove = input.scaling.map(|s| &s.remove);
        // Drained first, then not ready, then newest.
        current.sort_by_key(|p| {
            (
                !remove.is_some_and(|r| r.contains(&p.name)),
                p.ready,
                std::cmp::Reverse(p.created),
            )
        });
        let surplus: Vec<ObservedPod> = current
            .drain(..(count - desired) as usize)
            .cloned()
            .collect();
        out.notes.push(note(
            "DeletedWorkers",
            format!(
                "deleting {} worker(s) of type {}: {}",
                surplus.len(),
                pod_type.name,
                surplus
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        out.delete.extend(surplus);
    }
    status(current.iter().filter(|p| p.ready).count() as i32)
}

/// Workers wanted per worker pod type, in `cluster.workers` order: the
/// autoscaler's wish (else minWorkers) within minWorkers..=maxWorkers, then
/// trimmed from the last type down until the cluster's maxWorkers holds.
/// Validation guarantees the minimums alone fit.
pub fn desired_workers(cluster: &ValidatedCluster, scaling: Option<&Scaling>) -> Vec<i32> {
    let mut desired: Vec<i32> = cluster
        .workers
        .iter()
        .map(|t| {
            let wanted = scaling
                .and_then(|s| s.desired.get(&t.name))
                .copied()
                .unwrap_or(t.min_workers);
            wanted.clamp(t.min_workers, t.max_workers)
        })
        .collect();
    if let Some(max) = cluster.max_workers {
        let mut excess = desired.iter().sum::<i32>() - max;
        for (count, pod_type) in desired.iter_mut().zip(&cluster.workers).rev() {
            let cut = excess.clamp(0, *count - pod_type.min_workers);
            *count -= cut;
            excess -= cut;
        }
    }
    desired
}
