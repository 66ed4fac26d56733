//! The real-node cluster for end-to-end tests: kubectl and helm against it,
//! Ray clusters the operator made, and what Ray says inside their heads.
//!
//! Everything here shells out to `kubectl` and `helm` as a user would, and
//! polls: a real pod takes seconds to start, and Ray more.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cluster::{Claim, Cluster, random_hex6, real, real_alone};
use super::helm::helm;

/// How long a Ray cluster may take to form on this machine (pods start, Ray
/// starts, workers join): measured at 20-40 s; generous for a loaded CI.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(240);

/// The newest Ray release on PyPI, which `make images` builds beside the chart's default.
pub const NEWEST_RAY: &str = "2.60.0";

/// One real-node test at a time, in this process and any other (an
/// exclusive `use.lock` on the cluster's state dir, [`real_alone`]): each
/// starts Ray clusters, and two cores run few at once. Hold it for the test.
pub fn serial() -> Claim {
    real_alone()
}

/// The real-node cluster, with the images the chart names imported
/// (`hack/images.sh`, a no-op when they are there already; it locks its own
/// cache, so the `OnceLock` only saves a process from asking twice).
pub fn cluster() -> &'static Cluster {
    static IMAGES: OnceLock<()> = OnceLock::new();
    let cluster = real();
    IMAGES.get_or_init(|| {
        let out = Command::new(repo().join("hack/images.sh"))
            .env("CLUSTER_DIR", &cluster.dir)
            .output()
            .expect("run hack/images.sh");
        assert!(
            out.status.success(),
            "hack/images.sh failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    cluster
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command in the repository root with `stdin`: stdout, or stderr on failure.
fn run(mut command: Command, stdin: &str) -> Result<String, String> {
    use std::io::Write;
    let mut child = command
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.as_bytes())
        .map_err(|e| e.to_string())?;
    drop(input);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// `kubectl ARGS` against the real cluster, `stdin` piped in.
pub fn try_kubectl(args: &[&str], stdin: &str) -> Result<String, String> {
    let cluster = cluster();
    let mut command = Command::new(cluster.bin_dir().join("kubectl"));
    command
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args);
    run(command, stdin)
}

/// [`try_kubectl`], panicking with kubectl's output on failure.
pub fn kubectl(args: &[&str]) -> String {
    try_kubectl(args, "").unwrap_or_else(|e| panic!("kubectl {args:?} failed: {e}"))
}

/// `kubectl ... -o json`, parsed.
pub fn kubectl_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl(&all)).expect("kubectl printed JSON")
}

/// `helm ARGS` against the real cluster, run in the repository root (so
/// `./charts/ray` is the chart), as the seed writes the commands.
pub fn helm_cmd(args: &[&str]) -> String {
    let cluster = cluster();
    let mut command = Command::new(helm());
    command
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args);
    // kubectl from the control plane's build, for anything helm shells out to.
    command.env("KUBECONFIG", &cluster.kubeconfig);
    run(command, "").unwrap_or_else(|e| panic!("helm {args:?} failed: {e}"))
}

/// A unique suffix for the names of one test's releases and namespaces.
pub fn unique() -> String {
    random_hex6()
}

/// Uninstalls releases and deletes namespaces when the test ends, passed or not.
#[derive(Default)]
pub struct Cleanup {
    /// `(release, namespace)`, uninstalled in reverse order.
    pub releases: Vec<(String, String)>,
    pub namespaces: Vec<String>,
    /// Files applied with `kubectl apply -f` (deleted with `kubectl delete -f`).
    pub applied: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (release, namespace) in self.releases.iter().rev() {
            let _ = try_kubectl(
                &[
                    "delete",
                    "rayclusters",
                    "--all",
                    "-n",
                    namespace,
                    "--wait=false",
                ],
                "",
            );
            let cluster = cluster();
            let _ = Command::new(helm())
                .arg("--kubeconfig")
                .arg(&cluster.kubeconfig)
                .args(["uninstall", release, "-n", namespace, "--wait=false"])
                .output();
        }
        for file in self.applied.iter().rev() {
            let _ = try_kubectl(
                &["delete", "-f", file, "--ignore-not-found", "--wait=false"],
                "",
            );
        }
        for namespace in &self.namespaces {
            let _ = try_kubectl(
                &[
                    "delete",
                    "namespace",
                    namespace,
                    "--ignore-not-found",
                    "--wait=false",
                ],
                "",
            );
        }
    }
}

