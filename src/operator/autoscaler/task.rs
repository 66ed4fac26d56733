//! The per-cluster autoscaler tasks: one lightweight task per RayCluster that
//! reads its head's GCS about once a second, runs the pure planner, drains
//! the workers it removes, and posts the result on the [`Board`] for the
//! reconciler to carry out.
//!
//! [`Board`]: crate::operator::board::Board

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use tokio::task::AbortHandle;

use super::gcs::{AutoscalerReport, ClusterState, GcsClient, GcsOptions, NodeStatus};
use super::planner::{self, AutoscalerConfig, Plan, WorkerPod};
use crate::api::{AutoscalerStatus, ClusterObject, RayCluster};
use crate::naming::NodeKind;
use crate::operator::board::{AutoscalerTasks, AutoscalerView, Board, Checks, RayHealth, Scaling};
use crate::operator::cache::{Caches, cluster_key};
use crate::operator::events::Recorder;
use crate::operator::reconcile::build::{GCS_PORT, head_address};
use crate::operator::reconcile::plan::{self as pod_plan, ObservedPod, PodState};
use crate::operator::reconcile::validate;
use crate::operator::resources::format_bundle;
use crate::operator::writer::Writer;

/// How often an unchanged report is sent to Ray anyway.
const REREPORT: Duration = Duration::from_secs(30);

/// How the autoscaler runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Off: clusters hold minWorkers and an unreachable GCS is no error.
    pub enabled: bool,
    /// Time between two reads of a cluster's GCS.
    pub interval: Duration,
    /// Time between two reads of a quiet cluster's GCS (see [`quiet`]): new
    /// demand waits half of it on average before it is seen.
    pub quiet_interval: Duration,
    /// How long a running head's GCS may stay unreachable before the cluster
    /// counts as failed (`AutoscalingExceptionRecovery`).
    pub grace: Duration,
    /// Read each head's GCS even with the autoscaler off, so `Running` means
    /// Ray runs. Off only where pods run no Ray (kwok).
    pub ray_health: bool,
    /// Honour `spec.gcsAddress` (a test aid). Off, the operator dials only
    /// each cluster's own head Service: a RayCluster's author must not pick
    /// the addresses the operator connects to (and sends tokens to).
    pub allow_gcs_address: bool,
}

impl Settings {
    /// What the reconciler reads of them.
    pub fn checks(&self) -> Checks {
        Checks {
            autoscaling: self.enabled,
            ray_health: self.ray_health,
            allow_gcs_address: self.allow_gcs_address,
        }
    }
}

/// What the tasks read and write: the term's caches, the board to the
/// reconciler, Events, and the client (for the clusters' token Secrets).
pub struct Deps {
    pub settings: Settings,
    pub caches: Arc<Caches>,
    pub board: Arc<Board>,
    pub events: Arc<Recorder>,
    pub writer: Arc<Writer>,
}

/// The running tasks, by cluster key (UID).
pub struct Autoscalers {
    deps: Arc<Deps>,
    tasks: Mutex<HashMap<String, AbortHandle>>,
}

impl Autoscalers {
    pub fn new(deps: Deps) -> Self {
        Autoscalers {
            deps: Arc::new(deps),
            tasks: Mutex::new(HashMap::new()),
        }
    }
}

impl AutoscalerTasks for Autoscalers {
    fn checks(&self) -> Checks {
        self.deps.settings.checks()
    }

    fn ensure(&self, cluster: &RayCluster) {
        let settings = &self.deps.settings;
        if !settings.enabled && !settings.ray_health {
            return;
        }
        let key = cluster_key(cluster);
        let mut tasks = self.tasks.lock().expect("tasks lock");
        if tasks.get(&key).is_some_and(|t| !t.is_finished()) {
            return;
        }
        let reference =
            ObjectRef::new(&cluster.name_any()).within(&cluster.namespace().unwrap_or_default());
        let handle = tokio::spawn(run_cluster(key.clone(), reference, self.deps.clone()));
        tasks.insert(key, handle.abort_handle());
    }

    fn stop(&self, key: &str) {
        if let Some(task) = self.tasks.lock().expect("tasks lock").remove(key) {
            task.abort();
        }
    }

    fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        self.tasks.lock().expect("tasks lock").retain(|k, task| {
            let kept = keep(k);
            if !kept {
                task.abort();
            }
            kept
        });
    }

    fn tracked(&self) -> usize {
        self.tasks.lock().expect("tasks lock").len()
    }
}

/// What one task remembers between rounds.
struct Round {
    key: String,
    reference: ObjectRef<ClusterObject>,
    namespace: String,
    name: String,
    client: Option<(String, Arc<GcsClient>)>,
    /// The head pod the client talks to, and since when it has not answered.
    head: Option<String>,
    unreachable_since: Option<Instant>,
    infeasible: Vec<String>,
    last_decision: Option<(String, String)>,
    last_error: Option<String>,
    report_version: i64,
    /// What Ray was last told (versions zeroed), at which state version and
    /// when: an unchanged report is not sent again, except every
    /// [`REREPORT`] and after the GCS restarted (its state version fell).
    last_report: Option<(AutoscalerReport, i64, Instant)>,
    /// The spec generation last checked, with what checking it gave: a
    /// round re-validates and re-parses the pod configs only when the spec
    /// changes, not every second of every cluster.
    checked: Option<(Option<i64>, Checked)>,
}

/// What a round reads of a spec that validated: where its GCS is, and its
/// autoscaling part. Not the validated spec itself: its parsed pod specs
/// would be ~10 KiB per idle cluster kept between rounds.
struct RoundSpec {
    /// The GCS's `host:port`.
    address: String,
    auth_token_secret: Option<String>,
    config: AutoscalerConfig,
}

type Checked = Arc<RoundSpec>;

async fn run_cluster(key: String, reference: ObjectRef<ClusterObject>, ctx: Arc<Deps>) {
    let mut round = Round::new(key, reference);
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        let started = tokio::time::Instant::now();
        let Some(object) = ctx.caches.clusters.get(&round.reference) else {
            break;
        };
        let Some(cluster) = object.cluster() else {
            break;
        };
        // Gone, going, or re-created under the same name (a new task serves that one).
        if cluster.metadata.deletion_timestamp.is_some() || cluster_key(cluster) != round.key {
            break;
        }
        // Boxed: the round's future (tonic calls included) is large and only
        // lives during the round, not in every idle task between rounds.
        let quiet = match Box::pin(round.step(&ctx, cluster)).await {
            // Said once per change, so a head that stays down does not flood the log.
            Err(message) if round.last_error.as_ref() != Some(&message) => {
                tracing::info!(cluster = %round.name, namespace = %round.namespace, "autoscaler waits: {message}");
                round.last_error = Some(message);
                false
            }
            Err(_) => false,
            Ok(quiet) => {
                round.last_error = None;
                quiet
            }
        };
        let settings = &ctx.settings;
        next = started
            + if quiet {
                settings.quiet_interval
            } else {
                settings.interval
            };
    }
    ctx.board.forget(&round.key);
}

impl Round {
    /// A task's first round of the cluster `reference` (keyed `key`): nothing
    /// remembered yet.
    fn new(key: String, reference: ObjectRef<ClusterObject>) -> Round {
        Round {
            namespace: reference.namespace.clone().unwrap_or_default(),
            name: reference.name.clone(),
            key,
            reference,
            client: None,
            head: None,
            unreachable_since: None,
            infeasible: Vec::new(),
            last_decision: None,
            last_error: None,
            report_version: 0,
            last_report: None,
            checked: None,
        }
    }

    /// The cluster's spec checked, from the last round when its generation
    /// has not changed. A spec that fails is checked again next round (the
    /// reconciler reports it).
    fn checked(
        &mut self,
        cluster: &RayCluster,
        allow_gcs_address: bool,
    ) -> Result<Checked, String> {
        let generation = cluster.metadata.generation;
        if let Some((seen, checked)) = &self.checked
            && *seen == generation
        {
            return Ok(checked.clone());
        }
        let validated = validate::validate(cluster).map_err(|e| e.to_string())?;
        let config = AutoscalerConfig::from_spec(&cluster.spec).map_err(|e| e.to_string())?;
        let address = match validated.gcs_address.clone() {
            Some(address) if allow_gcs_address => address,
            _ => format!("{}:{GCS_PORT}", head_address(&validated)),
        };
        let checked = Arc::new(RoundSpec {
            address,
            auth_token_secret: validated.auth_token_secret,
            config,
        });
        self.checked = Some((generation, checked.clone()));
        Ok(checked)
    }

