//! Scale and the peer side by side (issue 13): `make bench-scale` and
//! `make bench-kuberay`.
//!
//! Run by `hack/bench-plane.sh scale`, which owns the private control plane
//! (`KUBECONFIG` points at it; both CRDs installed) and tears it down. For
//! each contender (`BENCH_CONTENDERS`, `;`-separated: `ray-operator`,
//! `kuberay` at its default reconcile concurrency, `kuberay-<n>` at n), one
//! after the other, each workload (`BENCH_WORKLOADS`, `,`-separated) runs on
//! a fresh operator process and in a fresh namespace that is emptied after:
//!
//! - `head-only`: `BENCH_SMALL` clusters of a head alone; memory idle and
//!   with them all ready.
//! - `burst`: `BENCH_BIG` clusters of 1 head + `BENCH_WORKERS` workers
//!   created at once: time until every pod is Running, against the
//!   control plane's own time for as many bare pods (the same pod specs,
//!   created by this bench before any contender runs: the floor), the
//!   operator's CPU seconds, its memory once settled, and every cluster's
//!   pods counted (exactly one head and `BENCH_WORKERS` workers each).
//! - `fairness`: two clusters without workers; one is set to
//!   `BENCH_FAIR_WORKERS` workers and, half a second later, the other to one:
//!   how long that one worker waits to be created.
//!
//! `BENCH_OPERATOR_ARGS` adds flags to `ray-operator run` (space-separated,
//! e.g. `--writes-in-flight=64`).
//!
//! Both operators get the same pods: KubeRay's RayCluster is built from the
//! head and worker pod specs of the chart's cluster (`ray-operator render`).
//! Progress goes to stderr; the tables to stdout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

#[path = "plane/mod.rs"]
mod plane;

use plane::{
    Floor, Mem, Process, Res, bare_pods, create_all, create_namespace, delete_namespace, env_or,
    http_get, is_running, load_average, log, mib, rendered_cluster, sum_samples, until,
    watch_dynamic, watch_pods,
};

struct Opts {
    operator_bin: PathBuf,
    /// More flags for `ray-operator run` (BENCH_OPERATOR_ARGS).
    operator_args: Vec<String>,
    kuberay_bin: PathBuf,
    log_dir: PathBuf,
    health_port: u16,
    client_concurrency: usize,
    contenders: Vec<Contender>,
    workloads: Vec<String>,
    small: usize,
    big: usize,
    workers: usize,
    fair_workers: usize,
    timeout: Duration,
    settle: Duration,
}

impl Opts {
    fn from_env() -> Res<Opts> {
        let list = |name: &str, default: &str, sep: char| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_else(|_| default.into())
                .split(sep)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect()
        };
        let contenders = list("BENCH_CONTENDERS", "ray-operator;kuberay;kuberay-16", ';')
            .iter()
            .map(|c| Contender::parse(c))
            .collect::<Res<Vec<_>>>()?;
        let workloads = list("BENCH_WORKLOADS", "head-only,burst,fairness", ',');
        if let Some(w) = workloads
            .iter()
            .find(|w| !["head-only", "burst", "fairness"].contains(&w.as_str()))
        {
            return Err(format!(
                "BENCH_WORKLOADS: unknown workload {w:?} (expected head-only, burst, fairness)"
            ));
        }
        Ok(Opts {
            operator_bin: env_or(
                "BENCH_OPERATOR_BIN",
                PathBuf::from("target/release/ray-operator"),
            ),
            operator_args: std::env::var("BENCH_OPERATOR_ARGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            kuberay_bin: env_or("BENCH_KUBERAY_BIN", PathBuf::from("kuberay-operator")),
            log_dir: env_or("BENCH_LOG_DIR", std::env::temp_dir()),
            health_port: env_or("BENCH_HEALTH_PORT", 28490),
            client_concurrency: env_or("BENCH_CLIENT_CONCURRENCY", 64),
            contenders,
            workloads,
            small: env_or("BENCH_SMALL", 150),
            big: env_or("BENCH_BIG", 1000),
            workers: env_or("BENCH_WORKERS", 3),
            fair_workers: env_or("BENCH_FAIR_WORKERS", 500),
            timeout: Duration::from_secs(env_or("BENCH_TIMEOUT", 3600)),
            settle: Duration::from_secs(env_or("BENCH_SETTLE", 5)),
        })
    }
}

