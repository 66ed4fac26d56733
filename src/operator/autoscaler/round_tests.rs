//! One autoscaler round ([`Round::step`]) against a fake GCS ([`FakeGcs`])
//! and the mock API server ([`mock_api`]): scale up for demand, drain an
//! idle worker (and the reconciler deletes that one), keep a worker Ray
//! refused to drain, and report infeasible demand once. Each test states the
//! API requests it expects, in order; an unexpected one, or an expected one
//! that never comes, fails it.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

use super::super::fake_gcs::{FakeGcs, Node, Setup};
use super::super::proto::autoscaler as pb;
use super::*;
use crate::naming::{self, NodeKind};
use crate::operator::board::{AutoscalerTasks, Checks};
use crate::operator::cache::pod::CachedPod;
use crate::operator::mock_api::{self, ApiServer, Received, WAIT};
use crate::operator::reconcile::validate::ValidatedCluster;
use crate::operator::reconcile::{self, Reconciler, build};
use crate::operator::resources::bundle;
use crate::operator::scope::Scope;

const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ray/events";
const STATUS: &str = "/apis/cluster.ray.io/v1/namespaces/ray/rayclusters/demo/status";
const HEAD: &str = "demo-head-aaaaa";
/// Two workers: the older idle, the newer busy. Without the autoscaler's
/// `remove`, a shrinking type loses its newest pod: the busy one.
const IDLE: &str = "demo-cpu-idle";
const BUSY: &str = "demo-cpu-busy";

/// A cluster whose `cpu` workers (2 CPUs each, none required) may go as
/// soon as they are idle, its GCS at `gcs`.
fn cluster(gcs: &str) -> RayCluster {
    let yaml = format!(
        r#"
apiVersion: cluster.ray.io/v1
kind: RayCluster
metadata: {{name: demo, namespace: ray, uid: u-1, generation: 1}}
spec:
  headPodType: head
  gcsAddress: "{gcs}"
  idleTimeoutMinutes: 0
  podTypes:
  - name: head
    rayResources: {{CPU: 0}}
    podConfig:
      spec:
        containers:
        - {{name: ray-node, image: rayproject/ray:2.47.1, resources: {{limits: {{cpu: 1, memory: 1Gi}}}}}}
  - name: cpu
    minWorkers: 0
    maxWorkers: 5
    podConfig:
      spec:
        containers:
        - {{name: ray-node, image: rayproject/ray:2.47.1, resources: {{limits: {{cpu: 2}}}}}}
"#
    );
    serde_yaml_ng::from_str(&yaml).expect("the fixture parses")
}

/// The reconciler's view of the tasks: the round's settings, and no task
/// started (the test runs the round itself).
struct NoTasks(Checks);

impl AutoscalerTasks for NoTasks {
    fn checks(&self) -> Checks {
        self.0
    }
    fn ensure(&self, _: &RayCluster) {}
    fn stop(&self, _: &str) {}
    fn retain(&self, _: &dyn Fn(&str) -> bool) {}
    fn tracked(&self) -> usize {
        0
    }
}

/// A cluster with a running head, a fake GCS, a round of it, and the mock
/// API server behind the round's (and a reconciler's) client.
struct Fixture {
    gcs: FakeGcs,
    cluster: RayCluster,
    validated: ValidatedCluster,
    deps: Deps,
    round: Round,
    api: Option<ApiServer>,
}

impl Fixture {
    /// The head pod cached and a Ray node; `setup`'s nodes come after it.
    async fn new(mut setup: Setup) -> Fixture {
        setup
            .nodes
            .insert(0, Node::running(HEAD, "head", bundle([])));
        let gcs = FakeGcs::serve(setup).await;
        let cluster = cluster(&gcs.address);
        let validated = validate::validate(&cluster).expect("the fixture is valid");
        let (client, api) = mock_api::pair();
        let (caches, _writers) = Caches::new();
        let writer = Arc::new(Writer::new(
            client,
            crate::operator::writer::WRITES_IN_FLIGHT,
            Default::default(),
        ));
        let deps = Deps {
            settings: Settings {
                enabled: true,
                interval: Duration::from_secs(1),
                quiet_interval: Duration::from_secs(1),
                grace: Duration::from_secs(60),
                ray_health: true,
                allow_gcs_address: true,
            },
            caches: Arc::new(caches),
            board: Arc::new(Board::new().0),
            events: Arc::new(Recorder::new(writer.clone(), naming::FIELD_MANAGER, "test")),
            writer,
        };
        let reference = ObjectRef::new(&cluster.name_any()).within("ray");
        let mut f = Fixture {
            gcs,
            round: Round::new(cluster_key(&cluster), reference),
            cluster,
            validated,
            deps,
            api: Some(api),
        };
        f.cache_pod(NodeKind::Head, HEAD, "2026-12-01T00:00:00Z");
        f
    }

