//! The scaling decision: a pure function from (cluster config, worker pods,
//! Ray's [`ClusterState`]) to a [`Plan`]. No I/O; the operator runs it every
//! round and carries out the plan (create pods, `DrainNode` + delete pods).
//!
//! Rules (after the legacy Ray autoscaler):
//! - every worker type keeps `minWorkers` and at most `maxWorkers`; all worker
//!   pods together stay within the cluster's `maxWorkers`;
//! - `request_resources` bundles must fit on the cluster's *total* capacity; the
//!   nodes they land on are protected from scale-down;
//! - placement groups (all bundles or none; STRICT_SPREAD: one node each), then
//!   queued tasks, are bin-packed first-fit onto existing nodes' *available*
//!   resources (pods not yet joined count as empty nodes of their type), then
//!   onto new nodes of the best-fitting type; demand needing no GPU never
//!   launches a GPU type while a type without GPU fits;
//! - demand no type can ever hold is reported as infeasible, not launched for;
//! - launches per type per round are capped at max(5, upscalingSpeed x ready
//!   pods of the type), except those for `minWorkers` and `request_resources`;
//! - workers idle longer than `idleTimeout` are drained unless that takes their
//!   type below `minWorkers`, demand was just placed on them, or
//!   `request_resources` needs them; workers above a max, or of a type no longer
//!   configured, are drained too (idle ones first).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::gcs::{ClusterState, DrainReason, NodeStatus, RayNode};
use crate::api::RayClusterSpec;
use crate::operator::resources::{
    ResourceBundle, ResourceError, fits, format_bundle, node_resources, subtract,
};

/// Fewest launches a type may get per round, whatever the upscaling speed.
pub const MIN_LAUNCH_BATCH: u32 = 5;
/// Demand shapes are expanded to at most this many bundles each (a bound on work per round).
const MAX_BUNDLES_PER_SHAPE: u64 = 1000;

/// One worker pod type as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerType {
    pub name: String,
    pub min_workers: u32,
    pub max_workers: u32,
    /// What one node of this type offers Ray ([`node_resources`]).
    pub resources: ResourceBundle,
}

/// The autoscaling part of a RayCluster spec.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscalerConfig {
    /// Worker pod types (the head's excluded), in spec order.
    pub worker_types: Vec<WorkerType>,
    /// Cap on all worker pods together (`spec.maxWorkers`); `None`: per-type caps only.
    pub max_workers: Option<u32>,
    pub upscaling_speed: f64,
    pub idle_timeout: Duration,
}

impl AutoscalerConfig {
    /// Reads the spec: every pod type except `headPodType` is a worker type.
    pub fn from_spec(spec: &RayClusterSpec) -> Result<Self, ResourceError> {
        let worker_types = spec
            .pod_types
            .iter()
            .filter(|t| t.name != spec.head_pod_type)
            .map(|t| {
                Ok(WorkerType {
                    name: t.name.clone(),
                    min_workers: t.min_workers.max(0) as u32,
                    max_workers: t.max_workers.max(0) as u32,
                    resources: node_resources(t)?,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AutoscalerConfig {
            worker_types,
            max_workers: spec.max_workers.map(|m| m.max(0) as u32),
            upscaling_speed: spec.upscaling_speed,
            idle_timeout: Duration::from_secs(spec.idle_timeout_minutes.max(0) as u64 * 60),
        })
    }
}

/// A live (not terminating) worker pod of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerPod {
    /// Pod name; its Ray node reports it as `instance_id`.
    pub name: String,
    /// The `ray-user-node-type` label.
    pub pod_type: String,
    /// The pod is Ready (else still pending/starting).
    pub ready: bool,
}

/// Why a worker is to be removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DrainCause {
    /// Its Ray node was idle longer than the idle timeout.
    Idle,
    /// Its type has more pods than `maxWorkers`.
    AboveTypeMax,
    /// The cluster has more workers than `spec.maxWorkers`.
    AboveClusterMax,
    /// Its pod type is no longer in the spec.
    UnknownType,
}

impl DrainCause {
    /// The reason to give Ray's `DrainNode`: idle drains are refused by Ray
    /// if the node became busy meanwhile; the others go ahead regardless.
    pub fn ray_reason(self) -> DrainReason {
        match self {
            DrainCause::Idle => DrainReason::IdleTermination,
            _ => DrainReason::Preemption,
        }
    }
}

/// A worker pod to remove.
#[derive(Clone, Debug, PartialEq)]
pub struct Drain {
    pub pod: String,
    pub pod_type: String,
    /// Its Ray node (hex), to `DrainNode` before deleting the pod; `None` if the
    /// pod never joined Ray (just delete it).
    pub node_id: Option<String>,
    pub cause: DrainCause,
}

/// What to do this round.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Plan {
    /// New pods to create, per worker type (types with 0 left out).
    pub launch: BTreeMap<String, u32>,
    /// Pods to remove, in a stable order.
    pub drain: Vec<Drain>,
    /// Wanted pods per worker type after this round (every configured type).
    pub desired: BTreeMap<String, u32>,
    /// Demand no worker type (nor any existing node) can ever hold.
    pub infeasible: Vec<ResourceBundle>,
    /// Ray's pending demand, as `count x {resources}` / `placement group ...`.
    pub pending_summary: Vec<String>,
}

