//! The autoscaler benchmark (issue 5): `make bench-autoscaler`
//! (`cargo bench --bench autoscaler`, so the operator is the release build).
//!
//! 1. Scale-up latency: time from a task's `.remote()` (a driver prints the
//!    wall clock just before it) to the operator's new worker pod arriving on
//!    a pod watch, over `BENCH_RUNS` (default 12) runs per autoscaler interval
//!    (`BENCH_INTERVALS`, default `1000,250` ms). Each run adds one 4-CPU task;
//!    no Ray worker joins, so every task needs one more pod. A random pause
//!    before each run samples all phases of the autoscaler's ticker.
//! 2. Cost of idle clusters: `BENCH_CLUSTERS` (default 1000) RayClusters whose
//!    `gcsAddress` is the one real Ray head (so every task really polls it),
//!    heads on a tainted kwok node of their own; the operator's VmRSS / VmHWM
//!    and CPU time (utime+stime) over `BENCH_WINDOW_S` (default 30) seconds,
//!    with the autoscaler off and on (interval 1000 ms).
//! 3. Idle clusters at scale: `BENCH_FAKE_CLUSTERS` (default 10000) head-only
//!    RayClusters pointed at one in-process fake GCS (the test-only
//!    `gcsAddress`), plus a probe cluster with a fake GCS of its own; the
//!    operator's VmRSS and CPU over the window with the autoscaler off and on,
//!    each a fresh operator (not the one that created the pods) measured once
//!    it has written nothing for 10 s
//!    (`BENCH_QUIET_MS`, default that of the operator, between two reads of a quiet
//!    cluster), then `BENCH_RUNS` times new demand of one worker on the probe
//!    and the time until its pod arrives on a pod watch.
//!
//! Needs the local control plane (started if needed) and Ray (`make ray`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use ray_operator::operator::autoscaler::gcs::{GcsClient, GcsOptions};
use ray_operator::operator::resources::bundle;
use support::cluster::{TestNamespace, kwok, shared};
use support::kwok_clusters::{is_running, live_pods};
use support::operator::{BIN, Operator, install_crd, kubectl};
use support::proc_status::{ProcStatus, cpu_ticks};
use support::ray::RayHead;

const BENCH_NODE: &str = "rayop-bench";

/// The in-process fake GCS the unit tests use, served here for the idle
/// clusters (it reaches the client's types as `super::gcs` and `super::proto`).
#[allow(dead_code)]
#[path = "../src/operator/autoscaler/fake_gcs.rs"]
mod fake_gcs;
use fake_gcs::{FakeGcs, Node, Setup};
use ray_operator::operator::autoscaler::{gcs, proto};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cluster_yaml(name: &str, gcs: &str, max_cpu_workers: u32, on_bench_node: bool) -> String {
    let placement = if on_bench_node {
        format!(
            "\n        nodeSelector: {{kubernetes.io/hostname: {BENCH_NODE}}}\n        tolerations: [{{key: rayop-bench, operator: Exists, effect: NoSchedule}}]"
        )
    } else {
        String::new()
    };
    format!(
        r#"---
apiVersion: cluster.ray.io/v1
kind: RayCluster
metadata: {{name: {name}}}
spec:
  headPodType: head
  gcsAddress: "{gcs}"
  podTypes:
  - name: head
    rayResources: {{CPU: 0}}
    podConfig:
      spec:{placement}
        containers:
        - {{name: ray-node, image: rayproject/ray:2.47.1, resources: {{limits: {{cpu: 100m, memory: 128Mi}}}}}}
  - name: cpu
    minWorkers: 0
    maxWorkers: {max_cpu_workers}
    podConfig:
      spec:
        containers:
        - {{name: ray-node, image: rayproject/ray:2.47.1, resources: {{limits: {{cpu: 4, memory: 4Gi}}}}}}
"#
    )
}

/// Running live pods in `ns` matching `labels`.
async fn running_pods(client: &Client, ns: &str, labels: &str) -> usize {
    let pods = live_pods(client, ns, labels).await;
    pods.iter().filter(|p| is_running(p)).count()
}

