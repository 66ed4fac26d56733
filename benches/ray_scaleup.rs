//! `make bench-ray`: what a user feels when a Ray cluster scales up on real
//! nodes, the time from a task's `.remote()` to that task running on a
//! worker the operator made for it (pod created, container started, Ray
//! started and joined, task scheduled), median and worst over `BENCH_RUNS`.
//!
//! One cluster whose head offers no CPU and whose workers scale 0..1; each
//! run submits a 1-CPU task from a driver in the head, which stamps the
//! submission and the task's start, then waits for the idle worker to be
//! removed before the next run (idleTimeoutMinutes 1).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::real::{
    Cleanup, FORM_TIMEOUT, apply, eventually, in_head, namespace_with_operator, ray_pods,
    wait_phase,
};

const CLUSTER: &str = r#"
apiVersion: cluster.ray.io/v1
kind: RayCluster
metadata: {name: scaleup}
spec:
  headPodType: head
  idleTimeoutMinutes: 1
  podTypes:
  - name: head
    rayResources: {CPU: 0}
    podConfig:
      spec:
        containers:
        - name: ray-node
          image: rayproject/ray:2.47.1
          resources: {requests: {cpu: 500m, memory: 2Gi}, limits: {cpu: 500m, memory: 2Gi}}
  - name: worker
    minWorkers: 0
    maxWorkers: 1
    podConfig:
      spec:
        containers:
        - name: ray-node
          image: rayproject/ray:2.47.1
          resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {cpu: 500m, memory: 1Gi}}
"#;

const DRIVER: &str = r#"
import time, ray
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=1)
def started():
    return time.time()
submitted = time.time()
ref = started.remote()
print(ray.get(ref, timeout=600) - submitted)
"#;

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut cleanup = Cleanup::default();
    let namespace = namespace_with_operator("bench-ray", &mut cleanup);
    apply(&namespace, CLUSTER);
    wait_phase(&namespace, "scaleup", "Running", FORM_TIMEOUT);
    let mut seconds = Vec::new();
    for run in 1..=runs {
        eventually(
            "no worker before the run",
            Duration::from_secs(300),
            || match ray_pods(&namespace, "scaleup")
                .iter()
                .filter(|p| p.kind == "worker")
                .count()
            {
                0 => Ok(()),
                n => Err(format!("{n} workers")),
            },
        );
        let out = in_head(&namespace, "scaleup", DRIVER).unwrap_or_else(|e| panic!("driver: {e}"));
        let took: f64 = out
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("driver printed {out:?}"));
        eprintln!("run {run}/{runs}: {took:.1} s");
        seconds.push(took);
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let worst = seconds[seconds.len() - 1];
    println!("\n| real Ray, 1 worker from 0 | runs | median | worst |");
    println!("|---|---|---|---|");
    println!(
        "| `.remote()` to the task running on a new worker | {runs} | {median:.1} s | {worst:.1} s |"
    );
}