/// A node (existing, starting or planned) in the simulation.
#[derive(Clone, Debug)]
struct Slot {
    /// Index into `config.worker_types`; `None` for the head and other non-worker nodes.
    ty: Option<usize>,
    /// Index into `pods`, for existing worker pods.
    pod: Option<usize>,
    node: Option<RayNode>,
    available: ResourceBundle,
    /// Capacity still free for `request_resources` (starts at the node's total).
    total_left: ResourceBundle,
    /// Existing Ray node (can take `node:` pinned demand).
    joined: bool,
    has_demand: bool,
    protected: bool,
}

/// Launch bookkeeping during one round.
#[derive(Clone, Debug, Default)]
struct Launches {
    /// Per type: launches for `minWorkers` and `request_resources` (not capped).
    uncapped: Vec<u32>,
    /// Per type: launches for demand (capped by the upscaling speed).
    demand: Vec<u32>,
}

struct Planner<'a> {
    config: &'a AutoscalerConfig,
    /// Live pods per type (excluding draining ones).
    count: Vec<u32>,
    ready: Vec<u32>,
    slots: Vec<Slot>,
    launches: Launches,
    infeasible: Vec<ResourceBundle>,
}

/// Computes this round's plan. Deterministic: the same inputs give the same plan.
pub fn plan(config: &AutoscalerConfig, pods: &[WorkerPod], state: &ClusterState) -> Plan {
    let mut p = Planner::new(config, pods, state);
    let mut drain = Vec::new();
    // Pods of types no longer configured go first, whatever they do.
    let mut sorted: Vec<usize> = (0..pods.len()).collect();
    sorted.sort_by(|a, b| pods[*a].name.cmp(&pods[*b].name));
    for &i in &sorted {
        if p.type_index(&pods[i].pod_type).is_none() {
            drain.push(Drain {
                pod: pods[i].name.clone(),
                pod_type: pods[i].pod_type.clone(),
                node_id: live_node(state, &pods[i].name).map(|n| n.node_id.clone()),
                cause: DrainCause::UnknownType,
            });
        }
    }
    p.min_workers();
    p.constraints(&state.constraints);
    p.gangs(state);
    p.tasks(state);
    drain.extend(p.scale_down(pods));

    let n = config.worker_types.len();
    let mut plan = Plan {
        infeasible: p.infeasible.clone(),
        drain,
        ..Default::default()
    };
    let mut drained = vec![0u32; n];
    for d in &plan.drain {
        if let Some(t) = p.type_index(&d.pod_type) {
            drained[t] += 1;
        }
    }
    for (t, wt) in config.worker_types.iter().enumerate() {
        let launch = p.launches.uncapped[t] + p.launches.demand[t].min(p.cap(t));
        if launch > 0 {
            plan.launch.insert(wt.name.clone(), launch);
        }
        plan.desired
            .insert(wt.name.clone(), p.count[t] + launch - drained[t]);
    }
    plan.pending_summary = summarize(state);
    plan
}

