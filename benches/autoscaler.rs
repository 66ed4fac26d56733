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
use support::cluster::{TestNamespace, kwok, shared};
use support::kwok_clusters::{is_running, live_pods};
use support::operator::{BIN, Operator, install_crd, kubectl};
use support::proc_status::{ProcStatus, cpu_ticks};
use support::ray::RayHead;

const BENCH_NODE: &str = "rayop-bench";

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

    // First sight of each worker pod on a watch, by name.
    let seen: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let config = watcher::Config::default().labels("ray-user-node-type=cpu");
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
    // A fake node of our own, so the heads neither crowd nor need the shared nodes.
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
            pods = n + 100
        ),
    );
    let t = Instant::now();
    let docs: String = (0..n)
        .map(|i| cluster_yaml(&format!("idle-{i:04}"), &head.address(), 2, true))
        .collect();
    for chunk in docs
        .split_inclusive("---\n")
        .collect::<Vec<_>>()
        .chunks(1000)
    {
        kubectl(&["apply", "-n", &ns, "-f", "-"], &chunk.concat());
    }
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
        let t = Instant::now();
        wait_running(
            client,
            &ns,
            "ray-node-type=head",
            n,
            Duration::from_secs(900),
        )
        .await;
        eprintln!("{label}: {n} heads Running after {:?}", t.elapsed());
        let cost = measure(&operator, Duration::from_secs(15), window).await;
        eprintln!(
            "{label}: VmRSS {} KiB, VmHWM {} KiB, CPU {:.1}%",
            cost.rss_kib, cost.hwm_kib, cost.cpu_percent
        );
        out.push((label.to_string(), cost));
        drop(operator);
    }
    let _ = std::process::Command::new(shared().bin_dir().join("kubectl"))
        .arg("--kubeconfig")
        .arg(&shared().kubeconfig)
        .args(["delete", "node", BENCH_NODE, "--wait=false"])
        .output();
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let runs: usize = env_or("BENCH_RUNS", 12);
    let clusters: usize = env_or("BENCH_CLUSTERS", 1000);
    let window = Duration::from_secs(env_or("BENCH_WINDOW_S", 30));
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
        println!(
            "| operator | VmRSS | VmHWM | CPU (utime+stime) over {}s |",
            window.as_secs()
        );
        println!("|---|---|---|---|");
        for (label, c) in &idle {
            println!(
                "| {label} | {:.1} MiB | {:.1} MiB | {:.1}% of one core |",
                c.rss_kib as f64 / 1024.0,
                c.hwm_kib as f64 / 1024.0,
                c.cpu_percent
            );
        }
        if let [(_, off), (_, on)] = &idle[..] {
            println!(
                "\nThe autoscaler tasks add {:.1} MiB RSS ({:.1} KiB per cluster).",
                (on.rss_kib as f64 - off.rss_kib as f64) / 1024.0,
                (on.rss_kib as f64 - off.rss_kib as f64) / clusters as f64
            );
        }
    }
}
