//! Ray really runs in the operator's pods, on real nodes: the legacy example
//! as it is, autoscaling from real demand, head and worker failure, and the
//! newest Ray release. Each test runs a namespaced operator from the chart in
//! its own namespace (no `gcsAddress`: the autoscaler reaches each head
//! through its Service, as in production).

mod support;

use std::time::Duration;

use support::real::{
    Cleanup, FORM_TIMEOUT, apply, assert_tasks_run_on_workers, describe, eventually, formed,
    in_head, kubectl, namespace_with_operator, ray_nodes, ray_pods, serial, status_field,
    try_kubectl, wait_phase,
};

#[test]
fn legacy_example_cluster_runs_as_it_is() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let namespace = namespace_with_operator("legacy", &mut cleanup);
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/legacy_example_cluster.yaml"
    ))
    .unwrap();
    apply(&namespace, &manifest);
    let cluster = "example-cluster";
    wait_phase(&namespace, cluster, "Running", FORM_TIMEOUT);
    let pods = formed(&namespace, cluster, 2);
    // Ray's resources come from the pods: CPU 1 from the 1000m request, and
    // the workers' custom resources.
    let nodes = ray_nodes(&namespace, cluster).unwrap();
    for (_, ip, _, resources) in &nodes {
        assert_eq!(resources["CPU"], 1.0, "{ip}: {resources}");
        let pod = pods.iter().find(|p| &p.ip == ip).expect("a node per pod");
        if pod.kind == "worker" {
            assert_eq!(resources["example-resource-a"], 1.0, "{resources}");
        }
    }
    assert_tasks_run_on_workers(&namespace, cluster, &pods);

    // A minute later: the same pods, never restarted, and Running.
    std::thread::sleep(Duration::from_secs(60));
    let later = ray_pods(&namespace, cluster);
    let names = |p: &[support::real::RayPod]| {
        let mut n: Vec<String> = p.iter().map(|p| p.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&later),
        names(&pods),
        "{}",
        describe(&namespace, cluster)
    );
    assert!(
        later
            .iter()
            .all(|p| p.restarts == 0 && p.phase == "Running"),
        "{later:?}"
    );
    assert_eq!(status_field(&namespace, cluster, "phase"), "Running");
    assert_eq!(status_field(&namespace, cluster, "autoscalerRetries"), "0");
}

/// A cluster whose head runs no tasks, a CPU worker type of 0..2 and a GPU
/// type of 0..1; workers idle for a minute are removed.
fn autoscaling_cluster(name: &str) -> String {
    format!(
        r#"
apiVersion: cluster.ray.io/v1
kind: RayCluster
metadata: {{name: {name}}}
spec:
  headPodType: head
  idleTimeoutMinutes: 1
  podTypes:
  - name: head
    rayResources: {{CPU: 0}}
    podConfig:
      spec:
        containers:
        - name: ray-node
          image: rayproject/ray:2.47.1
          resources: {{requests: {{cpu: 500m, memory: 2Gi}}, limits: {{cpu: 500m, memory: 2Gi}}}}
  - name: cpu
    minWorkers: 0
    maxWorkers: 2
    podConfig:
      spec:
        containers:
        - name: ray-node
          image: rayproject/ray:2.47.1
          resources: {{requests: {{cpu: 500m, memory: 1Gi}}, limits: {{cpu: 500m, memory: 1Gi}}}}
  - name: gpu
    minWorkers: 0
    maxWorkers: 1
    podConfig:
      spec:
        containers:
        - name: ray-node
          image: rayproject/ray:2.47.1
          resources:
            requests: {{cpu: 500m, memory: 1Gi}}
            limits: {{cpu: 500m, memory: 1Gi, nvidia.com/gpu: 1}}
"#
    )
}

/// Worker pods of a type that are running, by name.
fn workers_of(namespace: &str, cluster: &str, pod_type: &str) -> Vec<String> {
    ray_pods(namespace, cluster)
        .into_iter()
        .filter(|p| p.kind == "worker" && p.pod_type == pod_type)
        .map(|p| p.name)
        .collect()
}

/// Runs a driver program in the head and returns its last line.
fn drive(namespace: &str, cluster: &str, program: &str) -> String {
    let out = in_head(namespace, cluster, program).unwrap_or_else(|e| panic!("driver: {e}"));
    out.lines().last().unwrap_or_default().to_string()
}