// --- the contenders -------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    RayOperator,
    /// KubeRay's operator, at a reconcile concurrency (`None`: its default, 1).
    KubeRay(Option<usize>),
}

#[derive(Clone)]
struct Contender {
    name: String,
    flavor: Flavor,
}

impl Contender {
    fn parse(name: &str) -> Res<Contender> {
        let flavor = match name {
            "ray-operator" => Flavor::RayOperator,
            "kuberay" => Flavor::KubeRay(None),
            other => match other.strip_prefix("kuberay-").map(str::parse) {
                Some(Ok(n)) if n > 0 => Flavor::KubeRay(Some(n)),
                _ => {
                    return Err(format!(
                        "BENCH_CONTENDERS: unknown contender {other:?} (expected ray-operator, kuberay or kuberay-<concurrency>)"
                    ));
                }
            },
        };
        Ok(Contender {
            name: name.to_string(),
            flavor,
        })
    }

    fn label(&self) -> String {
        match self.flavor {
            Flavor::RayOperator => "ray-operator".into(),
            Flavor::KubeRay(None) => "KubeRay v1.5.0, concurrency 1 (default)".into(),
            Flavor::KubeRay(Some(n)) => format!("KubeRay v1.5.0, concurrency {n}"),
        }
    }

    fn resource(&self) -> ApiResource {
        let group = match self.flavor {
            Flavor::RayOperator => "cluster.ray.io",
            Flavor::KubeRay(_) => "ray.io",
        };
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, "v1", "RayCluster"),
            "rayclusters",
        )
    }

    /// The pod labels naming a pod's cluster and whether it is the head.
    fn pod_labels(&self) -> (&'static str, &'static str) {
        match self.flavor {
            Flavor::RayOperator => (
                ray_operator::naming::CLUSTER_NAME,
                ray_operator::naming::NODE_KIND,
            ),
            Flavor::KubeRay(_) => ("ray.io/cluster", "ray.io/node-type"),
        }
    }

    /// Whether the operator says the cluster is up: our phase `Running`,
    /// KubeRay's state `ready` (or its `RayClusterProvisioned` condition).
    fn ready(&self, cluster: &DynamicObject) -> bool {
        let status = &cluster.data["status"];
        match self.flavor {
            Flavor::RayOperator => status["phase"] == "Running",
            Flavor::KubeRay(_) => {
                status["state"] == "ready"
                    || status["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "RayClusterProvisioned" && c["status"] == "True")
                    })
            }
        }
    }

    /// The writes (POST, PUT, PATCH, DELETE) the operator has sent to the API
    /// server so far, from its own metrics: ours counts them by kind, KubeRay's
    /// client-go counts requests by method (on the metrics port, health + 1).
    async fn api_writes(&self, opts: &Opts, op: &Process) -> Res<f64> {
        Ok(match self.flavor {
            Flavor::RayOperator => {
                let text = op.get("/metrics").await?;
                sum_samples(&text, "ray_operator_api_writes_total", |_| true)
            }
            Flavor::KubeRay(_) => {
                let text = http_get(opts.health_port + 1, "/metrics").await?;
                sum_samples(&text, "rest_client_requests_total", |labels| {
                    ["POST", "PUT", "PATCH", "DELETE"]
                        .iter()
                        .any(|m| labels.contains(&format!("method=\"{m}\"")))
                })
            }
        })
    }

    async fn start(&self, opts: &Opts, tag: &str) -> Res<Process> {
        let port = opts.health_port;
        let (program, args, ready) = match self.flavor {
            Flavor::RayOperator => (
                &opts.operator_bin,
                [
                    "run".to_string(),
                    "--autoscaler=false".into(),
                    // kwok pods run no Ray to read the health of.
                    "--ray-health=false".into(),
                    "--leader-elect=false".into(),
                    "--health-port".into(),
                    port.to_string(),
                ]
                .into_iter()
                .chain(opts.operator_args.iter().cloned())
                .collect(),
                "/healthz",
            ),
            Flavor::KubeRay(concurrency) => {
                let mut args = vec![
                    "-enable-leader-election=false".to_string(),
                    format!("-metrics-addr=127.0.0.1:{}", port + 1),
                    format!("-health-probe-bind-address=127.0.0.1:{port}"),
                    "-log-stdout-encoder=console".into(),
                ];
                if let Some(n) = concurrency {
                    args.push(format!("-reconcile-concurrency={n}"));
                }
                (&opts.kuberay_bin, args, "/readyz")
            }
        };
        let log_path = opts.log_dir.join(format!("{}-{tag}.log", self.name));
        // A moment after ready for the initial lists' events.
        Process::start(
            program,
            &args,
            &[],
            &log_path,
            port,
            ready,
            Duration::from_secs(2),
        )
        .await
    }
}