    /// One read-plan-act round: whether the cluster is [`quiet`]. An `Err`
    /// is a reason to skip the round.
    async fn step(&mut self, ctx: &Deps, cluster: &RayCluster) -> Result<bool, String> {
        let checked = self.checked(cluster, ctx.settings.allow_gcs_address)?;
        let config = &checked.config;
        let pods = pod_plan::observed(&ctx.caches, &self.namespace, &self.name);
        let head = pods
            .iter()
            .find(|p| p.kind == NodeKind::Head && p.state == PodState::Running && !p.terminating);
        let Some(head) = head else {
            self.unreachable_since = None;
            return Err("no running head".into());
        };
        if self.head.as_deref() != Some(head.name.as_str()) {
            self.head = Some(head.name.clone());
            self.unreachable_since = None;
            self.client = None;
        }
        let client = self
            .client(ctx, &checked.address, checked.auth_token_secret.as_deref())
            .await?;
        let state = match client.cluster_state().await {
            Ok(state) => state,
            Err(e) if e.is_unimplemented() => {
                // Ray answers but has no autoscaler service: it runs, and the
                // cluster holds minWorkers rather than being restarted.
                self.unreachable_since = None;
                ctx.board.post(
                    &self.key,
                    &self.reference,
                    AutoscalerView {
                        ray: Some(RayHealth { joined: None }),
                        unsupported: Some(format!(
                            "this Ray has no autoscaler API (Ray 2.7 or newer has it); holding minWorkers: {e}"
                        )),
                        ..AutoscalerView::default()
                    },
                );
                return Ok(true);
            }
            Err(e) => {
                let since = *self.unreachable_since.get_or_insert_with(Instant::now);
                let mut view = AutoscalerView {
                    ray: None,
                    ..ctx.board.view(&self.key).unwrap_or_default()
                };
                if e.is_unreachable() && since.elapsed() >= ctx.settings.grace {
                    tracing::warn!(cluster = %self.name, namespace = %self.namespace, "the head's GCS has not answered for {:?}: {e}", since.elapsed());
                    view.unreachable_head = Some(head.name.clone());
                }
                ctx.board.post(&self.key, &self.reference, view);
                return Err(e.to_string());
            }
        };
        self.unreachable_since = None;
        let ray = Some(RayHealth {
            joined: Some(
                state
                    .nodes
                    .iter()
                    .filter(|n| !matches!(n.status, NodeStatus::Dead))
                    .map(|n| n.instance_id.clone())
                    .collect(),
            ),
        });
        if !ctx.settings.enabled {
            ctx.board.post(
                &self.key,
                &self.reference,
                AutoscalerView {
                    ray,
                    ..AutoscalerView::default()
                },
            );
            return Ok(true);
        }
        let workers: Vec<WorkerPod> = pods
            .iter()
            .filter(|p| p.kind == NodeKind::Worker && !p.terminating)
            .map(|p| WorkerPod {
                name: p.name.clone(),
                pod_type: p.pod_type.clone(),
                ready: p.ready,
            })
            .collect();
        let plan = planner::plan(config, &workers, &state);
        let scaling = self.drain(&client, &plan).await;
        self.report(ctx, cluster, &plan, &state, &pods).await;
        let quiet = quiet(&plan, &state, &workers);
        let status = self.status(&plan, &scaling);
        ctx.board.post(
            &self.key,
            &self.reference,
            AutoscalerView {
                scaling,
                unreachable_head: None,
                status,
                ray,
                unsupported: None,
            },
        );
        Ok(quiet)
    }

    async fn client(
        &mut self,
        ctx: &Deps,
        address: &str,
        secret: Option<&str>,
    ) -> Result<Arc<GcsClient>, String> {
        if self.client.as_ref().is_none_or(|(a, _)| a != address) {
            let mut options = GcsOptions::new(address);
            if let Some(secret) = secret {
                options.auth_token = Some(read_token(ctx, &self.namespace, secret).await?);
            }
            let client = GcsClient::new(options).map_err(|e| e.to_string())?;
            self.client = Some((address.to_string(), Arc::new(client)));
            // A new GCS (a new head, or another address) has been told nothing.
            self.last_report = None;
        }
        Ok(self.client.as_ref().expect("just set").1.clone())
    }

