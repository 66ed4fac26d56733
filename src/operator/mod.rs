//! `ray-operator run`: the watches, the controller loop, and what every
//! reconcile shares (the [`Context`]).

pub mod autoscaler;
pub mod board;
pub mod cache;
pub mod context;
pub mod events;
pub mod lease;
#[cfg(test)]
pub mod mock_api;
pub mod reconcile;
pub mod resources;
pub mod scope;
pub mod telemetry;
pub mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::api::ClusterObject;
use crate::naming;
use cache::CacheWriters;
use cache::cluster_key;
use cache::pod::CachedPod;
pub use context::Settings;
use context::{Context, Feeds};

use reconcile::Error;
use telemetry::metrics::Metrics;

/// What outlives one term of leadership: the counters and the readiness the
/// health endpoint serves, and the [`Context`] of the term that runs now.
#[derive(Default)]
struct Process {
    metrics: Arc<Metrics>,
    /// Caches synced, or standing by for the Lease.
    ready: AtomicBool,
    term: std::sync::Mutex<Option<Arc<Context>>>,
}

impl telemetry::http::Health for Process {
    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn metrics(&self) -> String {
        let term = self.term.lock().expect("term lock").clone();
        match term {
            Some(ctx) => self.metrics.render(
                ctx.caches().clusters.len(),
                ctx.caches().pods.len(),
                &ctx.reconciler.tracked(),
            ),
            None => self.metrics.render(0, 0, &[]),
        }
    }
}

fn api_in<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the operator until SIGTERM/SIGINT. With leader election it acts
/// only while it holds the Lease: when the Lease is lost (another replica
/// took it, or the API server was out of reach for longer than the Lease
/// lasts) it stops acting, forgets what it kept, and stands by to lead again,
/// without leaving the process.
pub async fn run(
    client: Client,
    settings: Settings,
    health_listener: Option<tokio::net::TcpListener>,
) -> Result<(), String> {
    let process = Arc::new(Process::default());
    if let Some(listener) = health_listener {
        tokio::spawn(telemetry::http::serve(listener, process.clone()));
    }
    // Deleted clusters run no reconcile: the watch events that empty the
    // caches are work too, after which their memory is handed back.
    let metrics = process.metrics.clone();
    tokio::spawn(telemetry::memory::return_freed_memory(move || {
        metrics.reconciles() + metrics.watch_events()
    }));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        terminate_signal().await;
        let _ = stop_tx.send(true);
    });

    loop {
        let lost = if settings.leader_elect {
            // A replica standing by is healthy: it is Ready (so a rollout
            // beside a leader completes) and acts on nothing until it holds
            // the Lease.
            process.ready.store(true, Ordering::Relaxed);
            let mut stopped = stop.clone();
            let lost = tokio::select! {
                lost = lead(&client, &settings) => lost,
                _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            };
            process.ready.store(false, Ordering::Relaxed);
            Some(lost)
        } else {
            None
        };
        let (ctx, feeds) = Context::new(&client, &settings, process.metrics.clone());
        let ctx = Arc::new(ctx);
        *process.term.lock().expect("term lock") = Some(ctx.clone());
        act(
            &client,
            &settings,
            ctx.clone(),
            feeds,
            &process,
            lost,
            stop.clone(),
        )
        .await;
        // The term's tasks hold its Context; stop them before it is dropped.
        ctx.stop_autoscalers();
        *process.term.lock().expect("term lock") = None;
        if *stop.borrow() {
            tracing::info!("shutting down");
            return Ok(());
        }
        tracing::warn!("stopped acting; standing by to hold the leader Lease again");
    }
}

/// Waits until this replica holds its leader Lease; the receiver turns true
/// when it is lost.
async fn lead(client: &Client, settings: &Settings) -> tokio::sync::watch::Receiver<bool> {
    let (lease_ns, lease_name) = match &settings.namespace {
        Some(ns) => (ns.clone(), lease::NAMESPACED_LEASE),
        None => (
            settings.lease_namespace.clone(),
            lease::CLUSTER_SCOPED_LEASE,
        ),
    };
    lease::lead(
        Api::<Lease>::namespaced(client.clone(), &lease_ns),
        lease_name,
        &settings.identity,
    )
    .await
}