// --- the objects ----------------------------------------------------------------------------------

/// Index in `spec.podTypes` and pod config of the chart's pod type `name`.
fn pod_type(cluster: &Value, name: &str) -> Res<(usize, Value)> {
    cluster["spec"]["podTypes"]
        .as_array()
        .and_then(|types| types.iter().position(|t| t["name"] == name))
        .map(|i| (i, cluster["spec"]["podTypes"][i]["podConfig"].clone()))
        .ok_or_else(|| format!("no podTypes[{name}] in the rendered RayCluster"))
}

/// One workload's clusters, for one contender: the object to create and
/// the patch that sets the worker count.
struct Shape {
    template: Value,
    worker_type_index: usize,
}

impl Shape {
    fn new(contender: &Contender, chart: &Value, workers: usize, max: usize) -> Res<Shape> {
        let (worker_type_index, worker) = pod_type(chart, "rayWorkerType")?;
        let template = match contender.flavor {
            Flavor::RayOperator => {
                let mut cluster = chart.clone();
                let spec = &mut cluster["spec"];
                let max = max.max(workers);
                spec["podTypes"][worker_type_index]["minWorkers"] = workers.into();
                spec["podTypes"][worker_type_index]["maxWorkers"] = max.into();
                // The head's type has no workers: the cluster's bound is the worker type's.
                spec["maxWorkers"] = max.into();
                cluster
            }
            Flavor::KubeRay(_) => {
                let (_, head) = pod_type(chart, "rayHeadType")?;
                let template = |pod: &Value| json!({"spec": quantities_as_strings(&pod["spec"])});
                json!({
                    "apiVersion": "ray.io/v1",
                    "kind": "RayCluster",
                    "metadata": {},
                    "spec": {
                        "rayVersion": "2.47.1",
                        "headGroupSpec": {"rayStartParams": {}, "template": template(&head)},
                        "workerGroupSpecs": [{
                            "groupName": "worker",
                            "replicas": workers,
                            "minReplicas": 0,
                            "maxReplicas": max.max(workers),
                            "rayStartParams": {},
                            "template": template(&worker),
                        }],
                    },
                })
            }
        };
        Ok(Shape {
            template,
            worker_type_index,
        })
    }

    fn object(&self, ns: &str, name: &str) -> DynamicObject {
        let mut c = self.template.clone();
        c["metadata"] = json!({"name": name, "namespace": ns});
        serde_json::from_value(c).expect("a RayCluster object")
    }