    /// With the two workers: pods, and Ray nodes (the idle one idle for a minute).
    async fn with_workers(accept_drains: bool) -> Fixture {
        let cpu = || bundle([("CPU", 2.0)]);
        let busy = Node {
            available: bundle([("CPU", 1.0)]),
            ..Node::running(BUSY, "cpu", cpu())
        };
        let mut f = Fixture::new(Setup {
            nodes: vec![Node::running(IDLE, "cpu", cpu()).idle(60_000), busy],
            accept_drains,
            ..Setup::default()
        })
        .await;
        f.cache_pod(NodeKind::Worker, IDLE, "2026-12-01T00:01:00Z");
        f.cache_pod(NodeKind::Worker, BUSY, "2026-12-01T00:02:00Z");
        f
    }

    /// Puts a running, ready pod of the cluster into the pod cache, as the
    /// pod watch would.
    fn cache_pod(&mut self, kind: NodeKind, name: &str, created: &str) {
        let c = &self.validated;
        let pod_type = match kind {
            NodeKind::Head => &c.head,
            NodeKind::Worker => &c.workers[0],
        };
        let mut pod = serde_json::to_value(build::pod(c, pod_type, kind, name)).unwrap();
        pod["metadata"]["uid"] = json!(format!("uid-{name}"));
        pod["metadata"]["creationTimestamp"] = json!(created);
        pod["status"] =
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
        let pod: CachedPod = serde_json::from_value(pod).unwrap();
        self.deps.caches.pods.observe(&Event::Apply(pod));
    }

    /// Runs one round while `serve` plays the API server.
    async fn step<T>(&mut self, serve: impl AsyncFnOnce(&mut ApiServer) -> T) -> T {
        let run = self.round.step(&self.deps, &self.cluster);
        let (result, served) = serving(&mut self.api, run, serve).await;
        result.expect("the round succeeds");
        served
    }

    /// Runs one reconcile of the cluster, reading the same caches and board,
    /// while `serve` plays the API server.
    async fn reconcile<T>(&mut self, serve: impl AsyncFnOnce(&mut ApiServer) -> T) -> T {
        let deps = &self.deps;
        let reconciler = Reconciler {
            caches: deps.caches.clone(),
            writer: deps.writer.clone(),
            events: deps.events.clone(),
            board: deps.board.clone(),
            autoscalers: Arc::new(NoTasks(deps.settings.checks())),
            scope: Scope::Namespace("ray".into()),
            metrics: Default::default(),
            expectations: Default::default(),
            backoffs: Default::default(),
        };
        let run = reconcile::reconcile(&self.cluster, &reconciler);
        let (result, served) = serving(&mut self.api, run, serve).await;
        result.expect("the reconcile succeeds");
        served
    }

    /// What the round posted for the reconciler.
    fn view(&self) -> AutoscalerView {
        self.deps
            .board
            .view(&self.round.key)
            .expect("a posted view")
    }

    async fn done(mut self) {
        self.api.take().unwrap().expect_nothing_more().await;
    }
}

/// Runs `stage` (within [`WAIT`]) while `serve` plays the API server; a
/// request after `serve` is done, before `stage` is, fails the test.
async fn serving<R, T>(
    api: &mut Option<ApiServer>,
    stage: impl Future<Output = R>,
    serve: impl AsyncFnOnce(&mut ApiServer) -> T,
) -> (R, T) {
    let mut server = api.take().expect("the server");
    let (ended, end) = tokio::sync::oneshot::channel();
    let run = async {
        let result = tokio::time::timeout(WAIT, stage).await;
        let _ = ended.send(());
        result.expect("the stage ends")
    };
    let play = async {
        let served = serve(&mut server).await;
        server
            .nothing_until(async { end.await.unwrap_or(()) })
            .await;
        served
    };
    let out = tokio::join!(run, play);
    *api = Some(server);
    out
}

fn ok(received: &Received) -> (u16, Value) {
    (200, received.body.clone())
}

fn pod_path(name: &str) -> String {
    format!("/api/v1/namespaces/ray/pods/{name}")
}

fn head_service_path(c: &ValidatedCluster) -> String {
    let name = build::head_service(c).metadata.name.unwrap();
    format!("/api/v1/namespaces/ray/services/{name}")
}

#[tokio::test]
async fn demand_raises_the_desired_workers_and_ray_is_told_of_the_launch() {
    let gone = Node::running("demo-cpu-gone", "cpu", bundle([("CPU", 2.0)]));
    let mut f = Fixture::new(Setup {
        nodes: vec![gone.with_status(NodeStatus::Dead)],
        pending: vec![(bundle([("CPU", 2.0)]), 3)],
        ..Setup::default()
    })
    .await;
    // No API request: the round only posts its view.
    f.step(async |_: &mut ApiServer| {}).await;
    let view = f.view();
    assert_eq!(view.scaling.desired, [("cpu".to_string(), 3)].into());
    assert!(view.scaling.remove.is_empty());
    let joined = view.ray.and_then(|r| r.joined);
    assert_eq!(
        joined,
        Some([HEAD.to_string()].into()),
        "a dead node is gone"
    );
    assert_eq!(view.status.last_decision.as_deref(), Some("launch 3 x cpu"));
    assert_eq!(view.status.pending_demand, ["3 x {CPU: 2}"]);
    let reports = f.gcs.reports();
    let [report] = reports.as_slice() else {
        panic!("one report to Ray, got {reports:?}");
    };
    assert_eq!(
        report.pending_instance_requests,
        [pb::PendingInstanceRequest {
            instance_type_name: "cpu".into(),
            ray_node_type_name: "cpu".into(),
            count: 3,
            request_ts: 0,
        }]
    );
    assert!(f.gcs.drains().is_empty());
    f.done().await;
}