async fn wait_running(client: &Client, ns: &str, labels: &str, n: usize, timeout: Duration) {
    let start = Instant::now();
    loop {
        let have = running_pods(client, ns, labels).await;
        if have >= n {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "only {have} of {n} pods ({labels}) Running after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A cheap pseudo-random number in 0..n (no extra dependency).
fn random_below(n: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (nanos ^ (nanos >> 17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) % n.max(1)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Waits until the head's GCS holds no queued demand: the tasks of an earlier
/// run's driver stay queued until the GCS sees that driver gone, and a new
/// operator would scale for them before the first run of its own.
async fn no_pending_demand(head: &RayHead) {
    let gcs = GcsClient::new(GcsOptions::new(head.address())).expect("GCS address");
    let start = Instant::now();
    loop {
        match gcs.cluster_state().await {
            Ok(state) if state.pending.is_empty() && state.gangs.is_empty() => return,
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the head still holds an earlier driver's demand after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// When a pod watch first saw each pod in `ns` matching `labels`, by name;
/// the watch runs until the handle is aborted.
fn first_sight(
    client: &Client,
    ns: &str,
    labels: &str,
) -> (
    Arc<Mutex<HashMap<String, SystemTime>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let config = watcher::Config::default().labels(labels);
    let watch = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, config).boxed();
            while let Some(event) = events.next().await {
                if let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event {
                    seen.lock()
                        .unwrap()
                        .entry(pod.name_any())
                        .or_insert_with(SystemTime::now);
                }
            }
        })
    };
    (seen, watch)
}

/// Seconds from `.remote()` to the new pod's watch event, one per run.
async fn latency(client: &Client, head: &RayHead, interval_ms: u64, runs: usize) -> Vec<f64> {
    no_pending_demand(head).await;
    let ns_guard = TestNamespace::new(client, &format!("bench-lat-{interval_ms}")).await;
    let ns = ns_guard.name.clone();
    let interval = interval_ms.to_string();
    let operator = Operator::start(
        &format!("bl{interval_ms}"),
        &ns,
        true,
        &["--autoscaler=true", "--autoscaler-interval-ms", &interval],
    )
    .await;
    let name = "lat";
    kubectl(
        &["apply", "-n", &ns, "-f", "-"],
        &cluster_yaml(name, &head.address(), 1000, false),
    );
    wait_running(
        client,
        &ns,
        &format!("ray-cluster-name={name},ray-node-type=head"),
        1,
        Duration::from_secs(60),
    )
    .await;

    let (seen, watch) = first_sight(client, &ns, "ray-user-node-type=cpu");
    let mut driver = head.spawn_driver("interactive", 0);
    let mut out = Vec::new();
    for run in 0..runs {
        tokio::time::sleep(Duration::from_millis(200 + random_below(interval_ms))).await;
        let before: Vec<String> = seen.lock().unwrap().keys().cloned().collect();
        driver.send("cpu");
        let line = driver
            .wait_line(|l| l.starts_with("SUBMITTED "), Duration::from_secs(30))
            .expect("the driver submitted");
        let submitted: f64 = line["SUBMITTED ".len()..].parse().unwrap();
        let start = Instant::now();
        let created = loop {
            let new = seen
                .lock()
                .unwrap()
                .iter()
                .find(|(n, _)| !before.contains(n))
                .map(|(_, t)| *t);
            if let Some(t) = new {
                break t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "run {run}: no new pod after 60 s; operator log {}",
                operator.log.display()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let secs = created.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() - submitted;
        eprintln!("interval {interval_ms} ms, run {run}: {secs:.3} s");
        out.push(secs);
    }
    watch.abort();
    drop(driver);
    drop(operator);
    out
}

/// The operator process started with this log file's identity (HOSTNAME).
fn operator_pid(operator: &Operator) -> u32 {
    let hostname = format!(
        "HOSTNAME={}\0",
        operator.log.file_stem().unwrap().to_string_lossy()
    );
    let bin = std::fs::canonicalize(BIN).unwrap();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let exe = std::fs::read_link(entry.path().join("exe")).ok();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if exe.as_deref() == Some(bin.as_path())
            && String::from_utf8_lossy(&environ).contains(&hostname)
        {
            return pid;
        }
    }
    panic!("no operator process with {hostname}");
}

/// (VmRSS KiB, VmHWM KiB, utime+stime ticks).
fn usage(pid: u32) -> (u64, u64, u64) {
    let status = ProcStatus::read(pid).unwrap();
    let ticks = cpu_ticks(pid).unwrap();
    let kib = |name: &str| status.field(name).unwrap_or(0);
    (kib("VmRSS:"), kib("VmHWM:"), ticks)
}

struct Cost {
    rss_kib: u64,
    hwm_kib: u64,
    cpu_percent: f64,
}

async fn measure(operator: &Operator, settle: Duration, window: Duration) -> Cost {
    let pid = operator_pid(operator);
    tokio::time::sleep(settle).await;
    let (_, _, t0) = usage(pid);
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let (rss_kib, hwm_kib, t1) = usage(pid);
    let ticks_per_s = 100.0; // CLK_TCK on Linux
    Cost {
        rss_kib,
        hwm_kib,
        cpu_percent: (t1 - t0) as f64 / ticks_per_s / start.elapsed().as_secs_f64() * 100.0,
    }
}

async fn idle_clusters(
    client: &Client,
    head: &RayHead,
    n: usize,
    window: Duration,
) -> Vec<(String, Cost)> {
    let ns_guard = TestNamespace::new(client, "bench-idle").await;
    let ns = ns_guard.name.clone();
    bench_node(n + 100);
    let t = Instant::now();
    let docs: String = (0..n)
        .map(|i| cluster_yaml(&format!("idle-{i:04}"), &head.address(), 2, true))
        .collect();
    apply_in_chunks(&ns, &docs);
    eprintln!("{n} RayClusters created in {:?}", t.elapsed());
    let mut out = Vec::new();
    for (label, flags) in [
        ("autoscaler off", vec!["--autoscaler=false"]),
        (
            "autoscaler on (1000 ms)",
            vec!["--autoscaler=true", "--autoscaler-interval-ms", "1000"],
        ),
    ] {
        let release = if flags[0].ends_with("false") {
            "bi-off"
        } else {
            "bi-on"
        };
        let operator = Operator::start(release, &ns, true, &flags).await;
        let cost = settle_and_measure(client, &operator, &ns, n, label, window).await;
        out.push((label.to_string(), cost));
        drop(operator);
    }
    delete_bench_node();
    out
}

/// Applies many YAML documents, a thousand per `kubectl apply`.
fn apply_in_chunks(ns: &str, docs: &str) {
    for chunk in docs
        .split_inclusive("---\n")
        .collect::<Vec<_>>()
        .chunks(1000)
    {
        kubectl(&["apply", "-n", ns, "-f", "-"], &chunk.concat());
    }
}

/// Waits for `heads` Running heads, then measures the operator over `window`.
async fn settle_and_measure(
    client: &Client,
    operator: &Operator,
    ns: &str,
    heads: usize,
    label: &str,
    window: Duration,
) -> Cost {
    let t = Instant::now();
    wait_running(
        client,
        ns,
        "ray-node-type=head",
        heads,
        Duration::from_secs(1800),
    )
    .await;
    eprintln!("{label}: {heads} heads Running after {:?}", t.elapsed());
    settled(operator, label).await;
    let cost = measure(operator, Duration::from_secs(15), window).await;
    eprintln!(
        "{label}: VmRSS {} KiB, VmHWM {} KiB, CPU {:.1}%",
        cost.rss_kib, cost.hwm_kib, cost.cpu_percent
    );
    cost
}

/// Waits until the operator has written nothing for 10 s: a restarted
/// operator first reconciles every cluster it finds, and that is not idle cost.
async fn settled(operator: &Operator, label: &str) {
    let t = Instant::now();
    let mut last = None;
    loop {
        let writes = operator.metrics().await.map(|m| {
            m.samples("ray_operator_api_writes_total")
                .values()
                .sum::<f64>()
        });
        if writes.is_some() && writes == last {
            eprintln!("{label}: no API write for 10 s after {:?}", t.elapsed());
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "{label}: still writing after 30 min"
        );
        last = writes;
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

fn delete_bench_node() {
    let _ = std::process::Command::new(shared().bin_dir().join("kubectl"))
        .arg("--kubeconfig")
        .arg(&shared().kubeconfig)
        .args(["delete", "node", BENCH_NODE, "--wait=false"])
        .output();
}

/// A fake node of our own for `pods` pods, so the heads neither crowd nor need the shared nodes.
fn bench_node(pods: usize) {
    kubectl(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Node
metadata:
  name: {BENCH_NODE}
  annotations: {{kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}}
  labels: {{type: kwok, kubernetes.io/hostname: {BENCH_NODE}, kubernetes.io/os: linux, kubernetes.io/arch: amd64}}
spec:
  taints: [{{key: rayop-bench, value: "true", effect: NoSchedule}}]
status:
  allocatable: {{cpu: "2000", memory: 4Ti, pods: "{pods}"}}
  capacity: {{cpu: "2000", memory: 4Ti, pods: "{pods}"}}
"#,
            pods = pods
        ),
    );
}

/// Idle clusters at scale (3. above): the cost with the autoscaler off and
/// on, and with it on, seconds from new demand on the probe to its pod.
async fn idle_at_scale(
    client: &Client,
    n: usize,
    window: Duration,
    quiet_ms: Option<u64>,
    runs: usize,
) -> (Vec<(String, Cost)>, Vec<f64>) {
    let ns_guard = TestNamespace::new(client, "bench-fake").await;
    let ns = ns_guard.name.clone();
    bench_node(n + 100);
    let idle = FakeGcs::serve(Setup::default()).await;
    let probe = FakeGcs::serve(Setup::default()).await;
    let t = Instant::now();
    let mut docs: String = (0..n)
        .map(|i| cluster_yaml(&format!("fake-{i:05}"), &idle.address, 2, true))
        .collect();
    docs.push_str(&cluster_yaml("probe", &probe.address, 1000, true));
    apply_in_chunks(&ns, &docs);
    eprintln!("{} RayClusters created in {:?}", n + 1, t.elapsed());
    let quiet = quiet_ms.map(|ms| ms.to_string());
    let mut on = vec!["--autoscaler=true"];
    if let Some(ms) = &quiet {
        on.extend(["--autoscaler-quiet-interval-ms", ms]);
    }
    let on_label = match quiet_ms {
        Some(ms) => format!("autoscaler on (quiet clusters every {ms} ms)"),
        None => "autoscaler on".to_string(),
    };
    let mut rows = Vec::new();
    // One operator creates the clusters' pods; the measured ones start fresh.
    let creator = Operator::start("bf-create", &ns, true, &["--autoscaler=false"]).await;
    wait_running(
        client,
        &ns,
        "ray-node-type=head",
        n + 1,
        Duration::from_secs(3600),
    )
    .await;
    drop(creator);
    let off = Operator::start("bf-off", &ns, true, &["--autoscaler=false"]).await;
    let label = "autoscaler off";
    rows.push((
        label.to_string(),
        settle_and_measure(client, &off, &ns, n + 1, label, window).await,
    ));
    drop(off);
    let operator = Operator::start("bf-on", &ns, true, &on).await;
    rows.push((
        on_label.clone(),
        settle_and_measure(client, &operator, &ns, n + 1, &on_label, window).await,
    ));
    let latencies = probe_latency(client, &ns, &probe, quiet_ms.unwrap_or(1000), runs).await;
    drop(operator);
    delete_bench_node();
    (rows, latencies)
}

/// Seconds from new demand on the probe's fake GCS to the new worker pod's
/// watch event, one per run. Each created worker then joins the fake as a
/// busy node, so the probe is quiet again before the next run.
async fn probe_latency(
    client: &Client,
    ns: &str,
    probe: &FakeGcs,
    quiet_ms: u64,
    runs: usize,
) -> Vec<f64> {
    let (seen, watch) = first_sight(client, ns, "ray-cluster-name=probe,ray-user-node-type=cpu");
    let mut out = Vec::new();
    for run in 0..runs {
        // A random phase against the task's reads.
        tokio::time::sleep(Duration::from_millis(500 + random_below(quiet_ms))).await;
        let before: Vec<String> = seen.lock().unwrap().keys().cloned().collect();
        let demand = SystemTime::now();
        probe.set(|s| s.pending = vec![(bundle([("CPU", 1.0)]), 1)]);
        let start = Instant::now();
        let (pod, created) = loop {
            let new = (seen.lock().unwrap().iter())
                .find(|(n, _)| !before.contains(n))
                .map(|(n, t)| (n.clone(), *t));
            if let Some(new) = new {
                break new;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "run {run}: no new pod after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        probe.set(|s| {
            s.pending.clear();
            let busy = Node::running(&pod, "cpu", bundle([("CPU", 4.0)]));
            s.nodes.push(Node {
                available: bundle([("CPU", 0.0)]),
                ..busy
            });
        });
        let secs = created.duration_since(demand).unwrap().as_secs_f64();
        eprintln!("probe run {run}: {secs:.3} s");
        out.push(secs);
    }
    watch.abort();
    out
}

/// A table of the operators' memory and CPU over `window`.
fn print_costs(rows: &[(String, Cost)], window: Duration) {
    println!(
        "| operator | VmRSS | VmHWM | CPU (utime+stime) over {}s |",
        window.as_secs()
    );
    println!("|---|---|---|---|");
    for (label, c) in rows {
        println!(
            "| {label} | {:.1} MiB | {:.1} MiB | {:.1}% of one core |",
            c.rss_kib as f64 / 1024.0,
            c.hwm_kib as f64 / 1024.0,
            c.cpu_percent
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let runs: usize = env_or("BENCH_RUNS", 12);
    let clusters: usize = env_or("BENCH_CLUSTERS", 1000);
    let window = Duration::from_secs(env_or("BENCH_WINDOW_S", 30));
    let fake_clusters: usize = env_or("BENCH_FAKE_CLUSTERS", 10_000);
    let quiet_ms: Option<u64> = std::env::var("BENCH_QUIET_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    let intervals: Vec<u64> = std::env::var("BENCH_INTERVALS")
        .unwrap_or_else(|_| "1000,250".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    support::ray::venv();
    let _kwok = kwok();
    install_crd();
    let client = shared().client().await;
    let head = RayHead::start_with(&["--num-cpus=0"]);

    let mut latency_rows = Vec::new();
    for &ms in &intervals {
        let mut v = latency(&client, &head, ms, runs).await;
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        latency_rows.push((ms, v));
    }
    let idle = if clusters > 0 {
        idle_clusters(&client, &head, clusters, window).await
    } else {
        vec![]
    };
    let at_scale = if fake_clusters > 0 {
        Some(idle_at_scale(&client, fake_clusters, window, quiet_ms, runs).await)
    } else {
        None
    };

    println!("\n### Scale-up latency: `.remote()` to the worker pod's watch event\n");
    println!("| autoscaler interval | runs | min | median | p90 | worst |");
    println!("|---|---|---|---|---|---|");
    for (ms, v) in &latency_rows {
        println!(
            "| {ms} ms | {} | {:.3} s | {:.3} s | {:.3} s | {:.3} s |",
            v.len(),
            v[0],
            percentile(v, 0.5),
            percentile(v, 0.9),
            v[v.len() - 1]
        );
    }
    if !idle.is_empty() {
        println!(
            "\n### Operator cost with {clusters} idle clusters (each task polling the one real head)\n"
        );
        print_costs(&idle, window);
        if let [(_, off), (_, on)] = &idle[..] {
            println!(
                "\nThe autoscaler tasks add {:.1} MiB RSS ({:.1} KiB per cluster).",
                (on.rss_kib as f64 - off.rss_kib as f64) / 1024.0,
                (on.rss_kib as f64 - off.rss_kib as f64) / clusters as f64
            );
        }
    }
    if let Some((rows, mut latencies)) = at_scale {
        latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("\n### {fake_clusters} idle clusters (one fake GCS) and a probe cluster\n");
        print_costs(&rows, window);
        if let [(_, off), (_, on)] = &rows[..] {
            println!(
                "\nThe autoscaler adds {:.1} MiB RSS and {:.1}% of a core over {fake_clusters} idle clusters.",
                (on.rss_kib as f64 - off.rss_kib as f64) / 1024.0,
                on.cpu_percent - off.cpu_percent
            );
        }
        if !latencies.is_empty() {
            println!(
                "\nNew demand on the probe to its worker pod's watch event, {} runs: min {:.3} s, median {:.3} s, p90 {:.3} s, worst {:.3} s.",
                latencies.len(),
                latencies[0],
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.9),
                latencies[latencies.len() - 1]
            );
        }
    }
}
