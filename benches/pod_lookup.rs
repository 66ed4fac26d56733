//! `make bench-lookup`: the cost of reading one cluster's pods from the cache
//! (what every reconcile and every autoscaler round of that cluster does) as
//! the number of other clusters grows, through the pod index
//! (`reconcile::plan::observed`) and by scanning every cached pod (what it
//! replaced); and the whole of a reconcile's plan (validate, read the pods,
//! plan) and of an autoscaler round's (read the pods, plan against an idle
//! Ray) for one steady cluster among them. Clusters of 1 head + 3 workers;
//! prints a Markdown table. BENCH_CLUSTERS (comma-separated, default
//! 100,1000,10000) sets the sizes.

use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::runtime::reflector::Store;
use kube::runtime::watcher::Event;
use ray_operator::api::{RayCluster, RayClusterStatus};
use ray_operator::naming;
use ray_operator::operator::autoscaler::gcs::{ClusterState, NodeStatus, RayNode};
use ray_operator::operator::autoscaler::planner::{self, AutoscalerConfig, WorkerPod};
use ray_operator::operator::cache::Caches;
use ray_operator::operator::cache::pod::{CachedPod, CachedPodCondition, CachedPodStatus};
use ray_operator::operator::reconcile::plan::{self, ObservedPod, PlanInput, RayCheck, observed};
use ray_operator::operator::reconcile::validate::{self, ValidatedCluster};

const NAMESPACE: &str = "bench";
/// Lookups timed per row.
const LOOKUPS: u32 = 2_000;

/// Every cluster's spec: a head type and a worker type of 3 workers, as
/// the chart makes it (pod configs trimmed to one container).
fn spec(name: &str) -> RayCluster {
    let pod = |cpu: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{
            "name": "ray-node", "image": "rayproject/ray:2.47.1",
            "resources": {"requests": {"cpu": cpu, "memory": "1Gi"},
                          "limits": {"cpu": cpu, "memory": "1Gi"}}}]}})
    };
    serde_json::from_value(serde_json::json!({
        "apiVersion": "cluster.ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": "u", "generation": 1},
        "spec": {
            "maxWorkers": 3,
            "headPodType": "rayHeadType",
            "podTypes": [
                {"name": "rayHeadType", "minWorkers": 0, "maxWorkers": 0, "podConfig": pod("1")},
                {"name": "rayWorkerType", "minWorkers": 3, "maxWorkers": 3, "podConfig": pod("1")},
            ],
        },
    }))
    .expect("the bench's RayCluster")
}

/// The launch hashes of the head and worker types, so every pod is current.
fn hashes() -> (String, String) {
    let validated = validate::validate(&spec("c0")).expect("a valid spec");
    (
        validated.head.launch_hash.clone(),
        validated.workers[0].launch_hash.clone(),
    )
}

fn pod(cluster: usize, node: &str, index: usize, hash: &str) -> CachedPod {
    let name = format!("c{cluster}-ray-{node}-type-{index}");
    let pod_type = if node == "head" {
        "rayHeadType"
    } else {
        "rayWorkerType"
    };
    let labels = [
        (naming::CLUSTER_NAME, format!("c{cluster}")),
        (naming::NODE_KIND, node.to_string()),
        (naming::POD_TYPE, pod_type.to_string()),
        (naming::LAUNCH_CONFIG, hash.to_string()),
    ];
    CachedPod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(NAMESPACE.into()),
            labels: Some(
                labels
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            ),
            ..Default::default()
        },
        status: Some(CachedPodStatus {
            phase: Some("Running".into()),
            conditions: vec![CachedPodCondition {
                type_: "Ready".into(),
                status: "True".into(),
            }],
        }),
    }
}

/// The operator's caches holding `clusters` clusters of 1 head + 3 workers,
/// and a reflector store of the same pods, for the scan.
fn cache(clusters: usize) -> (Caches, Store<CachedPod>) {
    let (caches, _writers) = Caches::new();
    let (store, mut writer) = kube::runtime::reflector::store();
    let (head, worker) = hashes();
    for cluster in 0..clusters {
        let pods = std::iter::once(pod(cluster, "head", 0, &head))
            .chain((0..3).map(|w| pod(cluster, "worker", w, &worker)));
        for pod in pods {
            let event = Event::Apply(pod);
            writer.apply_watcher_event(&event);
            caches.pods.observe(&event);
        }
    }
    (caches, store)
}