/// One term: watches and the controller loop, until SIGTERM/SIGINT (`stop`)
/// or until the leader Lease is `lost`.
async fn act(
    client: &Client,
    settings: &Settings,
    ctx: Arc<Context>,
    feeds: Feeds,
    process: &Arc<Process>,
    lost: Option<tokio::sync::watch::Receiver<bool>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let namespace = settings.namespace.as_deref();
    let Feeds {
        caches:
            CacheWriters {
                clusters: cluster_writer,
                services: service_writer,
            },
        scale_requests,
        caches_synced,
    } = feeds;
    let selector = watcher::Config::default().labels(naming::CLUSTER_NAME);
    let watch_ctx = ctx.clone();
    let cluster_stream = watcher(
        api_in::<ClusterObject>(client, namespace),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(cache::strip_cluster)
    .reflect(cluster_writer)
    .inspect(move |event| watch_ctx.watched(event))
    .touched_objects();
    let pod_ctx = ctx.clone();
    let pod_stream = watcher(api_in::<CachedPod>(client, namespace), selector.clone())
        .default_backoff()
        .inspect(move |event| {
            pod_ctx.metrics().watch_event();
            if let Ok(event) = event {
                pod_ctx.caches().pods.observe(event);
            }
        })
        .touched_objects();
    let service_ctx = ctx.clone();
    let service_stream = watcher(
        api_in::<PartialObjectMeta<Service>>(client, namespace),
        selector,
    )
    .default_backoff()
    .modify(|s| {
        s.metadata.managed_fields = None;
        s.metadata.labels = None;
    })
    .reflect(service_writer)
    .inspect(move |_| service_ctx.metrics().watch_event())
    .touched_objects();

    let (cluster_reader, service_reader) = {
        let caches = ctx.caches();
        (caches.clusters.clone(), caches.services.clone())
    };
    let ready_process = process.clone();
    let ready_ctx = ctx.clone();
    let became_ready = tokio::spawn(async move {
        synced(&cluster_reader).await;
        ready_ctx.caches().pods.listed().await;
        synced(&service_reader).await;
        let _ = caches_synced.send(true);
        ready_process.ready.store(true, Ordering::Relaxed);
        tracing::info!("caches synced; reconciling");
    });

    let shutdown = async move {
        let lost_lease = async {
            match lost {
                Some(mut rx) => {
                    let _ = rx.wait_for(|lost| *lost).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => {},
            _ = lost_lease => tracing::error!("leader Lease lost: stopping"),
        }
    };

    tracing::info!(
        "ray-operator {} watching RayClusters in {}",
        env!("CARGO_PKG_VERSION"),
        namespace.map_or("all namespaces".to_string(), |ns| format!("namespace {ns}"))
    );
    Controller::for_stream(cluster_stream, ctx.caches().clusters.clone())
        .owns_stream(pod_stream)
        .owns_stream(service_stream)
        .reconcile_on(scale_requests)
        .with_config(ControllerConfig::default().concurrency(settings.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(timed_reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
    became_ready.abort();
}

/// Waits until a store has its first full list. `Store::wait_until_ready`
/// wakes only its latest waiter (a oneshot underneath), and the Controller
/// waits on the same store, so this polls it again every 100ms instead of
/// relying on a wake-up.
async fn synced<K: kube::runtime::reflector::Lookup + Clone + 'static>(store: &Store<K>)
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    while tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready())
        .await
        .is_err()
    {}
}

async fn terminate_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn timed_reconcile(object: Arc<ClusterObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.caches_synced(Duration::from_secs(1)).await {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let start = Instant::now();
    let key = cluster_key(object.as_ref());
    let result = match &object.0 {
        Ok(cluster) => reconcile::reconcile(cluster, &ctx.reconciler).await,
        Err(invalid) => reconcile::invalid_object(&object, invalid, &ctx.reconciler).await,
    };
    ctx.metrics().reconciled(start.elapsed());
    if result.is_ok() {
        ctx.reconciler.backoffs.succeeded(&key);
    }
    result
}

/// A failed reconcile is retried after a backoff of its own cluster's:
/// from 1 s, doubling, to 5 minutes for transient failures; 5 minutes (or
/// a spec change) for an object the API server rejected.
fn error_policy(cluster: Arc<ClusterObject>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics().failed(error.stage(), error.reason());
    let wait = match error.class() {
        reconcile::error::Class::Rejected => reconcile::error::REJECTED_BACKOFF,
        reconcile::error::Class::Transient => ctx
            .reconciler
            .backoffs
            .failed(&cluster_key(cluster.as_ref())),
    };
    tracing::warn!(cluster = %cluster.name_any(), namespace = %cluster.namespace().unwrap_or_default(), stage = error.stage(), reason = error.reason(), "reconcile failed (retrying in {wait:?}): {error}");
    Action::requeue(wait)
}
