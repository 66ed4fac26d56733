//! The operator benchmark (issue 4): `make bench-operator`.
//!
//! Run by `hack/bench-plane.sh operator`, which owns the private control plane
//! (`KUBECONFIG` points at it) and tears it down. This binary:
//!
//! 1. times how fast the API server alone creates `BENCH_REF_PODS` bare pods
//!    (the worker pod of the chart) with `BENCH_CLIENT_CONCURRENCY` requests
//!    in flight, as a reference;
//! 2. for each operator variant (`BENCH_VARIANTS`: `default`, or environments
//!    to compare, e.g. `default;RUST_LOG=debug`): starts `ray-operator run --autoscaler=false
//!    --leader-elect=false --health-port <port>` and reads its VmRSS/VmHWM idle,
//!    with `BENCH_SMALL` head-only clusters Running, then (a fresh process)
//!    with `BENCH_BIG` clusters of 1 head + `BENCH_WORKERS` workers Running,
//!    timing that burst and the operator's CPU time over it;
//! 3. prints markdown tables.
//!
//! Progress goes to stderr; the tables to stdout.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use ray_operator::api::{Phase, RayCluster};

#[path = "plane/mod.rs"]
mod plane;

use plane::{
    Floor, MIB, Mem, Process, Res, bare_pods, create_all, create_namespace, delete_namespace,
    env_or, log, mib, pod_counts, rendered_cluster, until, watch_pods,
};

struct Opts {
    operator_bin: PathBuf,
    log_dir: PathBuf,
    health_port: u16,
    client_concurrency: usize,
    small: usize,
    big: usize,
    workers: usize,
    ref_pods: usize,
    variants: Vec<(String, Vec<(String, String)>)>,
    timeout: Duration,
    settle: Duration,
}

impl Opts {
    fn from_env() -> Opts {
        let variants = std::env::var("BENCH_VARIANTS")
            .unwrap_or_else(|_| "default".into())
            .split(';')
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                let v = v.trim();
                let env = v
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (v.to_string(), env)
            })
            .collect();
        Opts {
            operator_bin: env_or(
                "BENCH_OPERATOR_BIN",
                PathBuf::from("target/release/ray-operator"),
            ),
            log_dir: env_or("BENCH_LOG_DIR", std::env::temp_dir()),
            health_port: env_or("BENCH_HEALTH_PORT", 28490),
            client_concurrency: env_or("BENCH_CLIENT_CONCURRENCY", 64),
            small: env_or("BENCH_SMALL", 150),
            big: env_or("BENCH_BIG", 1000),
            workers: env_or("BENCH_WORKERS", 3),
            ref_pods: env_or("BENCH_REF_PODS", 4000),
            variants,
            timeout: Duration::from_secs(env_or("BENCH_TIMEOUT", 900)),
            settle: Duration::from_secs(env_or("BENCH_SETTLE", 5)),
        }
    }
}

/// `ray-operator run` without the autoscaler (kwok pods run no Ray), ready on `/healthz`.
async fn start_operator(opts: &Opts, env: &[(String, String)], tag: &str) -> Res<Process> {
    let args = [
        "run",
        "--autoscaler=false",
        // kwok pods run no Ray to read the health of.
        "--ray-health=false",
        "--leader-elect=false",
        "--health-port",
        &opts.health_port.to_string(),
    ]
    .map(String::from);
    let log_path = opts.log_dir.join(format!("operator-{tag}.log"));
    // /readyz is ready once the caches are; a moment more for the initial lists' events.
    Process::start(
        &opts.operator_bin,
        &args,
        env,
        &log_path,
        opts.health_port,
        "/healthz",
        Duration::from_secs(2),
    )
    .await
}

// --- the API --------------------------------------------------------------------------------------

fn cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.ray.io", "v1", "RayCluster"),
        "rayclusters",
    )
}