    /// Drains what the plan removes. A worker leaves only when Ray accepted its
    /// drain (or it never joined Ray); a refused drain keeps it counted, so
    /// the reconciler deletes no busy worker in its place.
    async fn drain(&self, client: &GcsClient, plan: &Plan) -> Scaling {
        let mut desired: BTreeMap<String, i32> = plan
            .desired
            .iter()
            .map(|(t, n)| (t.clone(), *n as i32))
            .collect();
        let mut remove = BTreeSet::new();
        for drain in &plan.drain {
            tracing::info!(cluster = %self.name, namespace = %self.namespace, "removing {} ({:?}, Ray node {:?})", drain.pod, drain.cause, drain.node_id);
            let accepted = match &drain.node_id {
                None => true,
                Some(node) => match client
                    .drain_node(
                        node,
                        drain.cause.ray_reason(),
                        &format!("ray-operator: {:?}", drain.cause),
                        0,
                    )
                    .await
                {
                    Ok(outcome) if outcome.accepted => true,
                    Ok(outcome) => {
                        tracing::info!(cluster = %self.name, namespace = %self.namespace, "Ray refused to drain {}: {}", drain.pod, outcome.rejection);
                        false
                    }
                    Err(e) => {
                        tracing::warn!(cluster = %self.name, namespace = %self.namespace, "draining {}: {e}", drain.pod);
                        false
                    }
                },
            };
            if accepted {
                remove.insert(drain.pod.clone());
            } else if let Some(count) = desired.get_mut(&drain.pod_type) {
                *count += 1;
            }
        }
        Scaling { desired, remove }
    }

    /// Tells Ray what is being done (for `ray status`) and reports demand
    /// that no pod type can hold, once each time it changes.
    async fn report(
        &mut self,
        ctx: &Deps,
        cluster: &RayCluster,
        plan: &Plan,
        state: &ClusterState,
        pods: &[ObservedPod],
    ) {
        let infeasible: Vec<String> = plan.infeasible.iter().map(format_bundle).collect();
        if infeasible != self.infeasible {
            if !infeasible.is_empty() {
                let message = format!(
                    "no pod type can ever hold this demand: {}",
                    infeasible.join(", ")
                );
                tracing::warn!(cluster = %self.name, namespace = %self.namespace, "{message}");
                ctx.events
                    .publish(cluster, "InfeasibleDemand", message, true)
                    .await;
            }
            self.infeasible = infeasible;
        }
        let joined: BTreeSet<&str> = state.nodes.iter().map(|n| n.instance_id.as_str()).collect();
        let mut report = AutoscalerReport {
            last_seen_version: 0,
            autoscaler_version: 0,
            launching: plan.launch.iter().map(|(t, n)| (t.clone(), *n)).collect(),
            pending_pods: pods
                .iter()
                .filter(|p| p.kind == NodeKind::Worker && !joined.contains(p.name.as_str()))
                .map(|p| (p.pod_type.clone(), p.name.clone()))
                .collect(),
            infeasible: plan.infeasible.clone(),
        };
        let told = self
            .last_report
            .as_ref()
            .is_some_and(|(last, version, at)| {
                *last == report && state.version >= *version && at.elapsed() < REREPORT
            });
        let Some((_, client)) = &self.client else {
            return;
        };
        if told {
            return;
        }
        let content = report.clone();
        self.report_version += 1;
        report.last_seen_version = state.version;
        report.autoscaler_version = self.report_version;
        match client.report_state(&report).await {
            Ok(()) => self.last_report = Some((content, state.version, Instant::now())),
            Err(e) => {
                tracing::debug!(cluster = %self.name, namespace = %self.namespace, "reporting to Ray: {e}");
            }
        }
    }

