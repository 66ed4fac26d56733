//! `make bench-lookup`: the cost of reading one cluster's pods from the cache
//! (what every reconcile and every autoscaler round of that cluster does) as
//! the number of other clusters grows, through the pod index
//! (`reconcile::plan::observed`) and by scanning every cached pod (what it
//! replaced). Clusters of 1 head + 3 workers; prints a Markdown table.
//! BENCH_CLUSTERS (comma-separated, default 100,1000,10000) sets the sizes.

use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::runtime::reflector::Store;
use kube::runtime::watcher::Event;
use ray_operator::naming;
use ray_operator::operator::cache::Caches;
use ray_operator::operator::cache::pod::{CachedPod, CachedPodCondition, CachedPodStatus};
use ray_operator::operator::reconcile::plan::{ObservedPod, observed};

const NAMESPACE: &str = "bench";
/// Lookups timed per row.
const LOOKUPS: u32 = 2_000;

fn pod(cluster: usize, node: &str, index: usize) -> CachedPod {
    let name = format!("c{cluster}-ray-{node}-type-{index}");
    let labels = [
        (naming::CLUSTER_NAME, format!("c{cluster}")),
        (naming::NODE_KIND, node.to_string()),
        (naming::POD_TYPE, format!("ray-{node}-type")),
        (naming::LAUNCH_CONFIG, "0123456789".to_string()),
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

/// A cache and its index holding `clusters` clusters of 1 head + 3 workers.
fn cache(clusters: usize) -> Caches {
    let (caches, mut writers) = Caches::new();
    for cluster in 0..clusters {
        let pods = std::iter::once(pod(cluster, "head", 0))
            .chain((0..3).map(|w| pod(cluster, "worker", w)));
        for pod in pods {
            let event = Event::Apply(pod);
            writers.pods.apply_watcher_event(&event);
            caches.pod_index.observe(&event);
        }
    }
    caches
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

/// Mean time of one lookup of a cluster in the middle.
fn time(clusters: usize, lookup: impl Fn(&str) -> Vec<ObservedPod>) -> Duration {
    let name = format!("c{}", clusters / 2);
    assert_eq!(
        lookup(&name).len(),
        4,
        "{clusters} clusters: {name} has 4 pods"
    );
    let start = Instant::now();
    for _ in 0..LOOKUPS {
        std::hint::black_box(lookup(&name));
    }
    start.elapsed() / LOOKUPS
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
    println!("| clusters (pods) | one cluster's pods, indexed | by scanning the cache | ratio |");
    println!("|---|---|---|---|");
    for clusters in sizes {
        let caches = cache(clusters);
        let indexed = time(clusters, |name| observed(&caches, NAMESPACE, name));
        let scan = time(clusters, |name| scanned(&caches.pods, name));
        println!(
            "| {clusters} ({}) | {:.1} µs | {:.1} µs | {:.0}x |",
            clusters * 4,
            indexed.as_secs_f64() * 1e6,
            scan.as_secs_f64() * 1e6,
            scan.as_secs_f64() / indexed.as_secs_f64()
        );
    }
}