/// One cluster's pods by scanning every cached pod.
fn scanned(store: &Store<CachedPod>, name: &str) -> Vec<ObservedPod> {
    store
        .state()
        .iter()
        .filter(|pod| pod.metadata.namespace.as_deref() == Some(NAMESPACE))
        .filter(|pod| pod.labels().get(naming::CLUSTER_NAME).map(String::as_str) == Some(name))
        .filter_map(|pod| ObservedPod::from_pod(pod))
        .collect()
}

/// Mean time of `work` on a cluster in the middle, which must give `expect`.
fn time<T: PartialEq + std::fmt::Debug>(
    clusters: usize,
    expect: T,
    work: impl Fn(&str) -> T,
) -> Duration {
    let name = format!("c{}", clusters / 2);
    assert_eq!(work(&name), expect, "{clusters} clusters: {name}");
    let start = Instant::now();
    for _ in 0..LOOKUPS {
        std::hint::black_box(work(&name));
    }
    start.elapsed() / LOOKUPS
}

/// A reconcile's pure part for a steady cluster: validate its spec, read its
/// pods, plan. Gives (pods to create, pods to delete): (0, 0).
fn reconcile_plan(caches: &Caches, cluster: &RayCluster, name: &str) -> (usize, usize) {
    let validated: ValidatedCluster = validate::validate(cluster).expect("a valid spec");
    let pods = observed(caches, NAMESPACE, name);
    let input = PlanInput {
        cluster: &validated,
        pods: &pods,
        previous: &RayClusterStatus::default(),
        scaling: None,
        unreachable_head: None,
        ray: RayCheck::Off,
        held: None,
    };
    let planned = plan::plan(&input, &mut || "x".into());
    (planned.create.len(), planned.delete.len())
}

/// An autoscaler round's pure part for an idle cluster (its config checked
/// once per generation, as the task keeps it): read its pods, plan against a
/// Ray whose four nodes are idle. Gives (types to launch, pods to drain): (0, 0).
fn round_plan(caches: &Caches, config: &AutoscalerConfig, name: &str) -> (usize, usize) {
    let pods = observed(caches, NAMESPACE, name);
    let workers: Vec<WorkerPod> = pods
        .iter()
        .filter(|p| p.pod_type == "rayWorkerType")
        .map(|p| WorkerPod {
            name: p.name.clone(),
            pod_type: p.pod_type.clone(),
            ready: p.ready,
        })
        .collect();
    let node = |p: &ObservedPod| RayNode {
        node_id: p.name.clone(),
        instance_id: p.name.clone(),
        node_type: p.pod_type.clone(),
        ip: String::new(),
        total: [("CPU".to_string(), 1.0)].into(),
        available: [("CPU".to_string(), 1.0)].into(),
        status: NodeStatus::Idle,
        idle_ms: 1_000,
    };
    let state = ClusterState {
        version: 1,
        nodes: pods.iter().map(node).collect(),
        pending: Vec::new(),
        gangs: Vec::new(),
        constraints: Vec::new(),
    };
    let planned = planner::plan(config, &workers, &state);
    (planned.launch.len(), planned.drain.len())
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_CLUSTERS")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("BENCH_CLUSTERS: comma-separated counts")
        })
        .collect();
    println!(
        "| clusters (pods) | one cluster's pods, indexed | by scanning the cache | ratio | a reconcile's plan | an autoscaler round's plan |"
    );
    println!("|---|---|---|---|---|---|");
    let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
    for clusters in sizes {
        let (caches, store) = cache(clusters);
        let count = |pods: Vec<ObservedPod>| pods.len();
        let indexed = time(clusters, 4, |name| {
            count(observed(&caches, NAMESPACE, name))
        });
        let scan = time(clusters, 4, |name| count(scanned(&store, name)));
        let cluster = spec(&format!("c{}", clusters / 2));
        let reconcile = time(clusters, (0, 0), |name| {
            reconcile_plan(&caches, &cluster, name)
        });
        let config = AutoscalerConfig::from_spec(&cluster.spec).expect("an autoscaler config");
        let round = time(clusters, (0, 0), |name| round_plan(&caches, &config, name));
        println!(
            "| {clusters} ({}) | {} | {} | {:.0}x | {} | {} |",
            clusters * 4,
            us(indexed),
            us(scan),
            scan.as_secs_f64() / indexed.as_secs_f64(),
            us(reconcile),
            us(round),
        );
    }
}
