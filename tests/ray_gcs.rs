//! The GCS client against a real Ray head (from the venv `make ray` installs).
//!
//! `RAY_VENV` picks a virtualenv; else `RAY_VERSION` (default the newest pinned)
//! selects `~/.cache/ray-operator/ray-<version>/venv`. Without Ray the test
//! fails and says to run `make ray`. Every Ray process started here is stopped
//! by PID (found through the test's own `--temp-dir`), also on panic.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ray_operator::autoscaler::gcs::{DrainReason, GcsClient, GcsOptions, NodeStatus};
use ray_operator::autoscaler::planner::{self, AutoscalerConfig, WorkerPod, WorkerType};
use ray_operator::autoscaler::resources::bundle;
use ray_operator::autoscaler::{AutoscalerReport, ClusterState};

const DEFAULT_RAY_VERSION: &str = "2.60.0";
const WORKER_POD: &str = "test-cpu-worker-abcde";
const WORKER_TYPE: &str = "cpu-worker";

fn venv() -> PathBuf {
    let venv = match std::env::var_os("RAY_VENV") {
        Some(v) => PathBuf::from(v),
        None => {
            let version =
                std::env::var("RAY_VERSION").unwrap_or_else(|_| DEFAULT_RAY_VERSION.into());
            let cache = std::env::var_os("RAY_OPERATOR_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/ray-operator")
                });
            cache.join(format!("ray-{version}/venv"))
        }
    };
    assert!(
        venv.join("bin/ray").exists(),
        "Ray is not installed in {}: run `make ray` (or set RAY_VENV to a virtualenv with ray)",
        venv.display()
    );
    venv
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Ray head (and any workers and drivers) started by this test; dropping it
/// stops every process whose command line names its temp dir, and their children.
struct RayHead {
    venv: PathBuf,
    temp_dir: PathBuf,
    port: u16,
    drivers: Vec<Child>,
}

