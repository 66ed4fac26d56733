//! The operator's autoscaler against a real Ray head (issue 5, part 4).
//!
//! kwok pods run no processes, so the test runs Ray itself: a head (no CPUs,
//! so every task needs a worker), the cluster's `gcsAddress` pointing at it,
//! and, for the pods the operator creates, Ray worker nodes that join with the
//! pod's name as `RAY_CLOUD_INSTANCE_ID`. Needs `make ray`; every Ray process
//! is stopped by PID, also on panic. Each test has its own head, operator,
//! cluster and namespace ([`Autoscaled`]), so one broken behaviour fails one test.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use ray_operator::api::{Phase, RayClusterStatus};
use ray_operator::operator::autoscaler::gcs::{GcsClient, GcsOptions, NodeStatus};
use support::cluster::{Claim, TestNamespace, kwok, shared};
use support::eventually;
use support::kwok_clusters::{self, WAIT, is_running, names, pods_of_type};
use support::operator::{Operator, install_crd, kubectl};
use support::ray::{RayHead, RayWorker};

const NAME: &str = "auto";

fn cluster_yaml(gcs: &str) -> String {
    format!(
        r#"
apiVersion: cluster.ray.io/v1
kind: RayCluster
metadata: {{name: {NAME}}}
spec:
  headPodType: head
  idleTimeoutMinutes: 0
  gcsAddress: "{gcs}"
  podTypes:
  - name: head
    minWorkers: 0
    maxWorkers: 0
    rayResources: {{CPU: 0}}
    podConfig:
      spec:
        containers:
        - {{name: ray-node, image: rayproject/ray:2.47.1, resources: {{limits: {{cpu: 1, memory: 2Gi}}}}}}
  - name: cpu
    minWorkers: 0
    maxWorkers: 2
    podConfig:
      spec:
        containers:
        - {{name: ray-node, image: rayproject/ray:2.47.1, resources: {{limits: {{cpu: 4, memory: 4Gi}}}}}}
  - name: gpu
    minWorkers: 0
    maxWorkers: 1
    podConfig:
      spec:
        containers:
        - {{name: ray-node, image: rayproject/ray:2.47.1, resources: {{limits: {{cpu: 4, nvidia.com/gpu: 1}}}}}}
"#
    )
}

/// Live pods of the cluster [`NAME`] with this `ray-user-node-type`, by name.
async fn pods_of(client: &Client, ns: &str, pod_type: &str) -> Vec<String> {
    names(&pods_of_type(client, ns, NAME, pod_type).await)
}

/// Ready (kwok Running) live pods of a type, by name.
async fn ready_pods_of(client: &Client, ns: &str, pod_type: &str) -> Vec<String> {
    let pods = pods_of_type(client, ns, NAME, pod_type).await;
    let ready: Vec<Pod> = pods.into_iter().filter(is_running).collect();
    names(&ready)
}

async fn status(client: &Client, ns: &str) -> RayClusterStatus {
    kwok_clusters::status(client, ns, NAME).await
}

async fn warnings(client: &Client, ns: &str, reason: &str) -> Vec<Event> {
    let all = support::operator::events(client, ns, reason).await;
    all.into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .collect()
}

