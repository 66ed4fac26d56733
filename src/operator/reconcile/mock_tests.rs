//! `reconcile` against a mock API server ([`mock_api`]): each test states
//! the requests one reconcile sends, in order, and what the API server
//! answers; an unexpected request, or an expected one that never comes,
//! fails it.

use std::sync::{Arc, Mutex};

use http::Method;
use kube::Client;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

use super::tests::raw;
use super::validate::{ValidatedCluster, validate};
use super::{Reconciler, build, reconcile, status};
use crate::api::{RayCluster, RayClusterStatus};
use crate::naming::{self, NodeKind};
use crate::operator::board::{AutoscalerTasks, Board, Checks};
use crate::operator::cache::pod::CachedPod;
use crate::operator::cache::{CacheWriters, Caches};
use crate::operator::events::Recorder;
use crate::operator::mock_api::{self, ApiServer, Received, WAIT, created, failure};
use crate::operator::scope::Scope;
use crate::operator::writer::Writer;

const PODS: &str = "/api/v1/namespaces/ray/pods";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ray/events";
const STATUS: &str = "/apis/cluster.ray.io/v1/namespaces/ray/rayclusters/demo/status";

/// Autoscaler tasks that only record which clusters were asked for.
#[derive(Default)]
struct Tasks(Mutex<Vec<String>>);

impl AutoscalerTasks for Tasks {
    fn checks(&self) -> Checks {
        // As on kwok: running pods are enough, no autoscaler.
        Checks {
            autoscaling: false,
            ray_health: false,
            allow_gcs_address: false,
        }
    }
    fn ensure(&self, cluster: &RayCluster) {
        let uid = cluster.metadata.uid.clone().unwrap_or_default();
        self.0.lock().unwrap().push(uid);
    }
    fn stop(&self, _: &str) {}
    fn retain(&self, _: &dyn Fn(&str) -> bool) {}
    fn tracked(&self) -> usize {
        0
    }
}

/// A namespaced operator's reconciler, with empty caches, talking to a mock.
struct Fixture {
    reconciler: Reconciler,
    writers: CacheWriters,
    tasks: Arc<Tasks>,
    api: Option<ApiServer>,
}

impl Fixture {
    fn new() -> Fixture {
        let (client, api): (Client, ApiServer) = mock_api::pair();
        let (caches, writers) = Caches::new();
        let writer = Arc::new(Writer::new(
            client,
            crate::operator::writer::WRITES_IN_FLIGHT,
            Default::default(),
        ));
        let tasks = Arc::new(Tasks::default());
        let reconciler = Reconciler {
            caches: Arc::new(caches),
            events: Arc::new(Recorder::new(writer.clone(), naming::FIELD_MANAGER, "test")),
            writer,
            board: Arc::new(Board::new().0),
            autoscalers: tasks.clone(),
            scope: Scope::Namespace("ray".into()),
            metrics: Default::default(),
            expectations: Default::default(),
            backoffs: Default::default(),
        };
        Fixture {
            reconciler,
            writers,
            tasks,
            api: Some(api),
        }
    }

    /// Puts a pod into the pod cache, as the pod watch would.
    fn cache_pod(&mut self, pod: CachedPod) {
        self.reconciler.caches.pods.observe(&Event::Apply(pod));
    }

    /// Puts the head Service as applied (the server-side apply body) into
    /// the Service cache.
    fn cache_service(&mut self, applied: &Received) {
        let service = serde_json::from_value(applied.body.clone()).expect("a Service");
        self.writers
            .services
            .apply_watcher_event(&Event::Apply(service));
    }

    /// Runs one reconcile of `cluster` while `serve` plays the API server.
    async fn reconcile<T>(
        &mut self,
        cluster: &RayCluster,
        serve: impl AsyncFnOnce(&mut ApiServer) -> T,
    ) -> (Result<kube::runtime::controller::Action, super::Error>, T) {
        let mut api = self.api.take().expect("the server");
        let run = tokio::time::timeout(WAIT, reconcile(cluster, &self.reconciler));
        let (result, served) = tokio::join!(run, serve(&mut api));
        self.api = Some(api);
        (result.expect("the reconcile ends"), served)
    }

    async fn done(mut self) {
        self.api.take().unwrap().expect_nothing_more().await;
    }
}

fn head_service_path(c: &ValidatedCluster) -> String {
    let name = build::head_service(c).metadata.name.unwrap();
    format!("/api/v1/namespaces/ray/services/{name}")
}

