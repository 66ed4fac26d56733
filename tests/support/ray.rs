//! Real Ray processes for tests: a head, worker nodes that join it like the
//! operator's pods would, and demand drivers (`tests/fixtures/ray_demand.py`).
//!
//! `RAY_VENV` picks a virtualenv; else `RAY_VERSION` (default the newest pinned)
//! selects `~/.cache/ray-operator/ray-<version>/venv`. Without Ray the test
//! fails and says to run `make ray`. Every Ray process started here is stopped
//! by PID (found through the head's own `--temp-dir`, and for a worker node
//! through its `RAY_CLOUD_INSTANCE_ID`), also on panic.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const DEFAULT_RAY_VERSION: &str = "2.60.0";

/// The loopback address every Ray process of a test listens on and dials.
pub const NODE_IP: &str = "127.0.0.2";

/// The virtualenv with Ray; panics (saying `make ray`) when there is none.
pub fn venv() -> PathBuf {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One process in /proc: pid, parent, command line, environment.
struct Proc {
    pid: u32,
    ppid: u32,
    cmdline: String,
    environ: String,
}

fn processes() -> Vec<Proc> {
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let read = |f: &str| {
            String::from_utf8_lossy(&std::fs::read(entry.path().join(f)).unwrap_or_default())
                .into_owned()
        };
        let stat = read("stat");
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        procs.push(Proc {
            pid,
            ppid,
            cmdline: read("cmdline"),
            environ: read("environ"),
        });
    }
    procs
}

/// The processes `root` selects, with all their descendants.
fn with_descendants(procs: &[Proc], root: impl Fn(&Proc) -> bool) -> Vec<u32> {
    let mut pids: Vec<u32> = procs.iter().filter(|p| root(p)).map(|p| p.pid).collect();
    loop {
        let more: Vec<u32> = procs
            .iter()
            .filter(|p| pids.contains(&p.ppid) && !pids.contains(&p.pid))
            .map(|p| p.pid)
            .collect();
        if more.is_empty() {
            return pids;
        }
        pids.extend(more);
    }
}

