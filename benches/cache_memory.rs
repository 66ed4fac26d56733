//! `make bench-memory`: the heap the operator's caches keep per cluster and
//! per pod, counted by a global allocator that tracks live bytes. The
//! objects go through the same path as the watches' (JSON as the API server
//! sends it, the same stripping, the same caches): the chart's RayCluster
//! (`ray-operator render`), and its pods as the operator builds them with the
//! status kwok gives them. BENCH_CLUSTERS (default 10000) clusters of
//! 1 head + 3 workers; prints a Markdown table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use kube::runtime::watcher::Event;
use ray_operator::api::ClusterObject;
use ray_operator::naming::{self, NodeKind};
use ray_operator::operator::cache::pod::CachedPod;
use ray_operator::operator::cache::{self, Caches};
use ray_operator::operator::reconcile::{build, validate};
use serde_json::{Value, json};

mod plane;

/// The system allocator, counting the bytes it holds for the program.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to `System`; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The chart's cluster `c<i>` as the API server serves it.
fn cluster_json(chart: &Value, i: usize) -> Value {
    let mut c = chart.clone();
    c["metadata"] = json!({
        "name": format!("c{i}"), "namespace": "bench",
        "uid": format!("6f1c2b4e-0000-4000-8000-{i:012}"),
        "resourceVersion": format!("{}", 100_000 + i), "generation": 1,
        "creationTimestamp": "2026-12-07T12:00:00Z",
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": chart.to_string()},
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "cluster.ray.io/v1",
                           "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
    });
    c["status"] = json!({"phase": "Running", "observedGeneration": 1, "desiredWorkers": 3,
        "readyWorkers": 3, "podTypes": [{"name": "rayWorkerType", "desiredWorkers": 3, "readyWorkers": 3}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "PodsReady",
                        "message": "the head and 3 workers are ready",
                        "lastTransitionTime": "2026-12-07T12:00:10Z", "observedGeneration": 1}]});
    c
}

/// The pods of a cluster as the API server serves them once kwok runs them.
fn pod_jsons(cluster: &Value) -> Vec<Value> {
    let parsed: ClusterObject =
        serde_json::from_value(cluster.clone()).expect("the chart's cluster");
    let validated = validate::validate(parsed.cluster().expect("parses")).expect("valid");
    let worker = validated
        .workers
        .iter()
        .find(|w| w.max_workers > 0)
        .expect("a worker type");
    let mut pods = vec![build::pod(
        &validated,
        &validated.head,
        NodeKind::Head,
        "c0-ray-head-x1y2z",
    )];
    for w in 0..3 {
        let name = format!("c0-ray-worker-q{w}r2s");
        pods.push(build::pod(&validated, worker, NodeKind::Worker, &name));
    }
    pods.into_iter()
        .enumerate()
        .map(|(n, pod)| {
            let mut v = serde_json::to_value(pod).expect("a pod");
            let meta = &mut v["metadata"];
            meta["uid"] = json!(format!("1b2c3d4e-0000-4000-8000-{n:012}"));
            meta["resourceVersion"] = json!("2000123");
            meta["creationTimestamp"] = json!("2026-12-07T12:00:01Z");
            meta["managedFields"] = json!([{"manager": "ray-operator", "operation": "Apply",
                "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}, "f:spec": {}}}]);
            let condition = |t: &str| json!({"type": t, "status": "True",
                "lastProbeTime": null, "lastTransitionTime": "2026-12-07T12:00:02Z"});
            v["status"] = json!({
                "phase": "Running", "hostIP": "10.0.0.7", "podIP": "10.0.3.17",
                "podIPs": [{"ip": "10.0.3.17"}], "startTime": "2026-12-07T12:00:02Z",
                "conditions": [condition("Initialized"), condition("Ready"),
                               condition("ContainersReady"), condition("PodScheduled")],
                "containerStatuses": [{"name": "ray-node", "ready": true, "restartCount": 0,
                    "image": "rayproject/ray:2.47.1", "imageID": "", "started": true,
                    "state": {"running": {"startedAt": "2026-12-07T12:00:02Z"}}}],
            });
            v
        })
        .collect()
}

/// Renames a pod of cluster 0's to cluster `i`'s.
fn pod_of(template: &Value, i: usize) -> CachedPod {
    let mut v = template.clone();
    let name =
        v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .replacen("c0-", &format!("c{i}-"), 1);
    v["metadata"]["name"] = json!(name);
    v["metadata"]["labels"][naming::CLUSTER_NAME] = json!(format!("c{i}"));
    v["metadata"]["ownerReferences"][0]["name"] = json!(format!("c{i}"));
    serde_json::from_value(v).expect("a watched pod")
}

fn main() {
    let clusters: usize = plane::env_or("BENCH_CLUSTERS", 10_000);
    let chart =
        plane::rendered_cluster(std::path::Path::new(env!("CARGO_BIN_EXE_ray-operator")), "")
            .expect("the chart's RayCluster");
    let cluster_docs: Vec<Value> = (0..clusters).map(|i| cluster_json(&chart, i)).collect();
    let pod_docs = pod_jsons(&cluster_docs[0]);

    let (caches, mut writers) = Caches::new();
    let before = live();
    for doc in &cluster_docs {
        let mut object: ClusterObject = serde_json::from_value(doc.clone()).expect("a cluster");
        cache::strip_cluster(&mut object);
        writers.clusters.apply_watcher_event(&Event::Apply(object));
    }
    let cluster_bytes = live() - before;

    let watched = || (0..clusters).flat_map(|i| pod_docs.iter().map(move |t| pod_of(t, i)));
    let before = live();
    for pod in watched() {
        caches.pods.observe(&Event::Apply(pod));
    }
    let pod_bytes = live() - before;
    let pods = clusters * pod_docs.len();
    assert_eq!(caches.pods.len(), pods, "every pod cached");

    // What the pod cache replaced: the watched pods in a reflector store.
    let before = live();
    let (store, mut writer) = kube::runtime::reflector::store::<CachedPod>();
    for pod in watched() {
        writer.apply_watcher_event(&Event::Apply(pod));
    }
    let reflector_bytes = live() - before;
    assert_eq!(store.len(), pods);
    assert_eq!(caches.clusters.len(), clusters, "every cluster cached");

    let kib = |b: isize| b as f64 / 1024.0;
    println!("| {clusters} clusters of 1 head + 3 workers | heap kept | per object |");
    println!("|---|---:|---:|");
    println!(
        "| RayCluster cache | {:.1} MiB | {:.0} B per cluster |",
        kib(cluster_bytes) / 1024.0,
        cluster_bytes as f64 / clusters as f64
    );
    println!(
        "| pod cache | {:.1} MiB | {:.0} B per pod |",
        kib(pod_bytes) / 1024.0,
        pod_bytes as f64 / pods as f64
    );
    println!(
        "| a reflector store of the watched pods (what the pod cache replaced) | {:.1} MiB | {:.0} B per pod |",
        kib(reflector_bytes) / 1024.0,
        reflector_bytes as f64 / pods as f64
    );
    println!(
        "| RayClusters and pods, per pod | | {:.2} KiB |",
        kib(cluster_bytes + pod_bytes) / pods as f64
    );
}
