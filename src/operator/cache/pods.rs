//! The pod cache: for every cluster, what reconciles and autoscaler rounds
//! read of each of its pods ([`ObservedPod`]) and nothing else, kept from the
//! pod watch's events.
//!
//! It replaces a reflector store of whole pod metadata (a labels map, an
//! owner reference, a dozen strings) keyed by an `ObjectRef`, plus an index
//! of names by cluster: 1.8 KiB of heap per pod, 69 MiB at 40,000 pods
//! (`make bench-memory`). Here a pod is one entry in its cluster's list,
//! sorted by name, with its pod type and launch hash shared by every pod of
//! the cluster that has them. A cluster's pods are read without looking at
//! any other cluster's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use kube::ResourceExt;
use kube::runtime::watcher::Event;

use super::pod::{CachedPod, ObservedPod, PodState};
use crate::naming::{self, NodeKind};

/// A cluster: its namespace and name.
type ClusterId = (String, String);

/// One pod, as small as it can be kept.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    name: Box<str>,
    uid: Option<Box<str>>,
    pod_type: Arc<str>,
    launch_hash: Arc<str>,
    created: i64,
    kind: NodeKind,
    state: PodState,
    ready: bool,
    terminating: bool,
}

impl Entry {
    fn observed(&self) -> ObservedPod {
        ObservedPod {
            name: self.name.to_string(),
            uid: self.uid.as_deref().map(str::to_string),
            kind: self.kind,
            pod_type: self.pod_type.to_string(),
            launch_hash: self.launch_hash.to_string(),
            state: self.state,
            ready: self.ready,
            created: self.created,
            terminating: self.terminating,
        }
    }
}

/// Interned strings of a cluster beyond which unused ones are dropped
/// (a cluster has a pod type and a launch hash per type, and a few more
/// while its spec changes).
const KEPT_STRINGS: usize = 8;

/// One cluster's pods, sorted by name.
#[derive(Debug, Default, PartialEq)]
struct ClusterPods {
    pods: Vec<Entry>,
    /// The pod types and launch hashes its pods share.
    strings: Vec<Arc<str>>,
}

impl ClusterPods {
    fn intern(&mut self, value: &str) -> Arc<str> {
        if let Some(shared) = self.strings.iter().find(|s| ***s == *value) {
            return shared.clone();
        }
        if self.strings.len() >= KEPT_STRINGS {
            self.strings.retain(|s| Arc::strong_count(s) > 1);
        }
        let shared: Arc<str> = value.into();
        self.strings.push(shared.clone());
        shared
    }

    /// Adds or replaces a pod; whether it is new.
    fn upsert(&mut self, pod: ObservedPod) -> bool {
        let entry = Entry {
            pod_type: self.intern(&pod.pod_type),
            launch_hash: self.intern(&pod.launch_hash),
            name: pod.name.into(),
            uid: pod.uid.map(Into::into),
            created: pod.created,
            kind: pod.kind,
            state: pod.state,
            ready: pod.ready,
            terminating: pod.terminating,
        };
        match self.pods.binary_search_by(|p| p.name.cmp(&entry.name)) {
            Ok(at) => {
                self.pods[at] = entry;
                false
            }
            Err(at) => {
                self.pods.insert(at, entry);
                true
            }
        }
    }

    /// Removes a pod; whether it was there.
    fn remove(&mut self, name: &str) -> bool {
        let Ok(at) = self.pods.binary_search_by(|p| (*p.name).cmp(name)) else {
            return false;
        };
        self.pods.remove(at);
        // A cluster scaled down from many workers gives the room back.
        if self.pods.capacity() > 4 * self.pods.len().max(4) {
            self.pods.shrink_to_fit();
        }
        true
    }
}

/// Every cluster's pods.
#[derive(Debug, Default, PartialEq)]
struct Pods {
    by_cluster: HashMap<ClusterId, ClusterPods>,
    count: usize,
}

impl Pods {
    fn apply(&mut self, pod: &CachedPod) {
        let (Some(cluster), Some(observed)) = (cluster_of(pod), ObservedPod::from_pod(pod)) else {
            return;
        };
        if self.by_cluster.entry(cluster).or_default().upsert(observed) {
            self.count += 1;
        }
    }

    fn delete(&mut self, pod: &CachedPod) {
        let Some(cluster) = cluster_of(pod) else {
            return;
        };
        if let Some(pods) = self.by_cluster.get_mut(&cluster)
            && pods.remove(&pod.name_any())
        {
            self.count -= 1;
            if pods.pods.is_empty() {
                self.by_cluster.remove(&cluster);
            }
        }
    }
}

