//! The operator benchmark (issue 4): `make bench-operator`.
//!
//! Run by `hack/bench-operator.sh`, which owns the private control plane
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
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use ray_operator::api::{Phase, RayCluster};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../tests/support/proc_status.rs"]
mod proc_status;

use proc_status::{ProcStatus, cpu_ticks};

const MIB: f64 = 1024.0;

type Res<T> = Result<T, String>;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[bench-operator {}] {}", chrono_now(), msg.as_ref());
}

fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

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

// --- /proc ----------------------------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
struct Mem {
    rss_kib: u64,
    hwm_kib: u64,
    /// RssAnon: the process' own memory (heap, stacks), without the binary's
    /// code pages that RssFile counts and that do not grow with clusters.
    anon_kib: u64,
    threads: u64,
}

fn proc_mem(pid: u32) -> Res<Mem> {
    let status = ProcStatus::read(pid).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| status.field(name).unwrap_or(0);
    Ok(Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        anon_kib: field("RssAnon:"),
        threads: field("Threads:"),
    })
}

/// utime + stime of the process, in seconds.
fn proc_cpu(pid: u32) -> Res<f64> {
    let ticks = cpu_ticks(pid).map_err(|e| e.to_string())?;
    Ok(ticks as f64 / clk_tck())
}

fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

// --- the operator process -------------------------------------------------------------------------

struct Operator {
    child: Child,
    port: u16,
}