    /// A JSON patch setting the worker count.
    fn workers_patch(&self, contender: &Contender, workers: usize) -> Value {
        let path = match contender.flavor {
            Flavor::RayOperator => {
                format!("/spec/podTypes/{}/minWorkers", self.worker_type_index)
            }
            Flavor::KubeRay(_) => "/spec/workerGroupSpecs/0/replicas".into(),
        };
        json!([{"op": "replace", "path": path, "value": workers}])
    }
}

/// The pod spec with its containers' resource quantities as strings: a
/// pod takes `cpu: 0.5`, KubeRay's schema only `"0.5"` (int-or-string).
fn quantities_as_strings(spec: &Value) -> Value {
    let mut spec = spec.clone();
    for key in ["containers", "initContainers"] {
        for container in spec[key].as_array_mut().into_iter().flatten() {
            for kind in ["requests", "limits"] {
                let quantities = container["resources"][kind].as_object_mut();
                for value in quantities.into_iter().flat_map(|q| q.values_mut()) {
                    if let Value::Number(n) = value {
                        *value = Value::String(n.to_string());
                    }
                }
            }
        }
    }
    spec
}

fn strip_cluster(c: &mut DynamicObject) {
    c.metadata.managed_fields = None;
    c.metadata.annotations = None;
    if let Some(obj) = c.data.as_object_mut() {
        obj.remove("spec");
    }
}

// --- counting -------------------------------------------------------------------------------------

