//! Where the per-cluster autoscaler tasks and the reconciler meet, so that
//! neither imports the other.
//!
//! An autoscaler task posts what it wants of its cluster's workers (and
//! whether the head's Ray answers); the reconciler reads it when it plans.
//! Posting a changed view triggers a reconcile of that cluster at once. The
//! reconciler starts and stops the tasks through [`AutoscalerTasks`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use futures::channel::mpsc;
use kube::runtime::reflector::ObjectRef;

use crate::api::{AutoscalerStatus, ClusterObject, RayCluster};

/// What the autoscaler wants of the workers; without it, each type keeps `minWorkers`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scaling {
    /// Workers wanted per pod type (clamped to minWorkers..=maxWorkers).
    pub desired: BTreeMap<String, i32>,
    /// Pods chosen for removal (drained); removed first when a type shrinks.
    pub remove: BTreeSet<String>,
}

/// What the head's Ray said in the autoscaler task's last round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RayHealth {
    /// The pods alive as Ray nodes (their `RAY_CLOUD_INSTANCE_ID`); `None`
    /// when this Ray cannot list them (older than the autoscaler API).
    pub joined: Option<BTreeSet<String>>,
}

/// The autoscaler's settings that the reconciler reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checks {
    /// The autoscaler sets the workers (off: clusters hold minWorkers).
    pub autoscaling: bool,
    /// Each head's GCS is read, so `Running` means Ray runs.
    pub ray_health: bool,
    /// `spec.gcsAddress` is honoured (a test aid).
    pub allow_gcs_address: bool,
}

/// The per-cluster autoscaler tasks, as the reconciler sees them.
pub trait AutoscalerTasks: Send + Sync {
    /// What the reconciler reads of the autoscaler's settings.
    fn checks(&self) -> Checks;
    /// Starts the cluster's task unless it runs (or there is none to run).
    fn ensure(&self, cluster: &RayCluster);
    /// Stops the cluster's task.
    fn stop(&self, key: &str);
    /// Stops the tasks of every cluster whose key `keep` refuses.
    fn retain(&self, keep: &dyn Fn(&str) -> bool);
    /// Clusters with a task.
    fn tracked(&self) -> usize;
}

/// What an autoscaler task last concluded about its cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutoscalerView {
    pub scaling: Scaling,
    /// The head pod that runs but whose GCS has not answered for longer than
    /// the grace period.
    pub unreachable_head: Option<String>,
    pub status: AutoscalerStatus,
    /// What Ray said in the last round; `None` while its GCS does not answer.
    pub ray: Option<RayHealth>,
    /// Why the autoscaler cannot work with this Ray (it holds minWorkers).
    pub unsupported: Option<String>,
}

/// Views by cluster key (the cluster's UID), and the channel that asks the
/// controller to reconcile a cluster.
pub struct Board {
    views: Mutex<HashMap<String, AutoscalerView>>,
    trigger: mpsc::UnboundedSender<ObjectRef<ClusterObject>>,
}

impl Board {
    /// A board and the stream of reconcile requests it emits.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<ObjectRef<ClusterObject>>) {
        let (trigger, requests) = mpsc::unbounded();
        (
            Board {
                views: Mutex::new(HashMap::new()),
                trigger,
            },
            requests,
        )
    }

    pub fn view(&self, key: &str) -> Option<AutoscalerView> {
        self.views.lock().expect("board lock").get(key).cloned()
    }

    /// Posts a view of the cluster `reference` (keyed `key`); a change asks
    /// for a reconcile of it.
    pub fn post(&self, key: &str, reference: &ObjectRef<ClusterObject>, view: AutoscalerView) {
        let changed = self
            .views
            .lock()
            .expect("board lock")
            .insert(key.to_string(), view.clone())
            != Some(view);
        if changed {
            let _ = self.trigger.unbounded_send(reference.clone());
        }
    }

    pub fn forget(&self, key: &str) {
        self.views.lock().expect("board lock").remove(key);
    }

    /// Forgets every cluster whose key `keep` refuses.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.views
            .lock()
            .expect("board lock")
            .retain(|k, _| keep(k));
    }

    /// Clusters with a view.
    pub fn tracked(&self) -> usize {
        self.views.lock().expect("board lock").len()
    }
}