/// Polls `check` once a second until it returns `Some`, or panics naming
/// `what` with the last thing `check` said.
pub fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// A namespace with a namespaced operator from the chart, Ready.
pub fn namespace_with_operator(test: &str, cleanup: &mut Cleanup) -> String {
    let namespace = format!("{test}-{}", unique());
    let release = format!("ray-operator-{}", unique());
    cleanup.namespaces.push(namespace.clone());
    cleanup.releases.push((release.clone(), namespace.clone()));
    helm_cmd(&[
        "-n",
        &namespace,
        "install",
        &release,
        "--create-namespace",
        "--set",
        "operatorOnly=true,namespacedOperator=true",
        "./charts/ray",
    ]);
    kubectl(&[
        "rollout",
        "status",
        "-n",
        &namespace,
        &format!("deployment/{release}"),
        "--timeout=180s",
    ]);
    namespace
}

/// `kubectl apply -f -` of `manifest` in `namespace`.
pub fn apply(namespace: &str, manifest: &str) {
    try_kubectl(&["apply", "-n", namespace, "-f", "-"], manifest)
        .unwrap_or_else(|e| panic!("kubectl apply in {namespace}: {e}"));
}

/// A RayCluster's status field (`phase`, `autoscalerRetries`, ...), or "".
pub fn status_field(namespace: &str, cluster: &str, field: &str) -> String {
    try_kubectl(
        &[
            "get",
            "raycluster",
            cluster,
            "-n",
            namespace,
            "-o",
            &format!("jsonpath={{.status.{field}}}"),
        ],
        "",
    )
    .unwrap_or_default()
}

/// Waits for the RayCluster's phase.
pub fn wait_phase(namespace: &str, cluster: &str, phase: &str, timeout: Duration) {
    eventually(
        &format!("{namespace}/{cluster} {phase}"),
        timeout,
        || match status_field(namespace, cluster, "phase") {
            p if p == phase => Ok(()),
            p => Err(format!("phase {p:?}; {}", describe(namespace, cluster))),
        },
    )
}

/// The pods and conditions of a cluster, for failure messages.
pub fn describe(namespace: &str, cluster: &str) -> String {
    let pods = try_kubectl(
        &[
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            &format!("ray-cluster-name={cluster}"),
            "-o",
            "wide",
        ],
        "",
    )
    .unwrap_or_else(|e| e);
    let conditions = status_field(namespace, cluster, "conditions");
    format!("pods:\n{pods}conditions: {conditions}")
}

/// One pod of a Ray cluster, as `kubectl get pods -o json` shows it.
#[derive(Debug, Clone)]
pub struct RayPod {
    pub name: String,
    pub kind: String,
    pub pod_type: String,
    pub ip: String,
    pub phase: String,
    pub restarts: i64,
}

/// The cluster's pods that are not being deleted.
pub fn ray_pods(namespace: &str, cluster: &str) -> Vec<RayPod> {
    let list = kubectl_json(&[
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        &format!("ray-cluster-name={cluster}"),
    ]);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| RayPod {
            name: p["metadata"]["name"].as_str().unwrap_or_default().into(),
            kind: p["metadata"]["labels"]["ray-node-type"]
                .as_str()
                .unwrap_or_default()
                .into(),
            pod_type: p["metadata"]["labels"]["ray-user-node-type"]
                .as_str()
                .unwrap_or_default()
                .into(),
            ip: p["status"]["podIP"].as_str().unwrap_or_default().into(),
            phase: p["status"]["phase"].as_str().unwrap_or_default().into(),
            restarts: p["status"]["containerStatuses"][0]["restartCount"]
                .as_i64()
                .unwrap_or(0),
        })
        .collect()
}

/// The running head pod's name.
pub fn head_pod(namespace: &str, cluster: &str) -> Result<String, String> {
    ray_pods(namespace, cluster)
        .into_iter()
        .find(|p| p.kind == "head" && p.phase == "Running")
        .map(|p| p.name)
        .ok_or_else(|| format!("no running head; {}", describe(namespace, cluster)))
}