const PRELUDE: &str = r#"
import socket, time, ray
from ray.autoscaler.sdk import request_resources
ray.init(address="auto", namespace="test", logging_level="ERROR")
@ray.remote(num_cpus=1)
class Holder:
    def where(self):
        return socket.gethostname()
"#;

#[test]
fn autoscaling_from_real_demand() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let namespace = namespace_with_operator("autoscale", &mut cleanup);
    // Fake GPU capacity on one real node: the scheduler honours extended
    // resources in the node's status, and Ray is told the pod's GPU limit.
    let patch = r#"{"status":{"capacity":{"nvidia.com/gpu":"1"}}}"#;
    kubectl(&[
        "patch",
        "node",
        "node-2",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ]);
    let cluster = "scaler";
    apply(&namespace, &autoscaling_cluster(cluster));
    wait_phase(&namespace, cluster, "Running", FORM_TIMEOUT);
    formed(&namespace, cluster, 0);
    assert!(workers_of(&namespace, cluster, "cpu").is_empty());

    // A detached actor needing a CPU: the head has none, so a worker is made
    // for it, joins Ray, and the actor runs there.
    let first = drive(
        &namespace,
        cluster,
        &format!(
            "{PRELUDE}\na = Holder.options(name='a', lifetime='detached').remote()\nprint(ray.get(a.where.remote(), timeout=300))\n"
        ),
    );
    assert_eq!(workers_of(&namespace, cluster, "cpu"), vec![first.clone()]);
    // A second actor, a second worker.
    let second = drive(
        &namespace,
        cluster,
        &format!(
            "{PRELUDE}\nb = Holder.options(name='b', lifetime='detached').remote()\nprint(ray.get(b.where.remote(), timeout=300))\n"
        ),
    );
    assert_ne!(first, second);
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    let mut cpu = workers_of(&namespace, cluster, "cpu");
    cpu.sort();
    assert_eq!(cpu, both);

    // A GPU task lands on a new worker of the GPU type.
    let gpu_host = drive(
        &namespace,
        cluster,
        &format!(
            "{PRELUDE}\n@ray.remote(num_gpus=1, num_cpus=0)\ndef g():\n    return socket.gethostname()\nprint(ray.get(g.remote(), timeout=300))\n"
        ),
    );
    assert_eq!(workers_of(&namespace, cluster, "gpu"), vec![gpu_host]);

    // Demand no pod type can hold is reported and launches nothing.
    drive(
        &namespace,
        cluster,
        &format!("{PRELUDE}\nrequest_resources(bundles=[{{'CPU': 64}}])\nprint('ok')\n"),
    );
    eventually(
        "infeasible demand in the status",
        Duration::from_secs(60),
        || {
            let infeasible = status_field(&namespace, cluster, "autoscaler.infeasibleDemand");
            if infeasible.contains("CPU: 64") {
                Ok(())
            } else {
                Err(infeasible)
            }
        },
    );
    assert_eq!(workers_of(&namespace, cluster, "cpu").len(), 2);

    // request_resources(num_cpus=1) holds one worker after both actors end;
    // releasing it brings the CPU workers back to 0 (drained through Ray first).
    drive(
        &namespace,
        cluster,
        &format!(
            "{PRELUDE}\nrequest_resources(num_cpus=1)\nfor n in ('a', 'b'):\n    ray.kill(ray.get_actor(n))\nprint('ok')\n"
        ),
    );
    eventually(
        "one CPU worker held by request_resources",
        Duration::from_secs(180),
        || match workers_of(&namespace, cluster, "cpu").len() {
            1 => Ok(()),
            n => Err(format!("{n} cpu workers")),
        },
    );
    // Past the idle timeout, the held worker stays.
    std::thread::sleep(Duration::from_secs(20));
    assert_eq!(workers_of(&namespace, cluster, "cpu").len(), 1);
    drive(
        &namespace,
        cluster,
        &format!("{PRELUDE}\nrequest_resources(bundles=[])\nprint('ok')\n"),
    );
    eventually("the workers back to 0", Duration::from_secs(240), || {
        let left = workers_of(&namespace, cluster, "cpu").len()
            + workers_of(&namespace, cluster, "gpu").len();
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} workers left"))
        }
    });
    assert_eq!(
        status_field(&namespace, cluster, "autoscalerRetries"),
        "0",
        "no restart"
    );
    let patch = r#"{"status":{"capacity":{"nvidia.com/gpu":null}}}"#;
    let _ = try_kubectl(
        &[
            "patch",
            "node",
            "node-2",
            "--subresource=status",
            "--type=merge",
            "-p",
            patch,
        ],
        "",
    );
}