/// A pod of the cluster as the cache holds it, `Running` and ready.
fn running(c: &ValidatedCluster, kind: NodeKind, type_index: usize, name: &str) -> CachedPod {
    let pod_type = match kind {
        NodeKind::Head => &c.head,
        NodeKind::Worker => &c.workers[type_index],
    };
    let mut pod = serde_json::to_value(build::pod(c, pod_type, kind, name)).unwrap();
    pod["metadata"]["uid"] = json!(format!("uid-{name}"));
    pod["metadata"]["creationTimestamp"] = json!("2026-12-01T00:00:00Z");
    pod["status"] =
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
    serde_json::from_value(pod).unwrap()
}

fn echo(received: &Received) -> (u16, Value) {
    (200, received.body.clone())
}

fn label<'a>(received: &'a Received, key: &str) -> &'a str {
    received.body["metadata"]["labels"][key]
        .as_str()
        .unwrap_or_default()
}

fn event_reason(received: &Received) -> &str {
    received.body["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_new_cluster_gets_its_service_head_event_and_status_then_nothing_more() {
    let (cluster, c) = (raw(), validate(&raw()).unwrap());
    let mut f = Fixture::new();
    let service = head_service_path(&c);
    let (result, (applied, head, event, status)) = f
        .reconcile(&cluster, async |api: &mut ApiServer| {
            let applied = api.expect(Method::PATCH, &service, 200, json!({})).await;
            let head = api.next_created(PODS).await;
            let event = api.expect(Method::POST, EVENTS, 201, json!({})).await;
            let status = api.expect(Method::PATCH, STATUS, 200, json!({})).await;
            (applied, head, event, status)
        })
        .await;
    result.expect("the reconcile succeeds");
    assert!(
        applied.query.contains("fieldManager=ray-operator"),
        "{applied:?}"
    );
    assert_eq!(label(&head, naming::NODE_KIND), "head");
    assert_eq!(event_reason(&event), "CreatedHead");
    assert_eq!(status.body["status"]["phase"], "Updating");
    assert!(
        f.tasks.0.lock().unwrap().is_empty(),
        "no task before the head is ready"
    );

    // The watch brings the Service; the head is still expected (Pending).
    f.cache_service(&applied);
    let (result, ()) = f.reconcile(&cluster, async |_: &mut ApiServer| {}).await;
    result.expect("the second reconcile succeeds");
    f.done().await;
}

#[tokio::test]
async fn a_ready_head_gets_the_minimum_workers_and_an_autoscaler_task() {
    let (cluster, c) = (raw(), validate(&raw()).unwrap());
    let mut f = Fixture::new();
    f.cache_pod(running(&c, NodeKind::Head, 0, "demo-head-aaaaa"));
    let service = head_service_path(&c);
    let (result, (workers, event)) = f
        .reconcile(&cluster, async |api: &mut ApiServer| {
            api.expect(Method::PATCH, &service, 200, json!({})).await;
            let workers = api.expect_each(Method::POST, &[PODS, PODS], created).await;
            let event = api.expect(Method::POST, EVENTS, 201, json!({})).await;
            api.expect(Method::PATCH, STATUS, 200, json!({})).await;
            (workers, event)
        })
        .await;
    result.expect("the reconcile succeeds");
    for worker in &workers {
        assert_eq!(label(worker, naming::NODE_KIND), "worker");
        assert_eq!(label(worker, naming::POD_TYPE), "cpuWorker");
    }
    assert_eq!(event_reason(&event), "CreatedWorkers");
    assert_eq!(*f.tasks.0.lock().unwrap(), ["u-1"]);
    f.done().await;
}

#[tokio::test]
async fn workers_of_a_changed_pod_type_are_deleted_and_created_anew() {
    let (cluster, c) = (raw(), validate(&raw()).unwrap());
    let mut f = Fixture::new();
    f.cache_pod(running(&c, NodeKind::Head, 0, "demo-head-aaaaa"));
    for name in ["demo-cpu-worker-old1", "demo-cpu-worker-old2"] {
        let mut pod = running(&c, NodeKind::Worker, 0, name);
        let labels = pod.metadata.labels.as_mut().unwrap();
        labels.insert(naming::LAUNCH_CONFIG.into(), "an-older-config".into());
        f.cache_pod(pod);
    }
    let service = head_service_path(&c);
    let old = [
        "/api/v1/namespaces/ray/pods/demo-cpu-worker-old1",
        "/api/v1/namespaces/ray/pods/demo-cpu-worker-old2",
    ];
    let (result, (deleted, events)) = f
        .reconcile(&cluster, async |api: &mut ApiServer| {
            api.expect(Method::PATCH, &service, 200, json!({})).await;
            let deleted = api.expect_each(Method::DELETE, &old, echo).await;
            api.expect_each(Method::POST, &[PODS, PODS], created).await;
            let mut events = Vec::new();
            for _ in 0..2 {
                let event = api.expect(Method::POST, EVENTS, 201, json!({})).await;
                events.push(event_reason(&event).to_string());
            }
            api.expect(Method::PATCH, STATUS, 200, json!({})).await;
            (deleted, events)
        })
        .await;
    result.expect("the reconcile succeeds");
    for delete in &deleted {
        let name = delete.path.rsplit('/').next().unwrap();
        assert_eq!(
            delete.body["preconditions"]["uid"],
            format!("uid-{name}"),
            "only the pod that was planned for is deleted"
        );
    }
    assert_eq!(events, ["ReplacingWorkers", "CreatedWorkers"]);
    f.done().await;
}

#[tokio::test]
async fn a_lost_head_restarts_the_cluster_and_counts_the_restart() {
    let c = validate(&raw()).unwrap();
    let mut cluster = raw();
    // The status of a cluster that had a head; the cache holds no pod.
    cluster.status = Some(RayClusterStatus {
        head_launch_config: Some(c.head.launch_hash.clone()),
        ..RayClusterStatus::default()
    });
    let mut f = Fixture::new();
    let service = head_service_path(&c);
    let (result, (head, event, status)) = f
        .reconcile(&cluster, async |api: &mut ApiServer| {
            api.expect(Method::PATCH, &service, 200, json!({})).await;
            let head = api.next_created(PODS).await;
            let event = api.expect(Method::POST, EVENTS, 201, json!({})).await;
            let status = api.expect(Method::PATCH, STATUS, 200, json!({})).await;
            (head, event, status)
        })
        .await;
    result.expect("the reconcile succeeds");
    assert_eq!(label(&head, naming::NODE_KIND), "head");
    assert_eq!(event_reason(&event), "HeadFailed");
    assert_eq!(event.body["type"], "Warning");
    assert_eq!(status.body["status"]["autoscalerRetries"], 1);
    assert_eq!(
        status.body["status"]["phase"],
        "AutoscalingExceptionRecovery"
    );
    f.done().await;
}

#[tokio::test]
async fn a_rejected_head_becomes_a_condition_and_one_event_and_is_not_sent_again() {
    let (cluster, c) = (raw(), validate(&raw()).unwrap());
    let mut f = Fixture::new();
    let service = head_service_path(&c);
    let (result, (applied, event, status)) = f
        .reconcile(&cluster, async |api: &mut ApiServer| {
            let applied = api.expect(Method::PATCH, &service, 200, json!({})).await;
            let (code, body) = failure(
                422,
                "Invalid",
                "Pod \"demo-head\" is invalid: spec.containers[0].image: Required value",
            );
            api.expect(Method::POST, PODS, code, body).await;
            let event = api.expect(Method::POST, EVENTS, 201, json!({})).await;
            let status = api.expect(Method::PATCH, STATUS, 200, json!({})).await;
            (applied, event, status)
        })
        .await;
    result.expect("a rejection is reported, not retried");
    assert_eq!(event_reason(&event), status::REJECTED);
    let written = &status.body["status"];
    assert_eq!(written["phase"], "Error");
    assert!(
        written["headLaunchConfig"].is_null(),
        "a head never created is not recorded: {written}"
    );
    let valid = written["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Valid")
        .expect("a Valid condition");
    assert_eq!(
        (&valid["status"], &valid["reason"]),
        (&json!("False"), &json!(status::REJECTED))
    );

    // Nothing is sent again for this spec: no pod, no Event, no status.
    f.cache_service(&applied);
    let (result, ()) = f.reconcile(&cluster, async |_: &mut ApiServer| {}).await;
    result.expect("the second reconcile succeeds");
    f.done().await;
}

#[tokio::test]
async fn a_server_error_is_transient_and_writes_no_event_nor_status() {
    let (cluster, c) = (raw(), validate(&raw()).unwrap());
    let mut f = Fixture::new();
    let service = head_service_path(&c);
    let (result, ()) = f
        .reconcile(&cluster, async |api: &mut ApiServer| {
            api.expect(Method::PATCH, &service, 200, json!({})).await;
            let (code, body) = failure(500, "InternalError", "etcd is away");
            api.expect(Method::POST, PODS, code, body).await;
        })
        .await;
    let error = result.expect_err("the reconcile fails");
    assert_eq!(error.class(), super::error::Class::Transient, "{error}");
    f.done().await;
}

impl ApiServer {
    /// Expects a pod creation next and answers it as created.
    async fn next_created(&mut self, path: &str) -> Received {
        let received = self.expect_each(Method::POST, &[path], created).await;
        received.into_iter().next().unwrap()
    }
}