/// The pod's Ray node: a live one if there is one.
fn live_node<'s>(state: &'s ClusterState, pod: &str) -> Option<&'s RayNode> {
    state
        .nodes
        .iter()
        .find(|n| n.instance_id == pod && n.status != NodeStatus::Dead)
}

fn needs_gpu(b: &ResourceBundle) -> bool {
    b.get("GPU").is_some_and(|v| *v > 0.0)
}

/// Demand for resources held by placement groups (`CPU_group_<id>`) waits for
/// its group; new nodes never provide it.
fn is_group_bundle(b: &ResourceBundle) -> bool {
    b.keys().any(|k| k.contains("_group_"))
}

/// Demand pinned to an existing node (`node:<ip>`): never a reason to launch.
fn is_pinned(b: &ResourceBundle) -> bool {
    b.keys().any(|k| k.starts_with("node:"))
}

/// Larger bundles first (first-fit decreasing): GPU, then CPU, then the rest.
fn size_key(b: &ResourceBundle) -> (u64, u64, usize) {
    let q = |k: &str| (b.get(k).copied().unwrap_or(0.0) * 1000.0) as u64;
    (q("GPU"), q("CPU"), b.len())
}

impl<'a> Planner<'a> {
    fn new(config: &'a AutoscalerConfig, pods: &[WorkerPod], state: &ClusterState) -> Self {
        let n = config.worker_types.len();
        let mut p = Planner {
            config,
            count: vec![0; n],
            ready: vec![0; n],
            slots: Vec::new(),
            launches: Launches {
                uncapped: vec![0; n],
                demand: vec![0; n],
            },
            infeasible: Vec::new(),
        };
        let mut order: Vec<usize> = (0..pods.len()).collect();
        order.sort_by(|a, b| pods[*a].name.cmp(&pods[*b].name));
        for i in order {
            let pod = &pods[i];
            let Some(t) = p.type_index(&pod.pod_type) else {
                continue;
            };
            let node = live_node(state, &pod.name).cloned();
            if node
                .as_ref()
                .is_some_and(|n| n.status == NodeStatus::Draining)
            {
                continue; // going away: neither capacity nor counted
            }
            p.count[t] += 1;
            p.ready[t] += u32::from(pod.ready);
            let (available, total) = match &node {
                Some(n) => (n.available.clone(), n.total.clone()),
                None => (
                    config.worker_types[t].resources.clone(),
                    config.worker_types[t].resources.clone(),
                ),
            };
            p.slots.push(Slot {
                ty: Some(t),
                pod: Some(i),
                joined: node.is_some(),
                node,
                available,
                total_left: total,
                has_demand: false,
                protected: false,
            });
        }
        // The head and any other live node that is not a known worker's pod.
        let pod_names: std::collections::HashSet<&str> =
            pods.iter().map(|p| p.name.as_str()).collect();
        for n in &state.nodes {
            let worker_type = config.worker_types.iter().any(|t| t.name == n.node_type);
            if matches!(n.status, NodeStatus::Dead | NodeStatus::Draining)
                || pod_names.contains(n.instance_id.as_str())
                || (worker_type && !n.instance_id.is_empty())
            {
                continue;
            }
            p.slots.push(Slot {
                ty: None,
                pod: None,
                node: Some(n.clone()),
                available: n.available.clone(),
                total_left: n.total.clone(),
                joined: true,
                has_demand: false,
                protected: false,
            });
        }
        p
    }

    fn type_index(&self, name: &str) -> Option<usize> {
        self.config.worker_types.iter().position(|t| t.name == name)
    }

    fn launched(&self, t: usize) -> u32 {
        self.launches.uncapped[t] + self.launches.demand[t]
    }