fn default_cluster(name: &str, image: &str, workers: i32) -> String {
    format!(
        r#"
apiVersion: cluster.ray.io/v1
kind: RayCluster
metadata: {{name: {name}}}
spec:
  headPodType: head
  podTypes:
  - name: head
    podConfig:
      spec:
        containers:
        - name: ray-node
          image: {image}
          resources: {{requests: {{cpu: 500m, memory: 2Gi}}, limits: {{cpu: 500m, memory: 2Gi}}}}
  - name: worker
    minWorkers: {workers}
    maxWorkers: {workers}
    podConfig:
      spec:
        containers:
        - name: ray-node
          image: {image}
          resources: {{requests: {{cpu: 500m, memory: 1Gi}}, limits: {{cpu: 500m, memory: 1Gi}}}}
"#
    )
}

#[test]
fn head_and_worker_failure_recover() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let namespace = namespace_with_operator("failure", &mut cleanup);
    let cluster = "fragile";
    apply(
        &namespace,
        &default_cluster(cluster, "rayproject/ray:2.47.1", 2),
    );
    wait_phase(&namespace, cluster, "Running", FORM_TIMEOUT);
    let before = formed(&namespace, cluster, 2);
    let old_head = before
        .iter()
        .find(|p| p.kind == "head")
        .unwrap()
        .name
        .clone();

    // Ray dies inside the head: the container ends, and the cluster restarts.
    let _ = try_kubectl(
        &[
            "exec",
            "-n",
            &namespace,
            &old_head,
            "--",
            "bash",
            "-lc",
            "ray stop --force",
        ],
        "",
    );
    eventually(
        "AutoscalingExceptionRecovery and RESTARTS 1",
        Duration::from_secs(120),
        || {
            let retries = status_field(&namespace, cluster, "autoscalerRetries");
            let phase = status_field(&namespace, cluster, "phase");
            if retries == "1" {
                Ok(())
            } else {
                Err(format!("phase {phase}, retries {retries:?}"))
            }
        },
    );
    wait_phase(&namespace, cluster, "Running", FORM_TIMEOUT);
    let after = formed(&namespace, cluster, 2);
    let new_head = after
        .iter()
        .find(|p| p.kind == "head")
        .unwrap()
        .name
        .clone();
    assert_ne!(new_head, old_head, "a new head");
    assert_tasks_run_on_workers(&namespace, cluster, &after);
    let events = kubectl(&[
        "get",
        "events",
        "-n",
        &namespace,
        "--field-selector",
        "reason=HeadFailed",
    ]);
    assert!(
        events.contains("HeadFailed"),
        "a HeadFailed Event: {events}"
    );

    // Ray dies in a worker: that worker is replaced, the head stays.
    let victim = after
        .iter()
        .find(|p| p.kind == "worker")
        .unwrap()
        .name
        .clone();
    let _ = try_kubectl(
        &[
            "exec",
            "-n",
            &namespace,
            &victim,
            "--",
            "bash",
            "-lc",
            "ray stop --force",
        ],
        "",
    );
    let replaced = eventually("the dead worker replaced", FORM_TIMEOUT, || {
        let pods = formed(&namespace, cluster, 2);
        if pods.iter().any(|p| p.name == victim) {
            Err(format!("{victim} still there"))
        } else {
            Ok(pods)
        }
    });
    assert!(
        replaced.iter().any(|p| p.name == new_head),
        "the head stayed"
    );
    assert_eq!(status_field(&namespace, cluster, "autoscalerRetries"), "1");
    wait_phase(&namespace, cluster, "Running", FORM_TIMEOUT);
}

#[test]
fn newest_ray_release_runs() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let namespace = namespace_with_operator("newest", &mut cleanup);
    let cluster = "newest";
    let version = support::real::NEWEST_RAY;
    apply(
        &namespace,
        &default_cluster(cluster, &format!("rayproject/ray:{version}"), 1),
    );
    wait_phase(&namespace, cluster, "Running", FORM_TIMEOUT);
    let pods = formed(&namespace, cluster, 1);
    assert_tasks_run_on_workers(&namespace, cluster, &pods);
    let got = drive(&namespace, cluster, "import ray\nprint(ray.__version__)\n");
    assert_eq!(got, version);
}