    /// The autoscaler part of the RayCluster's status. The decision and its
    /// time change only when something is launched or removed, so a quiet
    /// cluster's status is not rewritten every round.
    fn status(&mut self, plan: &Plan, scaling: &Scaling) -> AutoscalerStatus {
        let mut parts: Vec<String> = plan
            .launch
            .iter()
            .map(|(t, n)| format!("launch {n} x {t}"))
            .collect();
        parts.extend(scaling.remove.iter().map(|pod| format!("remove {pod}")));
        if !parts.is_empty() {
            let now = crate::api::RayClusterStatus::now();
            let decision = parts.join(", ");
            tracing::info!(cluster = %self.name, namespace = %self.namespace, "autoscaler: {decision}");
            self.last_decision = Some((decision, now.to_string()));
        }
        AutoscalerStatus {
            pending_demand: plan.pending_summary.clone(),
            infeasible_demand: self.infeasible.clone(),
            last_decision: self.last_decision.as_ref().map(|(d, _)| d.clone()),
            last_decision_time: self.last_decision.as_ref().map(|(_, t)| t.clone()),
        }
    }
}

/// Nothing asked for and nothing under way: no queued demand, nothing to
/// launch or drain, no Ray node draining and every worker pod joined. Such a
/// cluster is read every `quiet_interval`; any other every `interval`.
fn quiet(plan: &Plan, state: &ClusterState, workers: &[WorkerPod]) -> bool {
    plan.launch.is_empty()
        && plan.drain.is_empty()
        && state.pending.is_empty()
        && state.gangs.is_empty()
        && state
            .nodes
            .iter()
            .all(|n| !matches!(n.status, NodeStatus::Draining))
        && workers
            .iter()
            .all(|w| state.nodes.iter().any(|n| n.instance_id == w.name))
}

/// The Ray token from key `auth_token` of a Secret in the cluster's namespace.
async fn read_token(ctx: &Deps, namespace: &str, secret: &str) -> Result<String, String> {
    let api: Api<Secret> = Api::namespaced(ctx.writer.client(), namespace);
    let secret_value = api
        .get(secret)
        .await
        .map_err(|e| format!("spec.authTokenSecret {secret}: {e}"))?;
    let bytes = secret_value
        .data
        .and_then(|mut d| d.remove("auth_token"))
        .ok_or_else(|| format!("spec.authTokenSecret {secret}: no key auth_token"))?;
    String::from_utf8(bytes.0)
        .map(|t| t.trim().to_string())
        .map_err(|_| format!("spec.authTokenSecret {secret}: auth_token is not UTF-8"))
}

#[cfg(test)]
#[path = "round_tests.rs"]
mod round_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::autoscaler::gcs::RayNode;
    use crate::operator::resources::bundle;

    fn node(instance_id: &str, status: NodeStatus) -> RayNode {
        RayNode {
            node_id: "ab".into(),
            instance_id: instance_id.into(),
            node_type: "cpu".into(),
            ip: "10.0.0.1".into(),
            total: bundle([("CPU", 4.0)]),
            available: bundle([("CPU", 4.0)]),
            status,
            idle_ms: 0,
        }
    }

    fn worker(name: &str) -> WorkerPod {
        WorkerPod {
            name: name.into(),
            pod_type: "cpu".into(),
            ready: true,
        }
    }

    #[test]
    fn only_a_cluster_with_nothing_to_do_is_quiet() {
        let plan = Plan::default();
        let state = ClusterState {
            nodes: vec![node("head", NodeStatus::Idle), node("w1", NodeStatus::Idle)],
            ..Default::default()
        };
        assert!(quiet(&plan, &state, &[worker("w1")]));
        // request_resources alone (already satisfied) asks for nothing more.
        let constrained = ClusterState {
            constraints: vec![bundle([("CPU", 1.0)])],
            ..state.clone()
        };
        assert!(quiet(&plan, &constrained, &[worker("w1")]));

        // A worker pod not yet a Ray node.
        assert!(!quiet(&plan, &state, &[worker("w1"), worker("w2")]));
        // Queued demand, even if nothing can be launched for it.
        let demand = ClusterState {
            pending: vec![(bundle([("CPU", 1.0)]), 1)],
            ..state.clone()
        };
        assert!(!quiet(&plan, &demand, &[worker("w1")]));
        // A node draining.
        let draining = ClusterState {
            nodes: vec![node("w1", NodeStatus::Draining)],
            ..state.clone()
        };
        assert!(!quiet(&plan, &draining, &[worker("w1")]));
        // Pods to launch.
        let launch = Plan {
            launch: [("cpu".to_string(), 1)].into(),
            ..Plan::default()
        };
        assert!(!quiet(&launch, &state, &[worker("w1")]));
    }
}