fn watch_clusters(client: &Client, ns: &str) -> Store<RayCluster> {
    let (store, writer) = reflector::store();
    let stream = watcher(
        Api::<RayCluster>::namespaced(client.clone(), ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    store
}

fn running_clusters(clusters: &Store<RayCluster>) -> usize {
    clusters
        .state()
        .iter()
        .filter(|c| c.status.as_ref().and_then(|s| s.phase) == Some(Phase::Running))
        .count()
}

// --- the scenarios --------------------------------------------------------------------------------

async fn reference(client: &Client, opts: &Opts, worker_pod: &serde_json::Value) -> Res<Floor> {
    bare_pods(
        client,
        "bench-ref",
        opts.ref_pods,
        opts.client_concurrency,
        opts.timeout,
        |_| worker_pod["spec"].clone(),
    )
    .await
}

#[derive(Default)]
struct Row {
    variant: String,
    idle: Mem,
    small: Mem,
    small_pods: f64,
    big_idle: Mem,
    big: Mem,
    big_pods: f64,
    created: Duration,
    pods_exist: Duration,
    all_running: Duration,
    cpu: f64,
}

async fn settle_and_measure(op: &Process, settle: Duration) -> Res<Mem> {
    tokio::time::sleep(settle).await;
    let m = op.mem()?;
    log(format!(
        "operator pid {}: VmRSS {} MiB, VmHWM {} MiB, {} threads",
        op.pid(),
        mib(m.rss_kib),
        mib(m.hwm_kib),
        m.threads
    ));
    Ok(m)
}

async fn variant(
    client: &Client,
    opts: &Opts,
    name: &str,
    env: &[(String, String)],
    head_only: &serde_json::Value,
    with_workers: &serde_json::Value,
    index: usize,
) -> Res<Row> {
    let mut row = Row {
        variant: name.to_string(),
        ..Default::default()
    };
    let clusters_api = |ns: &str| -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), ns, &cluster_resource())
    };
    let make = |template: &serde_json::Value, ns: &str, prefix: &str, i: usize| -> DynamicObject {
        let mut c = template.clone();
        c["metadata"]["name"] = format!("{prefix}-{i}").into();
        c["metadata"]["namespace"] = ns.into();
        c["metadata"]["labels"]["app.kubernetes.io/instance"] = format!("{prefix}-{i}").into();
        serde_json::from_value(c).expect("RayCluster object")
    };

    // --- idle, then the small clusters ---
    log(format!("[{name}] starting the operator (idle)"));
    let op = start_operator(opts, env, &format!("{index}-small")).await?;
    row.idle = settle_and_measure(&op, opts.settle).await?;
    let ns = format!("bench-{index}-small");
    create_namespace(client, &ns).await?;
    let clusters = watch_clusters(client, &ns);
    clusters
        .wait_until_ready()
        .await
        .map_err(|e| e.to_string())?;
    log(format!(
        "[{name}] creating {} head-only clusters",
        opts.small
    ));
    let start = Instant::now();
    create_all(
        &clusters_api(&ns),
        opts.small,
        opts.client_concurrency,
        |i| make(head_only, &ns, "small", i),
    )
    .await?;
    let n = opts.small;
    until(
        &format!("[{name}] {n} head-only clusters Running"),
        start,
        opts.timeout,
        || running_clusters(&clusters) >= n,
    )
    .await?;
    row.small = settle_and_measure(&op, opts.settle).await?;
    row.small_pods = op.metric("ray_operator_managed_pods").await.unwrap_or(-1.0);
    drop(op);
    delete_namespace(client, &ns, &[cluster_resource()], opts.timeout).await?;

    // --- a fresh operator, then the big burst ---
    log(format!("[{name}] starting a fresh operator"));
    let op = start_operator(opts, env, &format!("{index}-big")).await?;
    row.big_idle = settle_and_measure(&op, opts.settle).await?;
    let ns = format!("bench-{index}-big");
    create_namespace(client, &ns).await?;
    let clusters = watch_clusters(client, &ns);
    let pods = watch_pods(client, &ns);
    clusters
        .wait_until_ready()
        .await
        .map_err(|e| e.to_string())?;
    pods.wait_until_ready().await.map_err(|e| e.to_string())?;
    let n = opts.big;
    let want_pods = n * (1 + opts.workers);
    log(format!(
        "[{name}] creating {n} clusters of 1 head + {} workers",
        opts.workers
    ));
    let cpu0 = op.cpu()?;
    let start = Instant::now();
    let api = clusters_api(&ns);
    let creating = create_all(&api, n, opts.client_concurrency, |i| {
        make(with_workers, &ns, "big", i)
    });
    // Watch for the pods while the clusters are still being created.
    let pods_w = pods.clone();
    let what = format!("[{name}] {want_pods} pods exist");
    let exist = until(&what, start, opts.timeout, move || {
        pod_counts(&pods_w).0 >= want_pods
    });
    let (created, pods_exist) = tokio::join!(creating, exist);
    row.created = created?;
    row.pods_exist = pods_exist?;
    log(format!(
        "[{name}] {n} RayClusters created in {:.1}s",
        row.created.as_secs_f64()
    ));
    row.all_running = until(
        &format!("[{name}] {n} clusters Running"),
        start,
        opts.timeout,
        || running_clusters(&clusters) >= n,
    )
    .await?;
    row.cpu = op.cpu()? - cpu0;
    row.big = settle_and_measure(&op, opts.settle).await?;
    row.big_pods = op.metric("ray_operator_managed_pods").await.unwrap_or(-1.0);
    drop(op);
    if index + 1 < opts.variants.len() {
        delete_namespace(client, &ns, &[cluster_resource()], opts.timeout).await?;
    }
    Ok(row)
}

fn verdict(kib: u64, target_mib: f64) -> &'static str {
    if (kib as f64 / MIB) < target_mib {
        "yes"
    } else {
        "**no**"
    }
}