/// SIGTERM, then SIGKILL, whatever `pids()` still finds, waiting a little for each.
fn kill_all(pids: impl Fn() -> Vec<u32>) {
    for signal in ["-TERM", "-KILL"] {
        let found = pids();
        if found.is_empty() {
            return;
        }
        let _ = Command::new("kill")
            .arg(signal)
            .args(found.iter().map(u32::to_string))
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !pids().is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The environment entry a worker node's processes carry.
fn instance_env(pod: &str) -> String {
    format!("RAY_CLOUD_INSTANCE_ID={pod}\0")
}

/// A Ray head (and any workers and drivers) started by a test; dropping it
/// stops every process whose command line names its temp dir, and their children.
pub struct RayHead {
    pub venv: PathBuf,
    temp_dir: PathBuf,
    pub port: u16,
    drivers: Vec<Driver>,
}

impl RayHead {
    /// A head with one CPU.
    pub fn start() -> RayHead {
        RayHead::start_with(&["--num-cpus=1"])
    }

    /// A head with these extra `ray start` arguments (e.g. `--num-cpus=0`).
    pub fn start_with(extra: &[&str]) -> RayHead {
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
        let mut args = vec![
            "--head".to_string(),
            format!("--port={port}"),
            // Loopback only. Not 127.0.0.1: Ray swaps that for the machine's
            // outward address wherever it meets it, and would dial that.
            format!("--node-ip-address={NODE_IP}"),
            "--include-dashboard=false".into(),
            "--no-monitor".into(),
            "--dashboard-agent-listen-port".into(),
            agent_port,
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        head.ray_start(&args, &[]);
        head
    }

    pub fn address(&self) -> String {
        format!("{NODE_IP}:{}", self.port)
    }

    fn ray_start(&self, args: &[String], env: &[(&str, &str)]) {
        if let Err(e) = self.try_ray_start(args, env) {
            panic!("{e}");
        }
    }

    fn try_ray_start(&self, args: &[String], env: &[(&str, &str)]) -> Result<(), String> {
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
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ray start {args:?} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A one-CPU worker node reporting `instance_id` / `ray_node_type_name`
    /// like a pod of ours. Stopped with the head.
    pub fn start_worker(&self, pod: &str, pod_type: &str) {
        std::mem::forget(self.worker(pod, pod_type, &["--num-cpus=1"]));
    }

    /// A worker node for pod `pod` of type `pod_type` (env `RAY_CLOUD_INSTANCE_ID`,
    /// `RAY_NODE_TYPE_NAME`) with these resource flags (`--num-cpus=4`,
    /// `--num-gpus=1`, `--resources={...}`); stopped by PID when dropped.
    pub fn worker(&self, pod: &str, pod_type: &str, resources: &[&str]) -> RayWorker {
        match self.try_worker(pod, pod_type, resources) {
            Ok(worker) => worker,
            Err((_, e)) => panic!("{e}"),
        }
    }

    /// Like [`RayHead::worker`], but a failed `ray start` is an `Err` (e.g. when
    /// the autoscaler drained the idle node before `ray start` saw it
    /// registered). The returned guard stops what did start either way.
    pub fn try_worker(
        &self,
        pod: &str,
        pod_type: &str,
        resources: &[&str],
    ) -> Result<RayWorker, (RayWorker, String)> {
        let agent_port = free_port().to_string();
        let mut args = vec![
            format!("--address={}", self.address()),
            format!("--node-ip-address={NODE_IP}"),
            "--dashboard-agent-listen-port".into(),
            agent_port,
        ];
        args.extend(resources.iter().map(|s| s.to_string()));
        let started = self.try_ray_start(
            &args,
            &[
                ("RAY_CLOUD_INSTANCE_ID", pod),
                ("RAY_NODE_TYPE_NAME", pod_type),
            ],
        );
        let worker = RayWorker {
            pod: pod.to_string(),
            temp_dir: self.temp_dir.clone(),
        };
        match started {
            Ok(()) => Ok(worker),
            Err(e) => Err((worker, e)),
        }
    }

    /// Runs tests/fixtures/ray_demand.py and waits until it has submitted its
    /// demand. The driver runs until the head is dropped.
    pub fn driver(&mut self, scenario: &str, num_cpus: u32) {
        let driver = self.spawn_driver(scenario, num_cpus);
        self.drivers.push(driver);
    }

    /// Like [`RayHead::driver`], but the caller owns (and may stop) the driver.
    pub fn spawn_driver(&self, scenario: &str, num_cpus: u32) -> Driver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ray_demand.py");
        let mut child = Command::new(self.venv.join("bin/python"))
            .arg(script)
            .args([self.address(), scenario.to_string(), num_cpus.to_string()])
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the demand driver");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        // Keep reading, so the driver never writes into a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut driver = Driver {
            child,
            stdin,
            lines,
        };
        driver
            .wait_line(|l| l == "READY", Duration::from_secs(60))
            .expect("the demand driver exited before submitting its demand");
        driver
    }

    /// PIDs of every process of this Ray (command line names the temp dir), with descendants.
    pub fn pids(&self) -> Vec<u32> {
        let needle = self.temp_dir.to_string_lossy().into_owned();
        with_descendants(&processes(), |p| p.cmdline.contains(&needle))
    }

    /// PIDs of the head node's own processes (not those of worker nodes).
    pub fn head_pids(&self) -> Vec<u32> {
        let needle = self.temp_dir.to_string_lossy().into_owned();
        with_descendants(&processes(), |p| {
            p.cmdline.contains(&needle) && !p.environ.contains("RAY_CLOUD_INSTANCE_ID=")
        })
    }

    /// Kills the head node's processes (GCS, raylet, ...), as a crash would.
    pub fn kill_head(&self) {
        kill_all(|| self.head_pids());
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        for d in &mut self.drivers {
            d.stop();
        }
        kill_all(|| self.pids());
        let _ = std::fs::remove_dir_all(&self.temp_dir);
    }
}

/// A Ray worker node started by [`RayHead::worker`]; dropping it stops its processes.
pub struct RayWorker {
    pub pod: String,
    temp_dir: PathBuf,
}

impl RayWorker {
    /// PIDs of this node's processes (they carry its `RAY_CLOUD_INSTANCE_ID`), with descendants.
    pub fn pids(&self) -> Vec<u32> {
        let needle = self.temp_dir.to_string_lossy().into_owned();
        let env = instance_env(&self.pod);
        with_descendants(&processes(), |p| {
            p.cmdline.contains(&needle) && p.environ.contains(&env)
        })
    }

    /// Stops the node's processes.
    pub fn stop(&self) {
        kill_all(|| self.pids());
    }
}

impl Drop for RayWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running demand driver; killed when dropped.
pub struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Driver {
    /// Sends one command line to a driver in the `interactive` scenario.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("driver stdin");
        writeln!(stdin, "{line}").expect("write to the driver");
        stdin.flush().unwrap();
    }

    /// Waits for an output line `check` accepts; `None` on timeout or exit.
    pub fn wait_line(&mut self, check: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) if check(line.trim()) => return Some(line.trim().to_string()),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}