#[tokio::test]
async fn an_idle_worker_is_drained_and_the_reconciler_deletes_exactly_it() {
    let mut f = Fixture::with_workers(true).await;
    // The round: no API request.
    f.step(async |_: &mut ApiServer| {}).await;
    let drains = f.gcs.drains();
    assert_eq!(
        drains
            .iter()
            .map(|d| (d.pod.as_str(), d.reason))
            .collect::<Vec<_>>(),
        [(IDLE, pb::DrainNodeReason::IdleTermination)]
    );
    let scaling = f.view().scaling;
    assert_eq!(scaling.remove, [IDLE.to_string()].into());
    assert_eq!(scaling.desired, [("cpu".to_string(), 1)].into());

    // The reconcile: the head Service, the drained pod's DELETE, its Event, the status.
    let service = head_service_path(&f.validated);
    let (deleted, event) = f
        .reconcile(async |api: &mut ApiServer| {
            api.expect(Method::PATCH, &service, 200, json!({})).await;
            let deleted = api
                .expect_each(Method::DELETE, &[&pod_path(IDLE)], ok)
                .await;
            let event = api.expect(Method::POST, EVENTS, 201, json!({})).await;
            api.expect(Method::PATCH, STATUS, 200, json!({})).await;
            (deleted, event)
        })
        .await;
    assert_eq!(
        deleted[0].body["preconditions"]["uid"],
        format!("uid-{IDLE}")
    );
    assert_eq!(event.body["reason"], "DeletedWorkers");
    f.done().await;
}

#[tokio::test]
async fn a_worker_ray_refuses_to_drain_is_kept() {
    let mut f = Fixture::with_workers(false).await;
    // The round: no API request.
    f.step(async |_: &mut ApiServer| {}).await;
    let drains = f.gcs.drains();
    assert_eq!(
        drains.iter().map(|d| d.pod.as_str()).collect::<Vec<_>>(),
        [IDLE],
        "the drain was asked for"
    );
    let view = f.view();
    assert!(view.scaling.remove.is_empty(), "{:?}", view.scaling);
    assert_eq!(view.scaling.desired, [("cpu".to_string(), 2)].into());
    assert_eq!(view.status.last_decision, None);

    // The reconcile deletes no worker: the head Service and the status only.
    let service = head_service_path(&f.validated);
    f.reconcile(async |api: &mut ApiServer| {
        api.expect(Method::PATCH, &service, 200, json!({})).await;
        api.expect(Method::PATCH, STATUS, 200, json!({})).await;
    })
    .await;
    f.done().await;
}

#[tokio::test]
async fn infeasible_demand_is_one_warning_event_until_it_changes() {
    let mut f = Fixture::new(Setup {
        pending: vec![(bundle([("GPU", 8.0)]), 1)],
        ..Setup::default()
    })
    .await;
    // The first round: one Warning Event.
    let event = f
        .step(async |api: &mut ApiServer| api.expect(Method::POST, EVENTS, 201, json!({})).await)
        .await;
    assert_eq!(
        (&event.body["type"], &event.body["reason"]),
        (&json!("Warning"), &json!("InfeasibleDemand"))
    );
    let note = event.body["note"].as_str().unwrap_or_default();
    assert!(note.contains("GPU: 8"), "{note}");
    let view = f.view();
    assert_eq!(view.status.infeasible_demand, ["{GPU: 8}"]);
    assert!(view.scaling.desired.values().all(|n| *n == 0));

    // The second round, the same demand: no request at all.
    f.step(async |_: &mut ApiServer| {}).await;
    assert_eq!(
        f.gcs.reports().len(),
        1,
        "Ray is told what changed, not every round"
    );

    // Other infeasible demand: said again (a repeat counts up the first Event).
    f.gcs
        .set(|s| s.pending = vec![(bundle([("GPU", 16.0)]), 1)]);
    let name = event.body["metadata"]["name"].as_str().unwrap().to_string();
    let repeat = format!("{EVENTS}/{name}");
    f.step(async |api: &mut ApiServer| api.expect(Method::PATCH, &repeat, 200, json!({})).await)
        .await;
    assert_eq!(f.view().status.infeasible_demand, ["{GPU: 16}"]);
    let reports = f.gcs.reports();
    assert_eq!(reports.len(), 2, "the new demand is reported");
    assert!(reports[1].autoscaler_state_version > reports[0].autoscaler_state_version);
    f.done().await;
}
