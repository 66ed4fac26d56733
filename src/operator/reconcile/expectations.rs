//! Expectations: what the operator wrote but its watch has not shown yet.
//!
//! The pod cache lags behind the operator's own writes. Without this, a
//! reconcile that runs before the cache shows the pods it just created would
//! create them again (and one that runs before the cache drops deleted pods
//! would delete replacements). Entries expire, so a lost watch event can only
//! delay the operator, never wedge it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::plan::ObservedPod;
use crate::api::RayClusterStatus;

/// How long a write may stay unseen before the operator stops counting on it.
const TTL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Pending {
    created: Vec<(ObservedPod, Instant)>,
    deleted: Vec<(String, Instant)>,
}

/// Per-cluster expectations, keyed by the cluster's UID.
#[derive(Default)]
pub struct Expectations {
    clusters: Mutex<HashMap<String, Pending>>,
    /// The status each cluster was last given. The cached RayCluster may not
    /// show it yet, and planning from an older status would, for one, lose a
    /// restart count. The operator (its leader) is the status' only writer.
    statuses: Mutex<HashMap<String, RayClusterStatus>>,
}

impl Expectations {
    /// The pods as the plan should see them: `observed`, plus pods created but
    /// not yet observed, minus pods deleted but still observed.
    pub fn view(&self, key: &str, mut observed: Vec<ObservedPod>) -> Vec<ObservedPod> {
        let mut clusters = self.clusters.lock().expect("expectations lock");
        let Some(pending) = clusters.get_mut(key) else {
            return observed;
        };
        let now = Instant::now();
        pending
            .created
            .retain(|(pod, at)| now - *at < TTL && !observed.iter().any(|o| o.name == pod.name));
        pending.deleted.retain(|(name, at)| {
            now - *at < TTL && observed.iter().any(|o| &o.name == name && !o.terminating)
        });
        observed.retain(|o| !pending.deleted.iter().any(|(name, _)| name == &o.name));
        observed.extend(pending.created.iter().map(|(pod, _)| pod.clone()));
        if pending.created.is_empty() && pending.deleted.is_empty() {
            clusters.remove(key);
        }
        observed
    }

    /// Records pods the operator has just created.
    pub fn created(&self, key: &str, pods: impl IntoIterator<Item = ObservedPod>) {
        let now = Instant::now();
        let pods: Vec<_> = pods.into_iter().map(|p| (p, now)).collect();
        if !pods.is_empty() {
            self.pending(key, |p| p.created.extend(pods));
        }
    }

    /// Records pods the operator has just deleted.
    pub fn deleted(&self, key: &str, names: impl IntoIterator<Item = String>) {
        let now = Instant::now();
        let names: Vec<_> = names.into_iter().map(|n| (n, now)).collect();
        if !names.is_empty() {
            self.pending(key, |p| p.deleted.extend(names));
        }
    }

    /// Adds to a cluster's pending writes. Called only with some: the map
    /// holds only clusters with writes their watch has yet to show (a
    /// reconcile that wrote no pod leaves no entry behind).
    fn pending(&self, key: &str, add: impl FnOnce(&mut Pending)) {
        let mut clusters = self.clusters.lock().expect("expectations lock");
        add(clusters.entry(key.to_string()).or_default());
    }

    /// The status to plan from: the one last written, else the cached one.
    /// Once the cache shows what was written, the copy here is dropped: the
    /// operator is the status' only writer, so the cache cannot fall behind
    /// it again until the next write.
    pub fn status(&self, key: &str, cached: Option<&RayClusterStatus>) -> RayClusterStatus {
        let mut statuses = self.statuses.lock().expect("expectations lock");
        match statuses.get(key) {
            Some(written) if Some(written) != cached => written.clone(),
            Some(_) => {
                statuses.remove(key);
                cached.cloned().unwrap_or_default()
            }
            None => cached.cloned().unwrap_or_default(),
        }
    }

    /// How many written statuses the cache has not shown yet (for tests).
    #[cfg(test)]
    fn unseen_statuses(&self) -> usize {
        self.statuses.lock().expect("expectations lock").len()
    }

    /// Records a status the operator has just written.
    pub fn wrote_status(&self, key: &str, status: RayClusterStatus) {
        self.statuses
            .lock()
            .expect("expectations lock")
            .insert(key.to_string(), status);
    }

    /// Drops what is expected of a cluster that is gone.
    pub fn forget(&self, key: &str) {
        self.clusters.lock().expect("expectations lock").remove(key);
        self.statuses.lock().expect("expectations lock").remove(key);
    }

