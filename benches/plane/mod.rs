//! What the benchmarks on a private control plane share (`benches/operator.rs`,
//! `benches/scale.rs`, each including this file with `#[path]`): an operator
//! process and its /proc figures, bulk creation with retries, watched caches,
//! waiting, and namespaces made and emptied.
#![allow(dead_code)] // each bench uses its own part

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::ApiResource;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../../tests/support/proc_status.rs"]
mod proc_status;

use proc_status::{ProcStatus, cpu_ticks};

pub const MIB: f64 = 1024.0;

pub type Res<T> = Result<T, String>;

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A progress line on stderr: `[bench-<name> HH:MM:SS] msg`, the name being
/// the bench executable's (`operator-<hash>` → `operator`).
pub fn log(msg: impl AsRef<str>) {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let tag = TAG.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .map(|s| s.split('-').next().unwrap_or_default().to_string())
            .unwrap_or_default()
    });
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    eprintln!(
        "[bench-{tag} {:02}:{:02}:{:02}] {}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        msg.as_ref()
    );
}

pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / MIB)
}

/// The 1-minute load average, as `/proc/loadavg` gives it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

// --- /proc ----------------------------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// RssAnon: the process' own memory (heap, stacks), without the binary's
    /// code pages that RssFile counts and that do not grow with clusters.
    pub anon_kib: u64,
    pub threads: u64,
}