impl Operator {
    async fn start(opts: &Opts, env: &[(String, String)], tag: &str) -> Res<Operator> {
        let log_path = opts.log_dir.join(format!("operator-{tag}.log"));
        let log_file = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let child = Command::new(&opts.operator_bin)
            .args([
                "run",
                "--autoscaler=false",
                // kwok pods run no Ray to read the health of.
                "--ray-health=false",
                "--leader-elect=false",
                "--health-port",
                &opts.health_port.to_string(),
            ])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", opts.operator_bin.display()))?;
        let mut op = Operator {
            child,
            port: opts.health_port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = op.child.try_wait() {
                return Err(format!(
                    "operator exited ({status}); see {}",
                    log_path.display()
                ));
            }
            // /readyz never turns ready in this build (see the report of issue 4): wait for
            // /healthz, then for the startup log line and a moment for the initial lists.
            if op.get("/healthz").await.is_ok_and(|b| b.starts_with("ok")) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                return Ok(op);
            }
            if Instant::now() > deadline {
                op.stop();
                return Err("operator not ready after 60s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn get(&self, path: &str) -> Res<String> {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        if !head.contains(" 200 ") {
            return Err(head.lines().next().unwrap_or("").to_string());
        }
        Ok(body.to_string())
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        let body = self.get("/metrics").await.ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    fn stop(&mut self) {
        // SIGTERM via kill(1) (no libc dependency), then wait; SIGKILL if it lingers.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

// --- the API --------------------------------------------------------------------------------------

/// The chart's RayCluster (`ray-operator render --set clusterOnly=true`) as JSON.
fn rendered_cluster(opts: &Opts, workers: usize) -> Res<serde_json::Value> {
    let out = Command::new(&opts.operator_bin)
        .args([
            "render",
            "bench",
            "-n",
            "bench",
            "--set",
            &format!("clusterOnly=true,podTypes.rayWorkerType.minWorkers={workers}"),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("render: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let v = serde_json::Value::deserialize(doc).map_err(|e| e.to_string())?;
        if v["kind"] == "RayCluster" {
            return Ok(v);
        }
    }
    Err("render printed no RayCluster".into())
}

fn cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.ray.io", "v1", "RayCluster"),
        "rayclusters",
    )
}

/// Creates `n` objects made by `make(i)` with `concurrency` requests in
/// flight; retries each a few times (429/5xx under load). Returns the wall time.
async fn create_all(
    api: &Api<DynamicObject>,
    n: usize,
    concurrency: usize,
    make: impl Fn(usize) -> DynamicObject,
) -> Res<Duration> {
    let start = Instant::now();
    let failures = Arc::new(AtomicUsize::new(0));
    let results: Vec<Res<()>> = stream::iter(0..n)
        .map(|i| {
            let obj = make(i);
            let api = api.clone();
            let failures = failures.clone();
            async move {
                let mut attempt = 0;
                loop {
                    match api.create(&PostParams::default(), &obj).await {
                        Ok(_) => return Ok(()),
                        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
                        Err(e) if attempt < 5 => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            attempt += 1;
                            let _ = e;
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                        Err(e) => return Err(format!("creating {}: {e}", obj.name_any())),
                    }
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect::<Res<Vec<()>>>()?;
    let retries = failures.load(Ordering::Relaxed);
    if retries > 0 {
        log(format!("{retries} create requests were retried"));
    }
    Ok(start.elapsed())
}

/// A pod cache of one namespace, kept by a background watch.
fn watch_pods(client: &Client, ns: &str) -> Store<Pod> {
    let (store, writer) = reflector::store();
    let stream = watcher(
        Api::<Pod>::namespaced(client.clone(), ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|p| {
        p.metadata.managed_fields = None;
        p.spec = None;
    })
    .reflect(writer)
    .applied_objects();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    store
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

fn pod_counts(pods: &Store<Pod>) -> (usize, usize) {
    let all = pods.state();
    let live = all
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count();
    let running = all
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .count();
    (live, running)
}

fn running_clusters(clusters: &Store<RayCluster>) -> usize {
    clusters
        .state()
        .iter()
        .filter(|c| c.status.as_ref().and_then(|s| s.phase) == Some(Phase::Running))
        .count()
}

/// Polls `check` every 100 ms until it is true; returns the time since `since`.
async fn until(
    what: &str,
    since: Instant,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
) -> Res<Duration> {
    let mut last_report = Instant::now();
    loop {
        if check() {
            let t = since.elapsed();
            log(format!("{what}: {:.1}s", t.as_secs_f64()));
            return Ok(t);
        }
        if since.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            log(format!(
                "still waiting for {what} ({:.0}s)",
                since.elapsed().as_secs_f64()
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_namespace(client: &Client, ns: &str) -> Res<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
    }))
    .unwrap();
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(format!("namespace {ns}: {e}")),
    }
    // The ServiceAccount admission needs the default ServiceAccount first.
    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    while sa
        .get_opt("default")
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("no default ServiceAccount in {ns}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Force-deletes the namespace's RayClusters and pods, then the namespace;
/// waits until it is gone. Returns the time it took.
async fn delete_namespace(client: &Client, ns: &str, timeout: Duration) -> Res<Duration> {
    let start = Instant::now();
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &cluster_resource());
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::background()
    };
    let _ = clusters
        .delete_collection(&now, &ListParams::default())
        .await;
    let _ = pods.delete_collection(&now, &ListParams::default()).await;
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(ns, &DeleteParams::background()).await;
    loop {
        if api.get_opt(ns).await.map_err(|e| e.to_string())?.is_none() {
            let t = start.elapsed();
            log(format!("namespace {ns} deleted in {:.1}s", t.as_secs_f64()));
            return Ok(t);
        }
        if start.elapsed() > timeout {
            return Err(format!("namespace {ns} still there after {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// --- the scenarios --------------------------------------------------------------------------------

struct Reference {
    created: Duration,
    running: Duration,
}

async fn reference(client: &Client, opts: &Opts, worker_pod: &serde_json::Value) -> Res<Reference> {
    let ns = "bench-ref";
    create_namespace(client, ns).await?;
    let pods = watch_pods(client, ns);
    pods.wait_until_ready().await.map_err(|e| e.to_string())?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<Pod>(&()));
    log(format!(
        "reference: creating {} bare pods, {} in flight",
        opts.ref_pods, opts.client_concurrency
    ));
    let start = Instant::now();
    let created = create_all(&api, opts.ref_pods, opts.client_concurrency, |i| {
        let mut pod = worker_pod.clone();
        pod["metadata"] = serde_json::json!({
            "name": format!("ref-{i}"),
            "namespace": ns,
            "labels": {"app": "bench-ref"},
        });
        serde_json::from_value(pod).expect("pod object")
    })
    .await?;
    log(format!(
        "reference: {} pods created in {:.1}s",
        opts.ref_pods,
        created.as_secs_f64()
    ));
    let n = opts.ref_pods;
    let running = until(
        "reference: all bare pods Running",
        start,
        opts.timeout,
        || pod_counts(&pods).1 >= n,
    )
    .await?;
    delete_namespace(client, ns, opts.timeout).await?;
    Ok(Reference { created, running })
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

async fn settle_and_measure(op: &Operator, settle: Duration) -> Res<Mem> {
    tokio::time::sleep(settle).await;
    let m = proc_mem(op.pid())?;
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
    let op = Operator::start(opts, env, &format!("{index}-small")).await?;
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
    delete_namespace(client, &ns, opts.timeout).await?;

    // --- a fresh operator, then the big burst ---
    log(format!("[{name}] starting a fresh operator"));
    let op = Operator::start(opts, env, &format!("{index}-big")).await?;
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
    let cpu0 = proc_cpu(op.pid())?;
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
    row.cpu = proc_cpu(op.pid())? - cpu0;
    row.big = settle_and_measure(&op, opts.settle).await?;
    row.big_pods = op.metric("ray_operator_managed_pods").await.unwrap_or(-1.0);
    drop(op);
    if index + 1 < opts.variants.len() {
        delete_namespace(client, &ns, opts.timeout).await?;
    }
    Ok(row)
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / MIB)
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

fn print_tables(opts: &Opts, rows: &[Row], reference: &Reference) {
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
    let head_only = rendered_cluster(opts, 0)?;
    let with_workers = rendered_cluster(opts, opts.workers)?;
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