impl RayHead {
    fn start() -> RayHead {
        let venv = venv();
        let temp_dir = PathBuf::from(format!("/tmp/rayop-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&temp_dir).unwrap();
        let port = free_port();
        let head = RayHead {
            venv,
            temp_dir,
            port,
            drivers: vec![],
        };
        let agent_port = free_port().to_string();
        head.ray_start(
            &[
                "--head",
                &format!("--port={port}"),
                "--num-cpus=1",
                "--include-dashboard=false",
                "--no-monitor",
                "--dashboard-agent-listen-port",
                &agent_port,
            ],
            &[],
        );
        head
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn ray_start(&self, args: &[&str], env: &[(&str, &str)]) {
        let out = Command::new(self.venv.join("bin/ray"))
            .arg("start")
            .args(args)
            .arg(format!("--temp-dir={}", self.temp_dir.display()))
            .arg("--disable-usage-stats")
            .envs(env.iter().copied())
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .stdin(Stdio::null())
            .output()
            .expect("run ray start");
        assert!(
            out.status.success(),
            "ray start {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A worker node reporting `instance_id` / `ray_node_type_name` like a pod of ours.
    fn start_worker(&self, pod: &str, pod_type: &str) {
        let agent_port = free_port().to_string();
        self.ray_start(
            &[
                &format!("--address={}", self.address()),
                "--num-cpus=1",
                "--dashboard-agent-listen-port",
                &agent_port,
            ],
            &[
                ("RAY_CLOUD_INSTANCE_ID", pod),
                ("RAY_NODE_TYPE_NAME", pod_type),
            ],
        );
    }

    /// Runs tests/fixtures/ray_demand.py and waits until it has submitted its demand.
    fn driver(&mut self, scenario: &str, num_cpus: u32) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ray_demand.py");
        let mut child = Command::new(self.venv.join("bin/python"))
            .arg(script)
            .args([self.address(), scenario.to_string(), num_cpus.to_string()])
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the demand driver");
        let stdout = child.stdout.take().unwrap();
        self.drivers.push(child);
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let ready = lines.any(|l| l.trim() == "READY");
        // Keep reading, so the driver never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        assert!(
            ready,
            "the demand driver exited before submitting its demand"
        );
    }

    /// PIDs of every process of this test's Ray (command line names the temp dir), with descendants.
    fn pids(&self) -> Vec<u32> {
        let needle = self.temp_dir.to_string_lossy().into_owned();
        let mut procs: Vec<(u32, u32, bool)> = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|p| p.parse().ok());
            let ours = String::from_utf8_lossy(&cmdline).contains(&needle);
            procs.push((pid, ppid.unwrap_or(0), ours));
        }
        let mut pids: Vec<u32> = procs.iter().filter(|p| p.2).map(|p| p.0).collect();
        loop {
            let more: Vec<u32> = procs
                .iter()
                .filter(|p| pids.contains(&p.1) && !pids.contains(&p.0))
                .map(|p| p.0)
                .collect();
            if more.is_empty() {
                return pids;
            }
            pids.extend(more);
        }
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        for d in &mut self.drivers {
            let _ = d.kill();
            let _ = d.wait();
        }
        for signal in ["-TERM", "-KILL"] {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg(signal)
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && !self.pids().is_empty() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = std::fs::remove_dir_all(&self.temp_dir);
    }
}

/// Polls the cluster state until `check` holds; returns the state and how long it took.
async fn wait_for(
    gcs: &GcsClient,
    what: &str,
    check: impl Fn(&ClusterState) -> bool,
) -> (ClusterState, Duration) {
    let start = Instant::now();
    loop {
        let state = gcs.cluster_state().await.expect("GetClusterResourceState");
        if check(&state) {
            eprintln!("{what}: after {:?}", start.elapsed());
            return (state, start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}; last state: {state:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_client_against_a_real_head() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let t = Instant::now();
    let mut head = RayHead::start();
    eprintln!(
        "head started in {:?} (venv {})",
        t.elapsed(),
        head.venv.display()
    );
    let gcs = GcsClient::new(GcsOptions::new(head.address())).unwrap();

    // GetClusterId: the 28-byte id.
    let id = gcs.cluster_id().await.expect("GetClusterId");
    assert_eq!(id.len(), 56, "cluster id {id}");

    // A worker started like one of our pods shows its pod name and type.
    let t = Instant::now();
    head.start_worker(WORKER_POD, WORKER_TYPE);
    eprintln!("worker started in {:?}", t.elapsed());
    let (state, _) = wait_for(&gcs, "worker node", |s| {
        s.nodes.iter().any(|n| n.instance_id == WORKER_POD)
    })
    .await;
    let worker = state
        .nodes
        .iter()
        .find(|n| n.instance_id == WORKER_POD)
        .unwrap()
        .clone();
    assert_eq!(worker.node_type, WORKER_TYPE);
    assert_eq!(worker.total.get("CPU"), Some(&1.0));
    assert!(
        state.pending.is_empty() && state.gangs.is_empty(),
        "no demand yet: {state:#?}"
    );

    // Demand: 3 x 4 CPUs, a GPU, a STRICT_SPREAD group, request_resources(num_cpus=6).
    let t = Instant::now();
    head.driver("all", 6);
    eprintln!("driver ready in {:?}", t.elapsed());
    let (state, _) = wait_for(&gcs, "all demand", |s| {
        s.pending.contains(&(bundle([("CPU", 4.0)]), 3))
            && s.pending
                .iter()
                .any(|(b, n)| b.get("GPU") == Some(&1.0) && *n == 1)
            && !s.gangs.is_empty()
            && s.constraints.len() == 6
    })
    .await;
    let gang = &state.gangs[0];
    assert!(gang.strict_spread, "{gang:?}");
    assert_eq!(gang.bundles, vec![bundle([("CPU", 2.0)]); 2]);
    assert_eq!(state.constraints, vec![bundle([("CPU", 1.0)]); 6]);

    // The planner turns it into launches (smoke test on real data).
    let config = AutoscalerConfig {
        worker_types: vec![WorkerType {
            name: WORKER_TYPE.into(),
            min_workers: 0,
            max_workers: 10,
            resources: bundle([("CPU", 4.0)]),
        }],
        max_workers: None,
        upscaling_speed: 1.0,
        idle_timeout: Duration::from_secs(60),
    };
    let pods = [WorkerPod {
        name: WORKER_POD.into(),
        pod_type: WORKER_TYPE.into(),
        ready: true,
    }];
    let plan = planner::plan(&config, &pods, &state);
    eprintln!("plan: {plan:?}");
    assert!(
        plan.launch.get(WORKER_TYPE).is_some_and(|n| *n >= 3),
        "{plan:?}"
    );
    assert!(
        plan.infeasible.iter().any(|b| b.contains_key("GPU")),
        "{plan:?}"
    );

    // ReportAutoscalingState is accepted.
    let report = AutoscalerReport {
        last_seen_version: state.version,
        autoscaler_version: 1,
        launching: vec![(WORKER_TYPE.into(), 3)],
        pending_pods: vec![],
        infeasible: plan.infeasible.clone(),
    };
    gcs.report_state(&report)
        .await
        .expect("ReportAutoscalingState");

    // A wrong (stale) cluster id is refused by Ray; the client re-reads it and retries.
    gcs.set_cluster_id(&"00".repeat(28));
    gcs.cluster_state()
        .await
        .expect("retried with the re-read cluster id");
    assert_eq!(gcs.cluster_id().await.unwrap(), id);

    // RequestClusterResourceConstraint shows up as a GCS constraint.
    gcs.request_cluster_resource_constraint(&[(bundle([("CPU", 2.0)]), 2)])
        .await
        .expect("constraint");
    wait_for(&gcs, "GCS constraint", |s| {
        s.constraints == vec![bundle([("CPU", 2.0)]); 2]
    })
    .await;

    // DrainNode of the idle worker is accepted; the node then goes away.
    wait_for(&gcs, "worker idle", |s| {
        s.nodes
            .iter()
            .any(|n| n.instance_id == WORKER_POD && (n.status == NodeStatus::Idle || n.idle_ms > 0))
    })
    .await;
    let outcome = gcs
        .drain_node(
            &worker.node_id,
            DrainReason::IdleTermination,
            "test: idle",
            0,
        )
        .await
        .expect("DrainNode");
    assert!(outcome.accepted, "drain rejected: {}", outcome.rejection);
    let statuses = |s: &ClusterState| -> Vec<NodeStatus> {
        s.nodes
            .iter()
            .filter(|n| n.instance_id == WORKER_POD)
            .map(|n| n.status)
            .collect()
    };
    let (state, _) = wait_for(&gcs, "drained worker dead", |s| {
        statuses(s) == [NodeStatus::Dead]
    })
    .await;
    eprintln!("worker after drain: {:?}", statuses(&state));
}

#[tokio::test]
async fn unreachable_head_fails_fast() {
    let gcs = GcsClient::new(GcsOptions::new(format!("127.0.0.1:{}", free_port()))).unwrap();
    let t = Instant::now();
    let err = gcs
        .cluster_state()
        .await
        .expect_err("nothing listens there");
    assert!(err.is_unreachable(), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t.elapsed()
    );
    assert!(err.to_string().contains("GetClusterId"), "{err}");
}