/// Runs a Python program inside the head pod (the Ray image's `python`),
/// connected to its Ray: its stdout, or what went wrong.
pub fn in_head(namespace: &str, cluster: &str, program: &str) -> Result<String, String> {
    let head = head_pod(namespace, cluster)?;
    try_kubectl(
        &[
            "exec", "-i", "-n", namespace, &head, "--", "bash", "-lc", "python -",
        ],
        program,
    )
    .map_err(|e| {
        let logs =
            try_kubectl(&["logs", "-n", namespace, &head, "--tail=30"], "").unwrap_or_else(|e| e);
        format!(
            "{e}\n--- {head} log ---\n{logs}\n{}",
            describe(namespace, cluster)
        )
    })
}

/// What `ray.nodes()` says inside the head: `(node id, IP, alive, resources)`.
pub fn ray_nodes(
    namespace: &str,
    cluster: &str,
) -> Result<Vec<(String, String, bool, Value)>, String> {
    let out = in_head(
        namespace,
        cluster,
        r#"
import json, ray
ray.init(address="auto", logging_level="ERROR")
print(json.dumps([[n["NodeID"], n["NodeManagerAddress"], n["Alive"], n["Resources"]] for n in ray.nodes()]))
"#,
    )?;
    let line = out.lines().last().unwrap_or_default();
    let nodes: Vec<(String, String, bool, Value)> =
        serde_json::from_str(line).map_err(|e| format!("{e}: {out}"))?;
    Ok(nodes)
}

/// Waits until the cluster has its head and `workers` workers running and
/// every one of them is an alive node in the head's `ray.nodes()` (matched by
/// pod IP); returns the pods.
pub fn formed(namespace: &str, cluster: &str, workers: usize) -> Vec<RayPod> {
    eventually(
        &format!("{namespace}/{cluster} to form a Ray cluster of 1 head + {workers} workers"),
        FORM_TIMEOUT,
        || {
            let pods = ray_pods(namespace, cluster);
            let running: Vec<&RayPod> = pods.iter().filter(|p| p.phase == "Running").collect();
            let heads = running.iter().filter(|p| p.kind == "head").count();
            let worker_count = running.iter().filter(|p| p.kind == "worker").count();
            if heads != 1 || worker_count != workers || running.len() != pods.len() {
                return Err(format!("pods: {pods:?}"));
            }
            let nodes = ray_nodes(namespace, cluster)?;
            let alive: Vec<&str> = nodes.iter().filter(|n| n.2).map(|n| n.1.as_str()).collect();
            for pod in &pods {
                if !alive.contains(&pod.ip.as_str()) {
                    return Err(format!(
                        "{} ({}) is not alive in Ray: {nodes:?}",
                        pod.name, pod.ip
                    ));
                }
            }
            if alive.len() != pods.len() {
                return Err(format!(
                    "Ray has other nodes alive: {nodes:?} (pods {pods:?})"
                ));
            }
            Ok(pods)
        },
    )
}

/// Runs a task that needs a whole CPU on each worker's Ray node (pinned by
/// node affinity) and returns the hostnames they ran on: the worker pods' names.
pub fn task_on_each_worker(namespace: &str, cluster: &str) -> Result<Vec<String>, String> {
    let out = in_head(
        namespace,
        cluster,
        r#"
import json, socket, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address="auto", logging_level="ERROR")
head = ray.get_runtime_context().get_node_id()
@ray.remote(num_cpus=1)
def where():
    return socket.gethostname()
workers = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != head]
refs = [where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(w, soft=False)).remote() for w in workers]
print(json.dumps(sorted(ray.get(refs, timeout=120))))
"#,
    )?;
    serde_json::from_str(out.lines().last().unwrap_or_default()).map_err(|e| format!("{e}: {out}"))
}

/// Asserts that a formed cluster runs a task on each of its worker pods.
pub fn assert_tasks_run_on_workers(namespace: &str, cluster: &str, pods: &[RayPod]) {
    let mut want: Vec<String> = pods
        .iter()
        .filter(|p| p.kind == "worker")
        .map(|p| p.name.clone())
        .collect();
    want.sort();
    let ran = task_on_each_worker(namespace, cluster)
        .unwrap_or_else(|e| panic!("tasks on {namespace}/{cluster}'s workers: {e}"));
    assert_eq!(ran, want, "each worker ran one task");
}