    /// Whether one more pod of type `t` stays within the type's and the cluster's max.
    fn has_room(&self, t: usize) -> bool {
        let total: u32 = (0..self.count.len())
            .map(|i| self.count[i] + self.launched(i))
            .sum();
        self.count[t] + self.launched(t) < self.config.worker_types[t].max_workers
            && self.config.max_workers.is_none_or(|m| total < m)
    }

    /// Demand launches allowed per round for type `t`.
    fn cap(&self, t: usize) -> u32 {
        let by_speed = (self.config.upscaling_speed * f64::from(self.ready[t])).floor();
        MIN_LAUNCH_BATCH.max(by_speed.min(f64::from(u32::MAX)) as u32)
    }

    fn add_new(&mut self, t: usize, uncapped: bool) -> usize {
        if uncapped {
            self.launches.uncapped[t] += 1;
        } else {
            self.launches.demand[t] += 1;
        }
        let r = self.config.worker_types[t].resources.clone();
        self.slots.push(Slot {
            ty: Some(t),
            pod: None,
            node: None,
            available: r.clone(),
            total_left: r,
            joined: false,
            has_demand: false,
            protected: false,
        });
        self.slots.len() - 1
    }

    fn min_workers(&mut self) {
        for t in 0..self.config.worker_types.len() {
            while self.count[t] + self.launched(t) < self.config.worker_types[t].min_workers
                && self.has_room(t)
            {
                self.add_new(t, true);
            }
        }
    }

    /// The worker type to launch for `demand[0]` (scored with the rest of
    /// `demand`): `Ok(Some(t))`, `Ok(None)` if types fit but none has room, or
    /// `Err(())` if no type could ever hold it.
    fn best_type(&self, demand: &[ResourceBundle]) -> Result<Option<usize>, ()> {
        let first = &demand[0];
        let fitting: Vec<usize> = (0..self.config.worker_types.len())
            .filter(|&t| fits(&self.config.worker_types[t].resources, first))
            .filter(|&t| self.config.worker_types[t].max_workers > 0)
            .collect();
        if fitting.is_empty() {
            return Err(());
        }
        let mut candidates = fitting;
        // GPU types are kept for GPU demand whenever a type without GPU could
        // hold it (even if that type is at its max now).
        let gpu_type = |t: &usize| needs_gpu(&self.config.worker_types[*t].resources);
        if !needs_gpu(first) && candidates.iter().any(|t| !gpu_type(t)) {
            candidates.retain(|t| !gpu_type(t));
        }
        candidates.retain(|&t| self.has_room(t));
        let window = &demand[..demand.len().min(100)];
        let mut best: Option<(usize, Score)> = None;
        for t in candidates {
            let s = score(&self.config.worker_types[t].resources, window);
            if best.as_ref().is_none_or(|(_, b)| s.better_than(b)) {
                best = Some((t, s));
            }
        }
        Ok(best.map(|(t, _)| t))
    }

    /// `request_resources`: bundles packed onto total capacity; launches uncapped.
    fn constraints(&mut self, bundles: &[ResourceBundle]) {
        let mut bundles: Vec<ResourceBundle> = bundles.to_vec();
        bundles.sort_by_key(|b| std::cmp::Reverse(size_key(b)));
        for (i, b) in bundles.iter().enumerate() {
            if let Some(s) = self.slots.iter().position(|s| fits(&s.total_left, b)) {
                subtract(&mut self.slots[s].total_left, b);
                self.slots[s].protected = true;
                continue;
            }
            match self.best_type(&bundles[i..]) {
                Ok(Some(t)) => {
                    let s = self.add_new(t, true);
                    subtract(&mut self.slots[s].total_left, b);
                    self.slots[s].protected = true;
                }
                Ok(None) => {}
                Err(()) => self.infeasible.push(b.clone()),
            }
        }
    }