/// Each cluster's live pods: (heads, workers).
fn pods_by_cluster(contender: &Contender, pods: &Store<Pod>) -> HashMap<String, (usize, usize)> {
    let (cluster_label, kind_label) = contender.pod_labels();
    let mut by = HashMap::new();
    for pod in pods.state() {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let labels = pod.labels();
        let Some(cluster) = labels.get(cluster_label) else {
            continue;
        };
        let entry: &mut (usize, usize) = by.entry(cluster.clone()).or_default();
        if labels.get(kind_label).map(String::as_str) == Some("head") {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    by
}

/// Clusters whose pods are not exactly 1 head + `workers` (a duplicate or
/// a missing pod), of `names`.
fn wrong_counts(
    contender: &Contender,
    pods: &Store<Pod>,
    names: &[String],
    workers: usize,
) -> Vec<String> {
    let by = pods_by_cluster(contender, pods);
    let mut wrong: Vec<String> = names
        .iter()
        .filter_map(|n| {
            let got = by.get(n).copied().unwrap_or_default();
            (got != (1, workers)).then(|| format!("{n}: {} heads, {} workers", got.0, got.1))
        })
        .collect();
    let extra = by.keys().filter(|k| !names.contains(k)).count();
    if extra > 0 {
        wrong.push(format!("{extra} clusters' pods not asked for"));
    }
    wrong
}

fn running(pods: &Store<Pod>) -> usize {
    pods.state().iter().filter(|p| is_running(p)).count()
}

// --- the workloads --------------------------------------------------------------------------------

#[derive(Default, Clone)]
struct Row {
    contender: String,
    workload: String,
    clusters: usize,
    pods: usize,
    idle: Mem,
    loaded: Mem,
    /// Creation to every pod Running (the pod watch's view).
    all_running: Duration,
    /// Creation to every cluster ready in the operator's own status.
    all_ready: Duration,
    cpu: f64,
    /// Writes to the API server from creation to every cluster ready.
    writes: f64,
    load: String,
    /// Clusters with a duplicate or a missing pod, after settling.
    wrong: Vec<String>,
    /// Fairness: the big cluster's workers all created; the other's one worker.
    big_created: Duration,
    other_created: Duration,
}

struct Run<'a> {
    client: &'a Client,
    opts: &'a Opts,
    chart: &'a Value,
    contender: &'a Contender,
}

impl Run<'_> {
    /// The workload's namespace, made, and its pods and clusters watched.
    async fn namespace(&self, workload: &str) -> Res<(String, Store<Pod>, Store<DynamicObject>)> {
        let ns = format!("{}-{workload}", self.contender.name);
        create_namespace(self.client, &ns).await?;
        let pods = watch_pods(self.client, &ns);
        let clusters = watch_dynamic(self.client, &ns, &self.contender.resource(), strip_cluster);
        pods.wait_until_ready().await.map_err(|e| e.to_string())?;
        clusters
            .wait_until_ready()
            .await
            .map_err(|e| e.to_string())?;
        Ok((ns, pods, clusters))
    }

    async fn empty(&self, ns: &str) -> Res<()> {
        delete_namespace(
            self.client,
            ns,
            &[self.contender.resource()],
            self.opts.timeout,
        )
        .await
        .map(|_| ())
    }

    fn api(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &self.contender.resource())
    }

    async fn settled_mem(&self, op: &Process) -> Res<Mem> {
        tokio::time::sleep(self.opts.settle).await;
        let m = op.mem()?;
        log(format!(
            "[{}] VmRSS {} MiB, RssAnon {} MiB, {} threads",
            self.contender.name,
            mib(m.rss_kib),
            mib(m.anon_kib),
            m.threads
        ));
        Ok(m)
    }

    /// `n` clusters of 1 head + `workers` created at once, timed to every
    /// pod Running and every cluster ready; counted after settling.
    async fn clusters_at_once(&self, workload: &str, n: usize, workers: usize) -> Res<Row> {
        let c = self.contender;
        let mut op = c.start(self.opts, workload).await?;
        let mut row = Row {
            contender: c.label(),
            workload: workload.into(),
            clusters: n,
            pods: n * (1 + workers),
            idle: self.settled_mem(&op).await?,
            ..Row::default()
        };
        let (ns, pods, clusters) = self.namespace(workload).await?;
        let shape = Shape::new(c, self.chart, workers, workers)?;
        let names: Vec<String> = (0..n).map(|i| format!("{workload}-{i}")).collect();
        log(format!(
            "[{}] creating {n} clusters of 1 head + {workers} workers",
            c.name
        ));
        let cpu0 = op.cpu()?;
        let writes0 = c.api_writes(self.opts, &op).await?;
        let start = Instant::now();
        create_all(&self.api(&ns), n, self.opts.client_concurrency, |i| {
            shape.object(&ns, &names[i])
        })
        .await?;
        let want = row.pods;
        row.all_running = until(
            &format!("[{}] {want} pods Running", c.name),
            start,
            self.opts.timeout,
            || running(&pods) >= want,
        )
        .await?;
        row.all_ready = until(
            &format!("[{}] {n} clusters ready", c.name),
            start,
            self.opts.timeout,
            || clusters.state().iter().filter(|o| c.ready(o)).count() >= n,
        )
        .await?;
        row.cpu = op.cpu()? - cpu0;
        row.writes = c.api_writes(self.opts, &op).await? - writes0;
        row.load = load_average();
        row.loaded = self.settled_mem(&op).await?;
        row.wrong = wrong_counts(c, &pods, &names, workers);
        op.check_alive()?;
        drop(op);
        self.empty(&ns).await?;
        Ok(row)
    }

    /// While one cluster goes from 0 to `fair_workers` workers, another's
    /// one new worker: how long until it is created.
    async fn fairness(&self) -> Res<Row> {
        let c = self.contender;
        let big_n = self.opts.fair_workers;
        let mut op = c.start(self.opts, "fairness").await?;
        let mut row = Row {
            contender: c.label(),
            workload: "fairness".into(),
            clusters: 2,
            pods: big_n + 3,
            idle: self.settled_mem(&op).await?,
            ..Row::default()
        };
        let (ns, pods, clusters) = self.namespace("fairness").await?;
        let shape = Shape::new(c, self.chart, 0, big_n)?;
        let api = self.api(&ns);
        let names = ["big".to_string(), "other".to_string()];
        create_all(&api, 2, 2, |i| shape.object(&ns, &names[i])).await?;
        until(
            &format!("[{}] both clusters ready", c.name),
            Instant::now(),
            self.opts.timeout,
            || clusters.state().iter().filter(|o| c.ready(o)).count() >= 2,
        )
        .await?;
        let workers_of = |name: &str| {
            pods_by_cluster(c, &pods)
                .get(name)
                .map(|n| n.1)
                .unwrap_or_default()
        };
        let patch = |workers| {
            Patch::<Value>::Json(
                serde_json::from_value(shape.workers_patch(c, workers)).expect("a JSON patch"),
            )
        };
        let cpu0 = op.cpu()?;
        let start = Instant::now();
        api.patch("big", &PatchParams::default(), &patch(big_n))
            .await
            .map_err(|e| format!("patching big: {e}"))?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let other_start = Instant::now();
        api.patch("other", &PatchParams::default(), &patch(1))
            .await
            .map_err(|e| format!("patching other: {e}"))?;
        // Polled more often than `until` does: this is the figure that matters.
        loop {
            if workers_of("other") >= 1 {
                row.other_created = other_start.elapsed();
                break;
            }
            if other_start.elapsed() > self.opts.timeout {
                return Err("the other cluster's worker was never created".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        log(format!(
            "[{}] the other cluster's worker created after {:.2}s",
            c.name,
            row.other_created.as_secs_f64()
        ));
        row.big_created = until(
            &format!("[{}] big's {big_n} workers created", c.name),
            start,
            self.opts.timeout,
            || workers_of("big") >= big_n,
        )
        .await?;
        row.all_running = until(
            &format!("[{}] {} pods Running", c.name, row.pods),
            start,
            self.opts.timeout,
            || running(&pods) >= big_n + 3,
        )
        .await?;
        row.cpu = op.cpu()? - cpu0;
        row.load = load_average();
        row.loaded = self.settled_mem(&op).await?;
        let by = pods_by_cluster(c, &pods);
        for (name, want) in [("big", big_n), ("other", 1)] {
            let got = by.get(name).copied().unwrap_or_default();
            if got != (1, want) {
                row.wrong
                    .push(format!("{name}: {} heads, {} workers", got.0, got.1));
            }
        }
        op.check_alive()?;
        drop(op);
        self.empty(&ns).await?;
        Ok(row)
    }
}

// --- the floor ------------------------------------------------------------------------------------

/// The control plane's own time for the burst's pods as bare pods: every
/// `1 + workers`-th the head's spec, the rest the worker's.
async fn floor(client: &Client, opts: &Opts, chart: &Value) -> Res<Floor> {
    let (_, head) = pod_type(chart, "rayHeadType")?;
    let (_, worker) = pod_type(chart, "rayWorkerType")?;
    let n = opts.big * (1 + opts.workers);
    bare_pods(
        client,
        "floor",
        n,
        opts.client_concurrency,
        opts.timeout,
        |i| {
            let pod = if i % (1 + opts.workers) == 0 {
                &head
            } else {
                &worker
            };
            pod["spec"].clone()
        },
    )
    .await
}

// --- the tables -----------------------------------------------------------------------------------

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn correct(row: &Row) -> String {
    if row.wrong.is_empty() {
        "exact".into()
    } else {
        let shown: Vec<&str> = row.wrong.iter().take(3).map(String::as_str).collect();
        format!("**{} wrong**: {}", row.wrong.len(), shown.join("; "))
    }
}

fn print_tables(opts: &Opts, rows: &[Row], floor: Option<&Floor>) {
    println!(
        "### Memory (VmRSS and RssAnon from /proc/<pid>/status, MiB, {}s after the last change)\n",
        opts.settle.as_secs()
    );
    println!(
        "| operator | workload | idle RSS | loaded RSS | idle RssAnon | loaded RssAnon | RssAnon added per pod |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let per_pod = (r.loaded.anon_kib.saturating_sub(r.idle.anon_kib)) as f64 / r.pods as f64;
        println!(
            "| {} | {} ({} clusters, {} pods) | {} | {} | {} | {} | {:.2} KiB |",
            r.contender,
            r.workload,
            r.clusters,
            r.pods,
            mib(r.idle.rss_kib),
            mib(r.loaded.rss_kib),
            mib(r.idle.anon_kib),
            mib(r.loaded.anon_kib),
            per_pod
        );
    }
    let timed: Vec<&Row> = rows.iter().filter(|r| r.workload != "fairness").collect();
    if !timed.is_empty() {
        println!(
            "\n### Creating clusters at once: to every pod Running, and to every cluster ready in the operator's status\n"
        );
        println!(
            "| operator | workload | pods Running | ÷ floor | clusters ready | operator CPU | API writes per cluster | pod counts | load (1 min) |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---|---:|");
        for r in timed {
            let ratio = match floor {
                Some(f) if r.workload == "burst" && f.pods == r.pods => {
                    format!(
                        "{:.2}x",
                        r.all_running.as_secs_f64() / f.running.as_secs_f64()
                    )
                }
                _ => "—".into(),
            };
            println!(
                "| {} | {} ({} clusters, {} pods) | {} | {ratio} | {} | {:.1} s | {:.1} | {} | {} |",
                r.contender,
                r.workload,
                r.clusters,
                r.pods,
                secs(r.all_running),
                secs(r.all_ready),
                r.cpu,
                r.writes / r.clusters as f64,
                correct(r),
                r.load
            );
        }
        if let Some(f) = floor {
            println!(
                "| the control plane alone (floor) | {} bare pods | {} | 1.00x | — | — | — | — | {} |",
                f.pods,
                secs(f.running),
                f.load
            );
        }
    }
    let fair: Vec<&Row> = rows.iter().filter(|r| r.workload == "fairness").collect();
    if !fair.is_empty() {
        println!(
            "\n### Fairness: one cluster set from 0 to {} workers, another to 1 half a second later\n",
            opts.fair_workers
        );
        println!(
            "| operator | the other cluster's worker created | the big cluster's workers all created | all Running | operator CPU | pod counts | load (1 min) |"
        );
        println!("|---|---:|---:|---:|---:|---|---:|");
        for r in fair {
            println!(
                "| {} | {:.2} s | {} | {} | {:.1} s | {} | {} |",
                r.contender,
                r.other_created.as_secs_f64(),
                secs(r.big_created),
                secs(r.all_running),
                r.cpu,
                correct(r),
                r.load
            );
        }
    }
}

async fn bench(opts: &Opts) -> Res<bool> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("connecting (KUBECONFIG): {e}"))?;
    let chart = rendered_cluster(&opts.operator_bin, "")?;
    let floor = if opts.workloads.iter().any(|w| w == "burst") {
        Some(floor(&client, opts, &chart).await?)
    } else {
        None
    };
    let mut rows = Vec::new();
    for contender in &opts.contenders {
        let run = Run {
            client: &client,
            opts,
            chart: &chart,
            contender,
        };
        for workload in &opts.workloads {
            log(format!("[{}] {workload}", contender.name));
            let row = match workload.as_str() {
                "head-only" => run.clusters_at_once("head-only", opts.small, 0).await?,
                "burst" => {
                    run.clusters_at_once("burst", opts.big, opts.workers)
                        .await?
                }
                _ => run.fairness().await?,
            };
            rows.push(row);
        }
    }
    print_tables(opts, &rows, floor.as_ref());
    Ok(rows.iter().all(|r| r.wrong.is_empty()))
}

fn main() -> std::process::ExitCode {
    let opts = match Opts::from_env() {
        Ok(opts) => opts,
        Err(e) => {
            log(format!("FAILED: {e}"));
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(bench(&opts)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            log("FAILED: some cluster had a duplicate or a missing pod (see the tables)");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            log(format!("FAILED: {e}"));
            std::process::ExitCode::FAILURE
        }
    }
}