/// The most live pods seen per type (and every phase seen), sampled every
/// 100 ms for the whole test.
fn watch_maxima(client: Client, ns: String) -> Arc<Mutex<BTreeMap<String, usize>>> {
    let maxima = Arc::new(Mutex::new(BTreeMap::new()));
    let m = maxima.clone();
    tokio::spawn(async move {
        loop {
            for ty in ["head", "cpu", "gpu"] {
                let n = pods_of(&client, &ns, ty).await.len();
                let mut m = m.lock().unwrap();
                let e = m.entry(ty.to_string()).or_insert(0);
                *e = (*e).max(n);
            }
            let phase = status(&client, &ns).await.phase;
            m.lock().unwrap().insert(format!("phase {phase:?}"), 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    maxima
}

/// Asserts that for `hold` the pod counts stay as given.
async fn holds(client: &Client, ns: &str, what: &str, want: &[(&str, usize)], hold: Duration) {
    let until = Instant::now() + hold;
    while Instant::now() < until {
        for (ty, n) in want {
            let pods = pods_of(client, ns, ty).await;
            assert_eq!(pods.len(), *n, "{what}: {ty} pods {pods:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Ray nodes of these pods that are still alive in the GCS.
async fn live_ray_nodes(gcs: &GcsClient, pods: &[String]) -> Vec<String> {
    let state = gcs.cluster_state().await.expect("GetClusterResourceState");
    state
        .nodes
        .iter()
        .filter(|n| pods.contains(&n.instance_id) && n.status != NodeStatus::Dead)
        .map(|n| format!("{} {:?}", n.instance_id, n.status))
        .collect()
}

/// One autoscaler test's own world: a Ray head with no CPUs (so every task
/// needs a worker), an operator autoscaling against it every 250 ms (3 s of
/// grace for a dead GCS), and the cluster [`NAME`] pointing at the head, in a
/// namespace of the test's own, its head pod Running and no worker asked for.
/// Fields drop in order: Ray first, the claim on the control plane last.
struct Autoscaled {
    client: Client,
    ns: String,
    head: RayHead,
    gcs: GcsClient,
    /// The head pod the operator made first.
    first_head: String,
    maxima: Arc<Mutex<BTreeMap<String, usize>>>,
    _operator: Operator,
    _ns: TestNamespace,
    _kwok: Claim,
}

impl Autoscaled {
    async fn start(test: &str) -> Autoscaled {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        // Fails with "run `make ray`" when Ray is missing, before touching Kubernetes.
        support::ray::venv();
        let claim = kwok();
        install_crd();
        let client = shared().client().await;
        let ns_guard = TestNamespace::new(&client, test).await;
        let ns = ns_guard.name.clone();

        let t = Instant::now();
        let head = RayHead::start_with(&["--num-cpus=0"]);
        eprintln!("head started in {:?} at {}", t.elapsed(), head.address());
        let gcs = GcsClient::new(GcsOptions::new(head.address())).unwrap();
        let operator = Operator::start(
            "as",
            &ns,
            true,
            &[
                "--autoscaler=true",
                "--autoscaler-interval-ms",
                "250",
                "--gcs-grace-seconds",
                "3",
            ],
        )
        .await;
        kubectl(
            &["apply", "-n", &ns, "-f", "-"],
            &cluster_yaml(&head.address()),
        );
        let first_head = eventually("the head pod Running", WAIT, async || {
            let heads = ready_pods_of(&client, &ns, "head").await;
            let s = status(&client, &ns).await;
            (heads.len() == 1 && s.phase == Some(Phase::Running)).then(|| heads[0].clone())
        })
        .await;
        let maxima = watch_maxima(client.clone(), ns.clone());
        holds(
            &client,
            &ns,
            "no demand",
            &[("cpu", 0), ("gpu", 0)],
            Duration::from_secs(1),
        )
        .await;
        Autoscaled {
            client,
            ns,
            head,
            gcs,
            first_head,
            maxima,
            _operator: operator,
            _ns: ns_guard,
            _kwok: claim,
        }
    }

    /// Asserts that for `hold` the pod counts stay as given.
    async fn holds(&self, what: &str, want: &[(&str, usize)], hold: Duration) {
        holds(&self.client, &self.ns, what, want, hold).await;
    }

    /// Live pods of a type, by name.
    async fn pods_of(&self, pod_type: &str) -> Vec<String> {
        pods_of(&self.client, &self.ns, pod_type).await
    }

    /// Waits until there are exactly `n` live pods of a type; returns them.
    async fn wait_pods(&self, what: &str, pod_type: &str, n: usize) -> Vec<String> {
        eventually(what, WAIT, async || {
            let pods = self.pods_of(pod_type).await;
            (pods.len() == n).then_some(pods)
        })
        .await
    }

    async fn status(&self) -> RayClusterStatus {
        status(&self.client, &self.ns).await
    }

    /// Never more pods of a type than its maxWorkers, at any time of the test.
    fn assert_maxima(&self) {
        let maxima = self.maxima.lock().unwrap().clone();
        eprintln!("most pods seen per type: {maxima:?}");
        assert!(maxima.get("cpu").copied().unwrap_or(0) <= 2, "{maxima:?}");
        assert!(maxima.get("gpu").copied().unwrap_or(0) <= 1, "{maxima:?}");
    }
}

/// 3 x {CPU: 4}: cpu pods within 5 s, capped at maxWorkers 2; no gpu pods;
/// the demand in the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_demand_scales_up_at_once_capped_at_max_workers() {
    let a = Autoscaled::start("autoscaler-cpu").await;
    let _cpu_driver = a.head.spawn_driver("cpu", 0);
    let t = Instant::now();
    a.wait_pods("2 cpu pods", "cpu", 2).await;
    let took = t.elapsed();
    eprintln!("2 cpu pods {took:?} after the driver submitted");
    assert!(took < Duration::from_secs(5), "cpu pods took {took:?}");
    let s = eventually("pendingDemand in status", WAIT, async || {
        let a = a.status().await.autoscaler.unwrap_or_default();
        a.pending_demand
            .iter()
            .any(|d| d.starts_with("3 x") && d.contains("CPU"))
            .then_some(a)
    })
    .await;
    eprintln!("status.autoscaler: {s:?}");
    a.holds("capped", &[("cpu", 2), ("gpu", 0)], Duration::from_secs(2))
        .await;
    a.assert_maxima();
}

/// A GPU task: exactly one gpu pod, and no cpu pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_task_gets_exactly_one_gpu_pod() {
    let a = Autoscaled::start("autoscaler-gpu").await;
    let _gpu_driver = a.head.spawn_driver("gpu", 0);
    let t = Instant::now();
    a.wait_pods("1 gpu pod", "gpu", 1).await;
    eprintln!("gpu pod {:?} after the driver submitted", t.elapsed());
    a.holds(
        "one gpu pod",
        &[("cpu", 0), ("gpu", 1)],
        Duration::from_secs(2),
    )
    .await;
    a.assert_maxima();
}

/// {CPU: 64} fits no type: nothing created, a Warning and the status say so,
/// and the status forgets it once the demand is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infeasible_demand_creates_nothing_and_is_reported() {
    let a = Autoscaled::start("autoscaler-infeasible").await;
    let mut infeasible = a.head.spawn_driver("infeasible", 0);
    let event = eventually("an InfeasibleDemand Warning", WAIT, async || {
        warnings(&a.client, &a.ns, "InfeasibleDemand").await.pop()
    })
    .await;
    eprintln!("event: {:?}", event.note);
    assert!(
        event.note.as_deref().unwrap_or_default().contains("64"),
        "{event:?}"
    );
    eventually("infeasibleDemand in status", WAIT, async || {
        let a = a.status().await.autoscaler.unwrap_or_default();
        a.infeasible_demand
            .iter()
            .any(|d| d.contains("64"))
            .then_some(())
    })
    .await;
    a.holds(
        "nothing created",
        &[("cpu", 0), ("gpu", 0)],
        Duration::from_secs(2),
    )
    .await;
    infeasible.stop();
    eventually("infeasibleDemand cleared", WAIT, async || {
        let a = a.status().await.autoscaler.unwrap_or_default();
        a.infeasible_demand.is_empty().then_some(())
    })
    .await;
    a.assert_maxima();
}

/// Ray workers join for the cpu and gpu pods, run the tasks, go idle and are
/// drained; their pods are deleted, down to minWorkers, and stay so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_are_drained_and_deleted() {
    let a = Autoscaled::start("autoscaler-drain").await;
    let mut cpu_driver = a.head.spawn_driver("cpu", 0);
    let mut gpu_driver = a.head.spawn_driver("gpu", 0);
    let cpu_pods = a.wait_pods("2 cpu pods", "cpu", 2).await;
    let gpu_pods = a.wait_pods("1 gpu pod", "gpu", 1).await;

    let t = Instant::now();
    let mut workers: Vec<RayWorker> = Vec::new();
    // The tasks are short: a worker that joins after they are done is idle at
    // once and may be drained before its `ray start` returns; that is fine here.
    let joins = cpu_pods
        .iter()
        .map(|p| (p, "cpu", &["--num-cpus=4", "--memory=4294967296"][..]))
        .chain(
            gpu_pods
                .iter()
                .map(|p| (p, "gpu", &["--num-cpus=4", "--num-gpus=1"][..])),
        );
    for (pod, ty, resources) in joins {
        match a.head.try_worker(pod, ty, resources) {
            Ok(w) => workers.push(w),
            Err((w, e)) => {
                eprintln!(
                    "{pod}: ray start failed (drained while joining?): {}",
                    e.lines().last().unwrap_or_default()
                );
                workers.push(w);
            }
        }
    }
    eprintln!("3 Ray workers started in {:?}", t.elapsed());
    assert!(
        cpu_driver.wait_line(|l| l == "DONE", WAIT).is_some(),
        "the CPU tasks never finished"
    );
    assert!(
        gpu_driver.wait_line(|l| l == "DONE", WAIT).is_some(),
        "the GPU task never finished"
    );
    cpu_driver.stop();
    gpu_driver.stop();
    let all: Vec<String> = cpu_pods.iter().chain(&gpu_pods).cloned().collect();
    let t = Instant::now();
    eventually("idle workers drained and deleted", WAIT, async || {
        let cpu = a.pods_of("cpu").await;
        let gpu = a.pods_of("gpu").await;
        let live = live_ray_nodes(&a.gcs, &all).await;
        (cpu.is_empty() && gpu.is_empty() && live.is_empty()).then_some(())
    })
    .await;
    eprintln!("drained and deleted in {:?}", t.elapsed());
    let s = a.status().await;
    eprintln!("last decision: {:?}", s.autoscaler.map(|a| a.last_decision));
    drop(workers);
    a.holds(
        "stays at minWorkers",
        &[("cpu", 0), ("gpu", 0)],
        Duration::from_secs(2),
    )
    .await;
    a.assert_maxima();
}

/// request_resources(num_cpus=8): 2 cpu pods, held while the request stands,
/// also once their Ray nodes join and sit idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_resources_holds_workers_while_it_stands() {
    let a = Autoscaled::start("autoscaler-request").await;
    let _request = a.head.spawn_driver("request", 8);
    let requested = a
        .wait_pods("2 cpu pods for request_resources", "cpu", 2)
        .await;
    let mut workers: Vec<RayWorker> = Vec::new();
    for pod in &requested {
        workers.push(a.head.worker(pod, "cpu", &["--num-cpus=4"]));
    }
    eventually("requested workers joined Ray", WAIT, async || {
        (live_ray_nodes(&a.gcs, &requested).await.len() == 2).then_some(())
    })
    .await;
    a.holds("held", &[("cpu", 2), ("gpu", 0)], Duration::from_secs(5))
        .await;
    assert_eq!(a.pods_of("cpu").await, requested);
    assert_eq!(live_ray_nodes(&a.gcs, &requested).await.len(), 2);
    drop(workers);
    a.assert_maxima();
}

/// The head's Ray dies while its pod runs: after the grace period the
/// cluster restarts through AutoscalingExceptionRecovery with a new head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_head_restarts_the_cluster_after_the_grace_period() {
    let a = Autoscaled::start("autoscaler-dead-head").await;
    let retries_before = a.status().await.autoscaler_retries;
    assert_eq!(retries_before, 0);
    let killed = Instant::now();
    a.head.kill_head();
    eprintln!("head's Ray killed in {:?}", killed.elapsed());
    // The new head's GCS address is the same dead one, so the cluster restarts
    // again after every grace period: look at the first restart.
    let (new_head, s) = eventually("a new head pod", WAIT, async || {
        let heads = a.pods_of("head").await;
        let new = heads.iter().find(|h| **h != a.first_head).cloned()?;
        // The status is written right after the new head is created.
        let s = a.status().await;
        (s.autoscaler_retries >= 1).then_some((new, s))
    })
    .await;
    let took = killed.elapsed();
    eprintln!(
        "new head {new_head} {took:?} after the kill; phase {:?}, retries {}",
        s.phase, s.autoscaler_retries
    );
    assert!(
        took >= Duration::from_secs(3),
        "restarted before the grace period: {took:?}"
    );
    // One restart per grace period at most (the new head's GCS is as dead).
    let periods = (took.as_secs() / 3).max(1) as i64;
    assert!(
        (1..=periods).contains(&s.autoscaler_retries),
        "{s:?} after {took:?}"
    );
    assert!(
        matches!(
            s.phase,
            Some(Phase::AutoscalingExceptionRecovery) | Some(Phase::Running)
        ),
        "{s:?}"
    );
    let events = warnings(&a.client, &a.ns, "HeadFailed").await;
    eprintln!("event: {:?}", events.first().and_then(|e| e.note.clone()));
    assert!(!events.is_empty());
    a.assert_maxima();
}

/// A GCS of a Ray older than the autoscaler API: it answers `GetClusterId`
/// and nothing else (tonic answers `Unimplemented` for the autoscaler service).
#[derive(Clone)]
struct OldRayGcs;

#[tonic::async_trait]
impl ray_operator::operator::autoscaler::proto::ray_rpc::node_info_gcs_service_server::NodeInfoGcsService
    for OldRayGcs
{
    async fn get_cluster_id(
        &self,
        _: tonic::Request<ray_operator::operator::autoscaler::proto::ray_rpc::GetClusterIdRequest>,
    ) -> Result<
        tonic::Response<ray_operator::operator::autoscaler::proto::ray_rpc::GetClusterIdReply>,
        tonic::Status,
    > {
        Ok(tonic::Response::new(
            ray_operator::operator::autoscaler::proto::ray_rpc::GetClusterIdReply {
                status: None,
                cluster_id: vec![1; 28],
            },
        ))
    }
}

/// The status conditions of the cluster, as `type -> (status, reason)`.
async fn conditions(client: &Client, ns: &str) -> BTreeMap<String, (String, String)> {
    status(client, ns)
        .await
        .conditions
        .into_iter()
        .map(|c| (c.type_, (c.status, c.reason)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ray_without_the_autoscaler_api_holds_min_workers_and_says_so() {
    use ray_operator::operator::autoscaler::proto::ray_rpc::node_info_gcs_service_server::NodeInfoGcsServiceServer;
    let _kwok = kwok();
    install_crd();
    let client = shared().client().await;
    let ns_guard = TestNamespace::new(&client, "old-ray").await;
    let ns = ns_guard.name.clone();
    let address: std::net::SocketAddr = format!("127.0.0.2:{}", support::ray::free_port())
        .parse()
        .unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(NodeInfoGcsServiceServer::new(OldRayGcs))
            .serve(address),
    );
    let _operator = Operator::start(
        "old",
        &ns,
        true,
        &[
            "--autoscaler=true",
            "--ray-health=true",
            "--autoscaler-interval-ms",
            "250",
        ],
    )
    .await;
    let yaml = cluster_yaml(&address.to_string()).replace(
        "minWorkers: 0\n    maxWorkers: 2",
        "minWorkers: 1\n    maxWorkers: 2",
    );
    kubectl(&["apply", "-n", &ns, "-f", "-"], &yaml);

    eventually(
        "AutoscalerHealthy=False/UnsupportedRay and Running",
        WAIT,
        async || {
            let c = conditions(&client, &ns).await;
            let unsupported = c.get("AutoscalerHealthy")
                == Some(&("False".to_string(), "UnsupportedRay".to_string()));
            let running = status(&client, &ns).await.phase == Some(Phase::Running);
            (unsupported && running).then_some(())
        },
    )
    .await;
    assert_eq!(
        conditions(&client, &ns).await.get("RayReady"),
        Some(&("True".to_string(), "GcsAnswers".to_string()))
    );
    holds(
        &client,
        &ns,
        "minWorkers, no restart",
        &[("head", 1), ("cpu", 1), ("gpu", 0)],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status(&client, &ns).await.autoscaler_retries, 0);
    assert_eq!(
        warnings(&client, &ns, "UnsupportedRay").await.len(),
        1,
        "one Warning Event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_address_is_ignored_without_the_flag() {
    let _kwok = kwok();
    install_crd();
    let client = shared().client().await;
    let ns_guard = TestNamespace::new(&client, "gcs-ignored").await;
    let ns = ns_guard.name.clone();
    // A listener that counts the connections made to it.
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let _operator = Operator::start(
        "ignore",
        &ns,
        true,
        &[
            "--autoscaler=true",
            "--allow-gcs-address=false",
            "--autoscaler-interval-ms",
            "250",
        ],
    )
    .await;
    kubectl(
        &["apply", "-n", &ns, "-f", "-"],
        &cluster_yaml(&address.to_string()),
    );
    eventually("GcsAddressIgnored", WAIT, async || {
        let c = conditions(&client, &ns).await;
        (c.get("GcsAddressIgnored").map(|v| v.0.as_str()) == Some("True")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(warnings(&client, &ns, "GcsAddressIgnored").await.len(), 1);
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the operator never dialled spec.gcsAddress"
    );
}