    /// Places one bundle first-fit onto available capacity, launching if needed.
    /// `exclude`: slots this gang already uses (STRICT_SPREAD). Returns the slot,
    /// or why not: `Err(true)` infeasible, `Err(false)` waiting (max, cap, pinned).
    fn place(&mut self, demand: &[ResourceBundle], exclude: &[usize]) -> Result<usize, bool> {
        let b = &demand[0];
        let pinned = is_pinned(b);
        let found = self.slots.iter().enumerate().position(|(i, s)| {
            !exclude.contains(&i) && (s.joined || !pinned) && fits(&s.available, b)
        });
        let slot = match found {
            Some(s) => s,
            None if pinned => return Err(false),
            None => match self.best_type(demand) {
                Err(()) => return Err(true),
                Ok(None) => return Err(false),
                Ok(Some(t)) if self.launches.demand[t] >= self.cap(t) => return Err(false),
                Ok(Some(t)) => self.add_new(t, false),
            },
        };
        subtract(&mut self.slots[slot].available, b);
        self.slots[slot].has_demand = true;
        Ok(slot)
    }

    fn gangs(&mut self, state: &ClusterState) {
        for gang in &state.gangs {
            let bundles: Vec<ResourceBundle> = gang
                .bundles
                .iter()
                .filter(|b| !b.is_empty())
                .cloned()
                .collect();
            let saved = (self.slots.clone(), self.launches.clone());
            let mut used = Vec::new();
            let mut outcome = Ok(());
            for i in 0..bundles.len() {
                let exclude = if gang.strict_spread {
                    used.clone()
                } else {
                    vec![]
                };
                match self.place(&bundles[i..], &exclude) {
                    Ok(s) => used.push(s),
                    Err(infeasible) => {
                        outcome = Err(infeasible);
                        break;
                    }
                }
            }
            if let Err(infeasible) = outcome {
                (self.slots, self.launches) = saved;
                if infeasible {
                    self.infeasible.extend(bundles);
                }
            }
        }
    }

    fn tasks(&mut self, state: &ClusterState) {
        let mut demand: Vec<ResourceBundle> = state
            .pending
            .iter()
            .filter(|(b, _)| !b.is_empty() && !is_group_bundle(b))
            .flat_map(|(b, n)| {
                std::iter::repeat_n(b.clone(), (*n).min(MAX_BUNDLES_PER_SHAPE) as usize)
            })
            .collect();
        demand.sort_by_key(|b| std::cmp::Reverse(size_key(b)));
        let mut reported: Vec<ResourceBundle> = Vec::new();
        for i in 0..demand.len() {
            if let Err(true) = self.place(&demand[i..], &[])
                && !reported.contains(&demand[i])
            {
                reported.push(demand[i].clone());
            }
        }
        self.infeasible.extend(reported);
    }

    /// Idle, above-max and above-cluster-max drains (never below minWorkers for idle).
    fn scale_down(&mut self, pods: &[WorkerPod]) -> Vec<Drain> {
        let timeout_ms = self.config.idle_timeout.as_millis() as i64;
        let idle_ms = |s: &Slot| match &s.node {
            Some(n) if n.status == NodeStatus::Idle || n.idle_ms > 0 => Some(n.idle_ms),
            _ => None,
        };
        // Removal preference: longest idle first, then never-joined pods, then busy; then by name.
        let rank = |s: &Slot| -> (u8, i64, String) {
            let name = pods[s.pod.expect("existing pod")].name.clone();
            match (idle_ms(s), &s.node) {
                (Some(ms), _) => (0, -ms, name),
                (None, None) => (1, 0, name),
                (None, Some(_)) => (2, 0, name),
            }
        };
        let mut existing: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].pod.is_some())
            .collect();
        existing.sort_by_key(|&i| rank(&self.slots[i]));
        let mut remaining = self.count.clone();
        let mut chosen: Vec<(usize, DrainCause)> = Vec::new();
        let take =
            |chosen: &mut Vec<(usize, DrainCause)>, remaining: &mut Vec<u32>, i: usize, cause| {
                if !chosen.iter().any(|(c, _)| *c == i) {
                    remaining[self.slots[i].ty.expect("worker")] -= 1;
                    chosen.push((i, cause));
                }
            };
        for &i in &existing {
            let t = self.slots[i].ty.expect("worker");
            if remaining[t] > self.config.worker_types[t].max_workers {
                take(&mut chosen, &mut remaining, i, DrainCause::AboveTypeMax);
            }
        }
        if let Some(max) = self.config.max_workers {
            for &i in &existing {
                let t = self.slots[i].ty.expect("worker");
                let total: u32 = remaining.iter().sum();
                if total > max && remaining[t] > self.config.worker_types[t].min_workers {
                    take(&mut chosen, &mut remaining, i, DrainCause::AboveClusterMax);
                }
            }
        }
        for &i in &existing {
            let s = &self.slots[i];
            let t = s.ty.expect("worker");
            let idle_long = idle_ms(s).is_some_and(|ms| ms >= timeout_ms);
            if idle_long
                && !s.has_demand
                && !s.protected
                && remaining[t] > self.config.worker_types[t].min_workers
            {
                take(&mut chosen, &mut remaining, i, DrainCause::Idle);
            }
        }
        chosen.sort_by_key(|(i, _)| pods[self.slots[*i].pod.expect("existing pod")].name.clone());
        chosen
            .into_iter()
            .map(|(i, cause)| {
                let s = &self.slots[i];
                let pod = &pods[s.pod.expect("existing pod")];
                Drain {
                    pod: pod.name.clone(),
                    pod_type: pod.pod_type.clone(),
                    node_id: s.node.as_ref().map(|n| n.node_id.clone()),
                    cause,
                }
            })
            .collect()
    }
}

