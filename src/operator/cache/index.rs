//! The cached pods' names by cluster, kept from the pod watch's events, so a
//! reconcile or an autoscaler round reads its own cluster's pods from the
//! cache without scanning (and cloning a handle to) every cached pod: with
//! 10,000 clusters that scan made each cluster's work grow with all pods.
//!
//! The index holds names only; the pods themselves stay in the reflector's
//! store, looked up by name. A pod the index names but the store no longer
//! holds (deleted between the two updates) is skipped.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::naming;
use crate::operator::cache::pod::CachedPod;

/// A cluster: its namespace and name.
type ClusterId = (String, String);

/// Pod names by cluster.
#[derive(Default, Debug, PartialEq)]
struct Names {
    by_cluster: HashMap<ClusterId, HashSet<String>>,
    pods: usize,
}

impl Names {
    fn insert(&mut self, cluster: ClusterId, pod: String) {
        if self.by_cluster.entry(cluster).or_default().insert(pod) {
            self.pods += 1;
        }
    }

    fn remove(&mut self, cluster: &ClusterId, pod: &str) {
        if let Some(names) = self.by_cluster.get_mut(cluster)
            && names.remove(pod)
        {
            self.pods -= 1;
            if names.is_empty() {
                self.by_cluster.remove(cluster);
            }
        }
    }
}

/// The index, and the one a re-list is building (swapped in when it is done).
#[derive(Default)]
pub struct PodIndex {
    live: RwLock<Names>,
    relisting: std::sync::Mutex<Option<Names>>,
}

/// The cluster a pod belongs to, from its namespace and cluster label. A
/// pod's labels are the operator's own and do not move between clusters.
fn cluster_of(pod: &CachedPod) -> Option<ClusterId> {
    let cluster = pod.labels().get(naming::CLUSTER_NAME)?;
    Some((pod.namespace()?, cluster.clone()))
}

impl PodIndex {
    /// Follows one event of the pod watch.
    pub fn observe(&self, event: &Event<CachedPod>) {
        match event {
            Event::Apply(pod) => {
                if let Some(cluster) = cluster_of(pod) {
                    self.live
                        .write()
                        .expect("index lock")
                        .insert(cluster, pod.name_any());
                }
            }
            Event::Delete(pod) => {
                if let Some(cluster) = cluster_of(pod) {
                    self.live
                        .write()
                        .expect("index lock")
                        .remove(&cluster, &pod.name_any());
                }
            }
            Event::Init => *self.relisting.lock().expect("relist lock") = Some(Names::default()),
            Event::InitApply(pod) => {
                if let (Some(cluster), Some(names)) = (
                    cluster_of(pod),
                    self.relisting.lock().expect("relist lock").as_mut(),
                ) {
                    names.insert(cluster, pod.name_any());
                }
            }
            Event::InitDone => {
                if let Some(names) = self.relisting.lock().expect("relist lock").take() {
                    *self.live.write().expect("index lock") = names;
                }
            }
        }
    }

    /// The names of a cluster's cached pods.
    pub fn names(&self, namespace: &str, cluster: &str) -> Vec<String> {
        let key = (namespace.to_string(), cluster.to_string());
        self.live
            .read()
            .expect("index lock")
            .by_cluster
            .get(&key)
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Pods indexed, over all clusters (for metrics, without copying the cache).
    pub fn pods(&self) -> usize {
        self.live.read().expect("index lock").pods
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn pod(namespace: &str, name: &str, cluster: Option<&str>) -> CachedPod {
        CachedPod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                labels: cluster.map(|c| [(naming::CLUSTER_NAME.to_string(), c.to_string())].into()),
                ..Default::default()
            },
            status: None,
        }
    }

    fn sorted(mut names: Vec<String>) -> Vec<String> {
        names.sort();
        names
    }

    /// What happens, the watch's events, then the names of ns/a, ns/b and
    /// other/a, and the count.
    type Case = (
        &'static str,
        Vec<Event<CachedPod>>,
        [&'static [&'static str]; 3],
        usize,
    );

    #[test]
    fn follows_the_watch() {
        use Event::*;
        let cases: Vec<Case> = vec![
            ("nothing", vec![], [&[], &[], &[]], 0),
            (
                "applies, by namespace and cluster",
                vec![
                    Apply(pod("ns", "a-head", Some("a"))),
                    Apply(pod("ns", "a-w1", Some("a"))),
                    Apply(pod("ns", "b-head", Some("b"))),
                    Apply(pod("other", "a-head", Some("a"))),
                ],
                [&["a-head", "a-w1"], &["b-head"], &["a-head"]],
                4,
            ),
            (
                "an update is not a second pod",
                vec![
                    Apply(pod("ns", "a-head", Some("a"))),
                    Apply(pod("ns", "a-head", Some("a"))),
                ],
                [&["a-head"], &[], &[]],
                1,
            ),
            (
                "a delete, and a delete of a pod never seen",
                vec![
                    Apply(pod("ns", "a-head", Some("a"))),
                    Apply(pod("ns", "a-w1", Some("a"))),
                    Delete(pod("ns", "a-w1", Some("a"))),
                    Delete(pod("ns", "a-w9", Some("a"))),
                ],
                [&["a-head"], &[], &[]],
                1,
            ),
            (
                "a pod without the cluster label is not indexed",
                vec![Apply(pod("ns", "stray", None))],
                [&[], &[], &[]],
                0,
            ),
            (
                "a re-list replaces the index when it is done, dropping deletions it missed",
                vec![
                    Apply(pod("ns", "a-head", Some("a"))),
                    Apply(pod("ns", "b-head", Some("b"))),
                    Init,
                    InitApply(pod("ns", "a-head", Some("a"))),
                    InitApply(pod("ns", "a-w2", Some("a"))),
                    InitDone,
                ],
                [&["a-head", "a-w2"], &[], &[]],
                2,
            ),
            (
                "until the re-list is done, the old index answers",
                vec![
                    Apply(pod("ns", "b-head", Some("b"))),
                    Init,
                    InitApply(pod("ns", "a-head", Some("a"))),
                ],
                [&[], &["b-head"], &[]],
                1,
            ),
        ];
        for (what, events, [ns_a, ns_b, other_a], count) in cases {
            let index = PodIndex::default();
            for event in &events {
                index.observe(event);
            }
            let want = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
            assert_eq!(sorted(index.names("ns", "a")), want(ns_a), "{what}: ns/a");
            assert_eq!(sorted(index.names("ns", "b")), want(ns_b), "{what}: ns/b");
            assert_eq!(
                sorted(index.names("other", "a")),
                want(other_a),
                "{what}: other/a"
            );
            assert_eq!(index.pods(), count, "{what}: count");
        }
    }
}