pub fn proc_mem(pid: u32) -> Res<Mem> {
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
pub fn proc_cpu(pid: u32) -> Res<f64> {
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

/// The body of `GET path` from a server on loopback `port`; an error unless it answers 200.
pub async fn http_get(port: u16, path: &str) -> Res<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
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

/// The sum of the samples of metric `name` (in Prometheus' text format) whose
/// labels `keep` accepts (it is given the text between the braces, or "").
pub fn sum_samples(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            keep(labels).then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

// --- an operator process --------------------------------------------------------------------------

/// An operator under test: its process, stderr and stdout to a log file, and
/// the loopback port of its health endpoint.
pub struct Process {
    child: Child,
    port: u16,
}

impl Process {
    /// Starts `program args` and waits until `GET ready_path` on the health
    /// port answers 200 with a body starting `ok`, then `warmup` more for its
    /// initial lists.
    pub async fn start(
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log_path: &Path,
        port: u16,
        ready_path: &str,
        warmup: Duration,
    ) -> Res<Process> {
        // An operator left from an interrupted run would answer for this one.
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Err(format!(
                "port 127.0.0.1:{port} is already in use: an operator left running? (set BENCH_HEALTH_PORT)"
            ));
        }
        let log_file = std::fs::File::create(log_path).map_err(|e| e.to_string())?;
        let log_out = log_file.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log_out)
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program.display()))?;
        // hack/bench-plane.sh stops it by this PID should the bench be killed.
        let _ = std::fs::write(log_path.with_extension("pid"), child.id().to_string());
        let mut op = Process { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = op.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}); see {}",
                    program.display(),
                    log_path.display()
                ));
            }
            if op.get(ready_path).await.is_ok_and(|b| b.starts_with("ok")) {
                tokio::time::sleep(warmup).await;
                return Ok(op);
            }
            if Instant::now() > deadline {
                op.stop();
                return Err(format!(
                    "{} not ready after 60s; see {}",
                    program.display(),
                    log_path.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn mem(&self) -> Res<Mem> {
        proc_mem(self.pid())
    }

    pub fn cpu(&self) -> Res<f64> {
        proc_cpu(self.pid())
    }

    /// Fails when the process has exited (a crash mid-run).
    pub fn check_alive(&mut self) -> Res<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("the operator exited mid-run ({status})")),
            Err(e) => Err(e.to_string()),
        }
    }

    pub async fn get(&self, path: &str) -> Res<String> {
        http_get(self.port, path).await
    }

    pub async fn metric(&self, name: &str) -> Option<f64> {
        let body = self.get("/metrics").await.ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    pub fn stop(&mut self) {
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

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// The chart's RayCluster (`ray-operator render --set clusterOnly=true,<set>`)
/// as JSON: both benches' clusters, and their pods' specs.
pub fn rendered_cluster(operator_bin: &Path, set: &str) -> Res<serde_json::Value> {
    let out = Command::new(operator_bin)
        .args(["render", "bench", "-n", "bench", "--set"])
        .arg(format!("clusterOnly=true{set}"))
        .output()
        .map_err(|e| format!("{}: {e}", operator_bin.display()))?;
    if !out.status.success() {
        return Err(format!("render: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let v = <serde_json::Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| e.to_string())?;
        if v["kind"] == "RayCluster" {
            return Ok(v);
        }
    }
    Err("render printed no RayCluster".into())
}

// --- the API --------------------------------------------------------------------------------------

/// Creates `n` objects made by `make(i)` with `concurrency` requests in
/// flight; retries each a few times (429/5xx under load). Returns the wall time.
pub async fn create_all(
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
                        Err(_) if attempt < 5 => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                        Err(e) => {
                            // An API server's 422 lists every cause twice over: the first 600 characters say it.
                            let e: String = e.to_string().chars().take(600).collect();
                            return Err(format!("creating {}: {e}", obj.name_any()));
                        }
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

/// A cache of one namespace's objects of `resource`, kept by a background
/// watch; `strip` drops what the bench never reads (it may hold 40,000 pods).
pub fn watch_dynamic(
    client: &Client,
    ns: &str,
    resource: &ApiResource,
    strip: fn(&mut DynamicObject),
) -> Store<DynamicObject> {
    let writer = reflector::store::Writer::new(resource.clone());
    let store = writer.as_reader();
    let stream = watcher(
        Api::<DynamicObject>::namespaced_with(client.clone(), ns, resource),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(strip)
    .reflect(writer)
    .applied_objects();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    store
}

/// A pod cache of one namespace, kept by a background watch.
pub fn watch_pods(client: &Client, ns: &str) -> Store<Pod> {
    let (store, writer) = reflector::store();
    let stream = watcher(
        Api::<Pod>::namespaced(client.clone(), ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|p| {
        p.metadata.managed_fields = None;
        p.metadata.annotations = None;
        p.spec = None;
        if let Some(status) = p.status.as_mut() {
            *status = k8s_openapi::api::core::v1::PodStatus {
                phase: status.phase.take(),
                ..Default::default()
            };
        }
    })
    .reflect(writer)
    .applied_objects();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    store
}

pub fn is_running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// (pods not being deleted, pods Running).
pub fn pod_counts(pods: &Store<Pod>) -> (usize, usize) {
    let all = pods.state();
    let live = all
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count();
    let running = all.iter().filter(|p| is_running(p)).count();
    (live, running)
}

/// Polls `check` every 100 ms until it is true; returns the time since `since`.
pub async fn until(
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
                "still waiting for {what} ({:.0}s, load {})",
                since.elapsed().as_secs_f64(),
                load_average()
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn create_namespace(client: &Client, ns: &str) -> Res<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
    }))
    .expect("a Namespace");
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(format!("namespace {ns}: {e}")),
    }
    // The ServiceAccount admission needs the default ServiceAccount first.
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
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

/// Force-deletes the namespace's objects of `resources` and its pods, then
/// the namespace; waits until it is gone. Returns the time it took.
pub async fn delete_namespace(
    client: &Client,
    ns: &str,
    resources: &[ApiResource],
    timeout: Duration,
) -> Res<Duration> {
    let start = Instant::now();
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::background()
    };
    for resource in resources {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
        let _ = api.delete_collection(&now, &ListParams::default()).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
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

/// The control plane's own speed, the floor an operator is measured
/// against: `n` bare pods, `spec(i)` the i-th's spec, created in namespace
/// `ns` (made, then deleted) with `concurrency` requests in flight.
pub struct Floor {
    pub pods: usize,
    /// Until the API server took the last one.
    pub created: Duration,
    /// Until every one was Running.
    pub running: Duration,
    /// The load average when they were.
    pub load: String,
}

pub async fn bare_pods(
    client: &Client,
    ns: &str,
    n: usize,
    concurrency: usize,
    timeout: Duration,
    spec: impl Fn(usize) -> serde_json::Value,
) -> Res<Floor> {
    create_namespace(client, ns).await?;
    let pods = watch_pods(client, ns);
    pods.wait_until_ready().await.map_err(|e| e.to_string())?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<Pod>(&()));
    log(format!(
        "{ns}: creating {n} bare pods, {concurrency} in flight"
    ));
    let start = Instant::now();
    let created = create_all(&api, n, concurrency, |i| {
        let pod = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": format!("{ns}-{i}"), "namespace": ns},
            "spec": spec(i),
        });
        serde_json::from_value(pod).expect("a pod object")
    })
    .await?;
    log(format!(
        "{ns}: {n} pods created in {:.1}s",
        created.as_secs_f64()
    ));
    let running = until(
        &format!("{ns}: {n} bare pods Running"),
        start,
        timeout,
        || pod_counts(&pods).1 >= n,
    )
    .await?;
    let load = load_average();
    delete_namespace(client, ns, &[], timeout).await?;
    Ok(Floor {
        pods: n,
        created,
        running,
        load,
    })
}