/// How well a type's node would be used by the demand (legacy utilisation score).
#[derive(Debug)]
struct Score {
    /// Resource kinds both offered and asked for.
    matching: usize,
    min_util: f64,
    mean_util: f64,
    /// Resource kinds offered (fewer is less waste).
    offered: usize,
}

impl Score {
    fn better_than(&self, other: &Score) -> bool {
        (
            self.matching,
            self.min_util,
            self.mean_util,
            std::cmp::Reverse(self.offered),
        )
            .partial_cmp(&(
                other.matching,
                other.min_util,
                other.mean_util,
                std::cmp::Reverse(other.offered),
            ))
            == Some(std::cmp::Ordering::Greater)
    }
}

/// Packs `demand` first-fit into one empty node of `resources` and scores it.
fn score(resources: &ResourceBundle, demand: &[ResourceBundle]) -> Score {
    let mut left = resources.clone();
    let mut asked: HashMap<&str, ()> = HashMap::new();
    for b in demand {
        if fits(&left, b) {
            subtract(&mut left, b);
            for (k, v) in b {
                if *v > 0.0 {
                    asked.insert(k, ());
                }
            }
        }
    }
    let utils: Vec<f64> = resources
        .iter()
        .filter(|(k, v)| **v > 0.0 && asked.contains_key(k.as_str()))
        .map(|(k, v)| (v - left.get(k).copied().unwrap_or(0.0)) / v)
        .collect();
    let n = utils.len();
    Score {
        matching: n,
        min_util: utils.iter().copied().fold(f64::INFINITY, f64::min).min(1.0),
        mean_util: if n == 0 {
            0.0
        } else {
            utils.iter().sum::<f64>() / n as f64
        },
        offered: resources.values().filter(|v| **v > 0.0).count(),
    }
}

/// Ray's pending demand for the status: `3 x {CPU: 4}`, `placement group ... x {CPU: 1}`.
fn summarize(state: &ClusterState) -> Vec<String> {
    let mut out: Vec<String> = state
        .pending
        .iter()
        .map(|(b, n)| format!("{n} x {}", format_bundle(b)))
        .collect();
    for g in &state.gangs {
        let strategy = if g.strict_spread {
            " (STRICT_SPREAD)"
        } else {
            ""
        };
        let bundles: Vec<String> = g.bundles.iter().map(format_bundle).collect();
        out.push(format!("placement group{strategy}: {}", bundles.join(", ")));
    }
    let constraint: f64 = state.constraints.iter().filter_map(|b| b.get("CPU")).sum();
    if !state.constraints.is_empty() {
        out.push(format!(
            "request_resources: {} bundles ({constraint} CPU)",
            state.constraints.len()
        ));
    }
    out
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