/// The cluster a pod belongs to, from its namespace and cluster label. A
/// pod's labels are the operator's own and do not move between clusters.
fn cluster_of(pod: &CachedPod) -> Option<ClusterId> {
    let cluster = pod.labels().get(naming::CLUSTER_NAME)?;
    Some((pod.namespace()?, cluster.clone()))
}

/// The pod cache, and the one a re-list is building (swapped in when done).
pub struct PodStore {
    live: RwLock<Pods>,
    relisting: Mutex<Option<Pods>>,
    listed: tokio::sync::watch::Sender<bool>,
}

impl Default for PodStore {
    fn default() -> Self {
        PodStore {
            live: RwLock::default(),
            relisting: Mutex::default(),
            listed: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl PodStore {
    /// Follows one event of the pod watch.
    pub fn observe(&self, event: &Event<CachedPod>) {
        match event {
            Event::Apply(pod) => self.live.write().expect("pod cache lock").apply(pod),
            Event::Delete(pod) => self.live.write().expect("pod cache lock").delete(pod),
            Event::Init => *self.relisting.lock().expect("relist lock") = Some(Pods::default()),
            Event::InitApply(pod) => {
                if let Some(pods) = self.relisting.lock().expect("relist lock").as_mut() {
                    pods.apply(pod);
                }
            }
            Event::InitDone => {
                if let Some(pods) = self.relisting.lock().expect("relist lock").take() {
                    *self.live.write().expect("pod cache lock") = pods;
                }
                self.listed.send_replace(true);
            }
        }
    }

    /// A cluster's cached pods, sorted by name.
    pub fn cluster(&self, namespace: &str, cluster: &str) -> Vec<ObservedPod> {
        let key = (namespace.to_string(), cluster.to_string());
        self.live
            .read()
            .expect("pod cache lock")
            .by_cluster
            .get(&key)
            .map(|pods| pods.pods.iter().map(Entry::observed).collect())
            .unwrap_or_default()
    }

    /// Pods cached, over all clusters.
    pub fn len(&self) -> usize {
        self.live.read().expect("pod cache lock").count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for the watch's first full list.
    pub async fn listed(&self) {
        let mut listed = self.listed.subscribe();
        let _ = listed.wait_for(|listed| *listed).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::cache::pod::{CachedPodCondition, CachedPodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    /// A pod of `cluster` (no cluster label when `None`) of type `t` at launch hash `h`.
    fn pod(namespace: &str, name: &str, cluster: Option<&str>, t: &str, h: &str) -> CachedPod {
        let mut labels: std::collections::BTreeMap<String, String> = [
            (naming::NODE_KIND.to_string(), "worker".to_string()),
            (naming::POD_TYPE.to_string(), t.to_string()),
            (naming::LAUNCH_CONFIG.to_string(), h.to_string()),
        ]
        .into();
        if let Some(c) = cluster {
            labels.insert(naming::CLUSTER_NAME.to_string(), c.to_string());
        }
        CachedPod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(labels),
                creation_timestamp: Some(Time("2026-12-07T12:00:00Z".parse().unwrap())),
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

    fn w(namespace: &str, name: &str, cluster: &str) -> CachedPod {
        pod(namespace, name, Some(cluster), "cpu", "h1")
    }

    fn names(store: &PodStore, namespace: &str, cluster: &str) -> Vec<String> {
        store
            .cluster(namespace, cluster)
            .into_iter()
            .map(|p| p.name)
            .collect()
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
                "applies, by namespace and cluster, sorted by name",
                vec![
                    Apply(w("ns", "a-w1", "a")),
                    Apply(w("ns", "a-head", "a")),
                    Apply(w("ns", "b-head", "b")),
                    Apply(w("other", "a-head", "a")),
                ],
                [&["a-head", "a-w1"], &["b-head"], &["a-head"]],
                4,
            ),
            (
                "an update is not a second pod",
                vec![Apply(w("ns", "a-head", "a")), Apply(w("ns", "a-head", "a"))],
                [&["a-head"], &[], &[]],
                1,
            ),
            (
                "a delete, and a delete of a pod never seen",
                vec![
                    Apply(w("ns", "a-head", "a")),
                    Apply(w("ns", "a-w1", "a")),
                    Delete(w("ns", "a-w1", "a")),
                    Delete(w("ns", "a-w9", "a")),
                    Delete(w("ns", "b-w9", "b")),
                ],
                [&["a-head"], &[], &[]],
                1,
            ),
            (
                "a pod without the cluster label, or not the operator's, is not kept",
                vec![
                    Apply(pod("ns", "stray", None, "cpu", "h1")),
                    Apply(CachedPod {
                        metadata: ObjectMeta {
                            labels: Some([(naming::CLUSTER_NAME.into(), "a".into())].into()),
                            ..w("ns", "no-kind", "a").metadata
                        },
                        status: None,
                    }),
                ],
                [&[], &[], &[]],
                0,
            ),
            (
                "a re-list replaces the cache when it is done, dropping deletions it missed",
                vec![
                    Apply(w("ns", "a-head", "a")),
                    Apply(w("ns", "b-head", "b")),
                    Init,
                    InitApply(w("ns", "a-head", "a")),
                    InitApply(w("ns", "a-w2", "a")),
                    InitDone,
                ],
                [&["a-head", "a-w2"], &[], &[]],
                2,
            ),
            (
                "until the re-list is done, the old cache answers",
                vec![
                    Apply(w("ns", "b-head", "b")),
                    Init,
                    InitApply(w("ns", "a-head", "a")),
                ],
                [&[], &["b-head"], &[]],
                1,
            ),
        ];
        for (what, events, [ns_a, ns_b, other_a], count) in cases {
            let store = PodStore::default();
            for event in &events {
                store.observe(event);
            }
            assert_eq!(names(&store, "ns", "a"), *ns_a, "{what}: ns/a");
            assert_eq!(names(&store, "ns", "b"), *ns_b, "{what}: ns/b");
            assert_eq!(names(&store, "other", "a"), *other_a, "{what}: other/a");
            assert_eq!(store.len(), count, "{what}: count");
        }
    }

    #[test]
    fn gives_back_what_the_pod_said() {
        let store = PodStore::default();
        let mut pending = pod("ns", "a-w1", Some("a"), "gpu", "h2");
        pending.status = None;
        pending.metadata.deletion_timestamp = pending.metadata.creation_timestamp.clone();
        store.observe(&Event::Apply(pending.clone()));
        let want = ObservedPod::from_pod(&pending).unwrap();
        assert_eq!(want.state, PodState::Pending);
        assert!(want.terminating && !want.ready);
        assert_eq!(store.cluster("ns", "a"), vec![want]);
    }

    #[test]
    fn pods_of_a_cluster_share_their_type_and_hash() {
        let store = PodStore::default();
        for (i, hash) in ["h1", "h1", "h2", "h1"].iter().enumerate() {
            store.observe(&Event::Apply(pod(
                "ns",
                &format!("a-w{i}"),
                Some("a"),
                "cpu",
                hash,
            )));
        }
        let live = store.live.read().unwrap();
        let pods = &live.by_cluster[&("ns".to_string(), "a".to_string())];
        assert!(Arc::ptr_eq(&pods.pods[0].pod_type, &pods.pods[2].pod_type));
        assert!(Arc::ptr_eq(
            &pods.pods[0].launch_hash,
            &pods.pods[3].launch_hash
        ));
        assert_eq!(pods.strings.len(), 3, "cpu, h1, h2");
    }

    #[test]
    fn strings_no_pod_uses_are_dropped_past_a_few() {
        let store = PodStore::default();
        // One pod, re-applied with a new launch hash twenty times (twenty spec changes).
        for i in 0..20 {
            store.observe(&Event::Apply(pod(
                "ns",
                "a-w0",
                Some("a"),
                "cpu",
                &format!("h{i}"),
            )));
        }
        let live = store.live.read().unwrap();
        let pods = &live.by_cluster[&("ns".to_string(), "a".to_string())];
        assert!(pods.strings.len() <= KEPT_STRINGS, "{:?}", pods.strings);
        assert_eq!(&*pods.pods[0].launch_hash, "h19");
    }

    #[test]
    fn a_cluster_scaled_down_gives_its_room_back() {
        let store = PodStore::default();
        let names: Vec<String> = (0..500).map(|i| format!("a-w{i:03}")).collect();
        for name in &names {
            store.observe(&Event::Apply(w("ns", name, "a")));
        }
        for name in &names[2..] {
            store.observe(&Event::Delete(w("ns", name, "a")));
        }
        let live = store.live.read().unwrap();
        let pods = &live.by_cluster[&("ns".to_string(), "a".to_string())];
        assert_eq!(pods.pods.len(), 2);
        assert!(
            pods.pods.capacity() <= 16,
            "capacity {}",
            pods.pods.capacity()
        );
    }

    #[tokio::test]
    async fn listed_after_the_first_full_list() {
        let store = Arc::new(PodStore::default());
        let waiter = tokio::spawn({
            let store = store.clone();
            async move { store.listed().await }
        });
        store.observe(&Event::Init);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        store.observe(&Event::InitDone);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("listed")
            .unwrap();
    }
}