/// One row of the memory table; a target (MiB of RSS) adds the verdict.
fn mem_row(variant: &str, scenario: &str, m: &Mem, target_mib: Option<f64>) {
    let target = match target_mib {
        Some(t) => format!(" < {t:.0} MiB | {} |", verdict(m.rss_kib, t)),
        None => " | |".to_string(),
    };
    println!(
        "| {variant} | {scenario} | {} | {} | {} | {} |{target}",
        mib(m.rss_kib),
        mib(m.hwm_kib),
        mib(m.anon_kib),
        m.threads
    );
}

fn print_tables(opts: &Opts, rows: &[Row], reference: &Floor) {
    let n = opts.big;
    let pods = n * (1 + opts.workers);
    println!("### Operator memory (VmRSS / VmHWM / RssAnon from /proc/<pid>/status)\n");
    println!(
        "| variant | scenario | VmRSS (MiB) | VmHWM (MiB) | RssAnon (MiB) | threads | target | met (RSS) |"
    );
    println!("|---|---|---:|---:|---:|---:|---|---|");
    for r in rows {
        let v = &r.variant;
        mem_row(v, "idle, 0 clusters", &r.idle, None);
        let small = format!(
            "{} head-only clusters Running ({} pods cached)",
            opts.small, r.small_pods
        );
        mem_row(v, &small, &r.small, Some(16.0));
        mem_row(v, "idle, fresh process", &r.big_idle, None);
        let big = format!(
            "{n} clusters × (1 head + {} workers) Running ({} pods cached)",
            opts.workers, r.big_pods
        );
        mem_row(v, &big, &r.big, Some(64.0));
    }
    println!();
    println!(
        "### Creating {n} RayClusters ({pods} pods), {} client requests in flight\n",
        opts.client_concurrency
    );
    println!(
        "| variant | RayClusters created | all {pods} pods exist | all {n} Running | pods/s (to exist) | operator CPU (utime+stime) | operator CPU / wall |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.1} s | {:.1} s | {:.1} s | {:.0} | {:.1} s | {:.0}% |",
            r.variant,
            r.created.as_secs_f64(),
            r.pods_exist.as_secs_f64(),
            r.all_running.as_secs_f64(),
            pods as f64 / r.pods_exist.as_secs_f64(),
            r.cpu,
            100.0 * r.cpu / r.all_running.as_secs_f64()
        );
    }
    println!(
        "| reference: API server alone, {} bare pods | — | {:.1} s | {:.1} s (pods Running) | {:.0} | — | — |",
        opts.ref_pods,
        reference.created.as_secs_f64(),
        reference.running.as_secs_f64(),
        opts.ref_pods as f64 / reference.created.as_secs_f64()
    );
    // End to end, both runs end when every pod is Running (the scheduler and
    // kwok bind and start pods at the control plane's own rate). The operator
    // creates a cluster's workers once its head runs (they join that head), so
    // its pods exist later than bare pods would, by design; what tells whether
    // it is the limit is its time to all Running and its own CPU use.
    let best = rows
        .iter()
        .map(|r| r.all_running.as_secs_f64())
        .fold(f64::INFINITY, f64::min);
    let ratio = best / (reference.running.as_secs_f64() * pods as f64 / opts.ref_pods as f64);
    let busiest = rows
        .iter()
        .map(|r| r.cpu / r.all_running.as_secs_f64())
        .fold(0.0, f64::max);
    println!();
    println!(
        "Every pod Running through the operator took {ratio:.2}x the control plane's own time for as many bare pods, \
         with the operator using at most {:.0}% of one core: {}.",
        100.0 * busiest,
        if ratio < 1.5 && busiest < 0.5 {
            "the control plane (API server, scheduler, kwok), not the operator, is the limit"
        } else {
            "the operator is the limit"
        }
    );
}

fn main() -> std::process::ExitCode {
    let opts = Opts::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(bench(&opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log(format!("FAILED: {e}"));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench(opts: &Opts) -> Res<()> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("connecting (KUBECONFIG): {e}"))?;
    let head_only = rendered_cluster(&opts.operator_bin, "")?;
    let with_workers = rendered_cluster(
        &opts.operator_bin,
        &format!(",podTypes.rayWorkerType.minWorkers={}", opts.workers),
    )?;
    let worker_pod = with_workers["spec"]["podTypes"]
        .as_array()
        .and_then(|types| types.iter().find(|t| t["name"] == "rayWorkerType"))
        .map(|t| t["podConfig"].clone())
        .ok_or("no rayWorkerType in the rendered RayCluster")?;
    let reference = reference(&client, opts, &worker_pod).await?;
    let mut rows = Vec::new();
    for (index, (name, env)) in opts.variants.iter().enumerate() {
        rows.push(variant(&client, opts, name, env, &head_only, &with_workers, index).await?);
    }
    print_tables(opts, &rows, &reference);
    Ok(())
}
