//! A term's [`Context`]: what the controller loop hands each reconcile, and
//! what the term's watches fill.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedReceiver;
use kube::Client;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::autoscaler::task::{Autoscalers, Deps};
use super::board::Board;
use super::cache::{CacheWriters, Caches, cluster_key};
use super::events::Recorder;
use super::reconcile::Reconciler;
use super::reconcile::{backoff::Backoffs, expectations::Expectations};
use super::scope::Scope;
use super::telemetry::metrics::Metrics;
use super::writer::Writer;
use crate::api::ClusterObject;
use crate::naming;

/// How `run` was asked to work.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Act only in this namespace (a namespaced operator).
    pub namespace: Option<String>,
    /// Reconciles of different clusters that may run at once.
    pub concurrency: u16,
    /// Writes to the API server in flight at once (see [`Writer`]).
    pub writes_in_flight: usize,
    /// Hold a leader Lease before acting, so replicas are safe.
    pub leader_elect: bool,
    /// Namespace of the leader Lease of a cluster-scoped operator.
    pub lease_namespace: String,
    /// This replica's name in the Lease.
    pub identity: String,
    pub autoscaler: super::autoscaler::task::Settings,
}

/// What every reconcile of a term shares.
pub struct Context {
    pub reconciler: Reconciler,
    /// Turns true once the cluster, pod and Service caches hold their first
    /// full lists: a plan made before would take pods not yet listed for
    /// gone (and restart a healthy head).
    caches_synced: tokio::sync::watch::Receiver<bool>,
}

/// The writing halves of a term's caches and the Board's scale requests,
/// which the term's watches and controller loop consume.
pub struct Feeds {
    pub caches: CacheWriters,
    pub scale_requests: UnboundedReceiver<ObjectRef<ClusterObject>>,
    pub caches_synced: tokio::sync::watch::Sender<bool>,
}

impl Context {
    /// A term's Context: empty caches, no expectation, no backoff.
    pub fn new(client: &Client, settings: &Settings, metrics: Arc<Metrics>) -> (Context, Feeds) {
        let scope = match &settings.namespace {
            Some(ns) => Scope::Namespace(ns.clone()),
            None => Scope::all_namespaces(client.clone()),
        };
        let (caches, cache_writers) = Caches::new();
        let caches = Arc::new(caches);
        let (board, scale_requests) = Board::new();
        let board = Arc::new(board);
        let writer = Arc::new(Writer::new(
            client.clone(),
            settings.writes_in_flight,
            metrics.clone(),
        ));
        let events = Arc::new(Recorder::new(
            writer.clone(),
            naming::FIELD_MANAGER,
            &settings.identity,
        ));
        let autoscalers = Autoscalers::new(Deps {
            settings: settings.autoscaler.clone(),
            caches: caches.clone(),
            board: board.clone(),
            events: events.clone(),
            writer: writer.clone(),
        });
        let (synced_tx, caches_synced) = tokio::sync::watch::channel(false);
        let ctx = Context {
            reconciler: Reconciler {
                caches,
                writer,
                events,
                board,
                autoscalers: Arc::new(autoscalers),
                scope,
                metrics,
                expectations: Expectations::default(),
                backoffs: Backoffs::default(),
            },
            caches_synced,
        };
        let feeds = Feeds {
            caches: cache_writers,
            scale_requests,
            caches_synced: synced_tx,
        };
        (ctx, feeds)
    }

    pub fn caches(&self) -> &Caches {
        &self.reconciler.caches
    }

    pub fn metrics(&self) -> &Metrics {
        &self.reconciler.metrics
    }

    /// Whether the caches hold their first full lists, waiting up to `wait`.
    /// Bounded, so a reconcile never holds the term open while the API
    /// server is away (a term must end as soon as its Lease is lost).
    pub async fn caches_synced(&self, wait: Duration) -> bool {
        let mut synced = self.caches_synced.clone();
        matches!(
            tokio::time::timeout(wait, synced.wait_for(|synced| *synced)).await,
            Ok(Ok(_))
        )
    }

    /// Stops the term's autoscaler tasks (they hold its caches).
    pub fn stop_autoscalers(&self) {
        self.reconciler.autoscalers.retain(&|_| false);
    }

    /// Reacts to the RayCluster watch: the controller never reconciles a
    /// deleted cluster (it has no finalizer), so its state is dropped here;
    /// after a re-list, which may hide deletions the watch missed, every
    /// cluster the cache no longer holds is forgotten.
    pub fn watched(&self, event: &Result<watcher::Event<ClusterObject>, watcher::Error>) {
        self.metrics().watch_event();
        match event {
            Ok(watcher::Event::Delete(cluster)) => self.reconciler.forget(&cluster_key(cluster)),
            Ok(watcher::Event::InitDone) => {
                let live: HashSet<String> = self
                    .caches()
                    .clusters
                    .state()
                    .iter()
                    .map(|c| cluster_key(c.as_ref()))
                    .collect();
                self.reconciler.retain(&|key| live.contains(key));
            }
            _ => {}
        }
    }
}