    /// Forgets every cluster whose key `keep` refuses.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        (self.clusters.lock().expect("expectations lock")).retain(|k, _| keep(k));
        (self.statuses.lock().expect("expectations lock")).retain(|k, _| keep(k));
    }

    /// Clusters with pending pod writes, and with a written status kept.
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.clusters.lock().expect("expectations lock").len(),
            self.statuses.lock().expect("expectations lock").len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::NodeKind;
    use crate::operator::reconcile::plan::PodState;

    fn pod(name: &str, terminating: bool) -> ObservedPod {
        ObservedPod {
            name: name.into(),
            uid: None,
            kind: NodeKind::Worker,
            pod_type: "w".into(),
            launch_hash: "h".into(),
            state: PodState::Pending,
            ready: false,
            created: 0,
            terminating,
        }
    }

    #[test]
    fn unseen_creations_count_until_observed() {
        let e = Expectations::default();
        e.created("ns/c", [pod("a", false)]);
        assert_eq!(
            e.view("ns/c", vec![]).len(),
            1,
            "created pod counts before the watch shows it"
        );
        assert_eq!(
            e.view("ns/c", vec![pod("a", false)]).len(),
            1,
            "and is not counted twice after"
        );
        assert_eq!(
            e.view("ns/c", vec![]).len(),
            0,
            "once observed, the expectation is gone"
        );
    }

    #[test]
    fn the_last_written_status_wins_over_the_cache() {
        let e = Expectations::default();
        let cached = RayClusterStatus {
            autoscaler_retries: 0,
            ..Default::default()
        };
        assert_eq!(e.status("ns/c", Some(&cached)).autoscaler_retries, 0);
        e.wrote_status(
            "ns/c",
            RayClusterStatus {
                autoscaler_retries: 1,
                ..Default::default()
            },
        );
        assert_eq!(
            e.status("ns/c", Some(&cached)).autoscaler_retries,
            1,
            "a stale cache loses no restart"
        );
        e.forget("ns/c");
        assert_eq!(e.status("ns/c", Some(&cached)).autoscaler_retries, 0);
    }

    #[test]
    fn a_written_status_is_kept_only_until_the_cache_shows_it() {
        let e = Expectations::default();
        let written = RayClusterStatus {
            autoscaler_retries: 2,
            ..Default::default()
        };
        e.wrote_status("ns/c", written.clone());
        assert_eq!(e.status("ns/c", None), written);
        assert_eq!(e.unseen_statuses(), 1);
        assert_eq!(e.status("ns/c", Some(&written)), written);
        assert_eq!(e.unseen_statuses(), 0, "the cache caught up: no copy kept");
    }

    #[test]
    fn a_status_written_now_reads_back_as_written() {
        let e = Expectations::default();
        let mut written = RayClusterStatus::default();
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(RayClusterStatus::now());
        crate::operator::reconcile::status::set_condition(
            &mut written.conditions,
            "HeadReady",
            "True",
            "HeadRunning",
            "",
            Some(1),
            &now,
        );
        e.wrote_status("uid", written.clone());
        // What the watch brings back: the status as the API server stores it.
        let cached: RayClusterStatus =
            serde_json::from_value(serde_json::to_value(&written).unwrap()).unwrap();
        assert_eq!(e.status("uid", Some(&cached)), written);
        assert_eq!(e.unseen_statuses(), 0, "the cache shows what was written");
    }

    #[test]
    fn a_reconcile_that_writes_no_pod_leaves_no_entry() {
        let e = Expectations::default();
        e.created("uid", []);
        e.deleted("uid", Vec::<String>::new());
        assert_eq!(e.tracked(), (0, 0));
    }

    #[test]
    fn a_cluster_the_cache_no_longer_holds_is_forgotten() {
        let e = Expectations::default();
        e.created("uid-old", [pod("a", false)]);
        e.wrote_status("uid-old", RayClusterStatus::default());
        e.wrote_status("uid-live", RayClusterStatus::default());
        assert_eq!(e.tracked(), (1, 2));
        e.retain(|key| key == "uid-live");
        assert_eq!(e.tracked(), (0, 1), "only the live cluster is kept");
    }

    #[test]
    fn deletions_hide_pods_until_they_terminate() {
        let e = Expectations::default();
        e.deleted("ns/c", ["a".to_string()]);
        assert!(e.view("ns/c", vec![pod("a", false)]).is_empty());
        assert_eq!(
            e.view("ns/c", vec![pod("a", true)]).len(),
            1,
            "the watch now shows it terminating"
        );
    }
}
