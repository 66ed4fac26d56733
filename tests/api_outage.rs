//! The API server goes away for 30 seconds while clusters are being created
//! and scaled, then comes back: the operator stays up (it stops acting when
//! its leader Lease runs out, and takes it back), and every cluster converges
//! with no duplicate or missing pod. Stopping the API server would break
//! every other test, so this runs on a kwok control plane of its own:
//! `$KWOK_OUTAGE_CLUSTER_DIR` (default `<repo>/.cluster/kwok-outage`), ports
//! from `$KWOK_OUTAGE_PORT_BASE` (default 26523).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::cluster::{TestNamespace, kwok, private_kwok, shared};
use support::eventually;
use support::kwok_clusters::{create_cluster, edit_spec, names_of, pods, running, status};
use support::operator::{Operator, install_crd};

/// How long the API server stays away: twice the leader Lease's 15 s.
const OUTAGE: Duration = Duration::from_secs(30);

/// A stopped kube-apiserver, started again with the same command line.
struct StoppedApiServer {
    argv: Vec<String>,
    pid_file: std::path::PathBuf,
    log: std::path::PathBuf,
}

/// Kills the control plane's kube-apiserver (SIGKILL to the PID cluster-up.sh
/// recorded: gone at once, as in a crash, with no graceful end of the
/// watches) and waits until it has exited.
fn stop_api_server(dir: &Path) -> StoppedApiServer {
    let pid_file = dir.join("pids/kube-apiserver.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("kube-apiserver.pid")
        .trim()
        .parse()
        .expect("a PID");
    let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .expect("the API server's command line")
        .split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    assert!(
        argv[0].ends_with("/kube-apiserver"),
        "pid {pid} is not the API server: {argv:?}"
    );
    // SAFETY: plain kill(2) of a PID this control plane recorded and that runs kube-apiserver.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
    let gone = std::time::Instant::now() + Duration::from_secs(30);
    // Exited, or a zombie: its parent (cluster-up.sh's shell) is long gone,
    // and the machine's init need not reap it.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    };
    while alive() {
        assert!(
            std::time::Instant::now() < gone,
            "kube-apiserver {pid} did not exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    StoppedApiServer {
        argv,
        pid_file,
        log: dir.join("logs/kube-apiserver.log"),
    }
}

impl StoppedApiServer {
    /// Starts it again as cluster-up.sh does (`setsid`, its log appended),
    /// detached from this test, and records the new PID (so cluster-down.sh
    /// stops it).
    fn start(self) {
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#"log=$1; shift; setsid "$@" >>"$log" 2>&1 </dev/null & echo $!"#)
            .arg("start-api-server")
            .arg(&self.log)
            .args(&self.argv)
            .stderr(Stdio::inherit())
            .output()
            .expect("start kube-apiserver again");
        assert!(out.status.success(), "starting kube-apiserver: {out:?}");
        std::fs::write(&self.pid_file, &out.stdout).unwrap();
    }
}

/// Waits until the control plane itself schedules and runs a new pod again:
/// a bare pod, not the operator's. The scheduler's and kwok's watches retry
/// with client-go's backoff (up to 30 s, doubled by jitter), so after an
/// outage they can take a minute to come back; until they do, no operator
/// can bring a pod to Running, and its own convergence is measured from here.
async fn control_plane_runs_pods_again(client: &kube::Client, ns: &str) {
    use k8s_openapi::api::core::v1::Pod;
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), ns);
    let probe: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "control-plane-probe"},
        "spec": {"containers": [{"name": "probe", "image": "probe"}]},
    }))
    .unwrap();
    eventually(
        "the probe pod created",
        Duration::from_secs(60),
        async || match pods.create(&Default::default(), &probe).await {
            // 409: an earlier try was created but its answer lost.
            Ok(_) => Some(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Some(()),
            Err(_) => None,
        },
    )
    .await;
    eventually(
        "the scheduler and kwok running a new bare pod again",
        Duration::from_secs(180),
        async || {
            let pod = pods.get("control-plane-probe").await.ok()?;
            (pod.status?.phase.as_deref() == Some("Running")).then_some(())
        },
    )
    .await;
    pods.delete("control-plane-probe", &Default::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_rides_out_an_api_server_outage() {
    let plane = private_kwok("kwok-outage", "KWOK_OUTAGE", 26523);
    // Real kubelets report their pods Ready again after an outage that made
    // their nodes NotReady; kwok does not, so its nodes must stay Ready.
    // SAFETY: set before any thread reads the environment.
    unsafe { std::env::set_var("NODE_MONITOR_GRACE_PERIOD", "5m") };
    let _kwok = kwok();
    install_crd();
    let client = shared().client().await;
    let ns = TestNamespace::new(&client, "api-outage").await;
    let ns = ns.name.clone();
    // With leader election (the default), as a Deployment runs it.
    let mut operator = Operator::start("op", &ns, true, &[]).await;

    for (name, workers) in [("a", "1"), ("b", "2"), ("c", "0")] {
        create_cluster(
            name,
            &ns,
            &[&format!("podTypes.rayWorkerType.minWorkers={workers}")],
        );
    }
    running(&client, &ns, "a", 1).await;
    running(&client, &ns, "b", 2).await;
    running(&client, &ns, "c", 0).await;

    // Work in flight when the API server goes: a scale-up, a scale-down and
    // a new cluster, none of them done yet.
    let set_min = |n: i64| {
        move |spec: &mut serde_json::Value| {
            for pod_type in spec["podTypes"].as_array_mut().unwrap() {
                if pod_type["name"] == "rayWorkerType" {
                    pod_type["minWorkers"] = n.into();
                    pod_type["maxWorkers"] = n.max(3).into();
                }
            }
        }
    };
    edit_spec(&client, &ns, "a", set_min(3)).await;
    edit_spec(&client, &ns, "b", set_min(0)).await;
    create_cluster("d", &ns, &["podTypes.rayWorkerType.minWorkers=2"]);
    let stopped = stop_api_server(&plane.dir);
    tokio::time::sleep(OUTAGE).await;
    assert!(
        operator.is_running(),
        "the operator exited during the outage:\n{}",
        operator.logs()
    );
    stopped.start();

    // Back: it converges, and takes more work.
    let client = shared().client().await;
    eventually(
        "the API server answering again",
        Duration::from_secs(90),
        async || client.apiserver_version().await.ok(),
    )
    .await;
    control_plane_runs_pods_again(&client, &ns).await;
    create_cluster("e", &ns, &["podTypes.rayWorkerType.minWorkers=1"]);
    edit_spec(&client, &ns, "c", set_min(1)).await;
    let want = [("a", 3), ("b", 0), ("c", 1), ("d", 2), ("e", 1)];
    for (name, workers) in want {
        running(&client, &ns, name, workers).await;
    }
    // Exactly that, and it stays so: no pod made twice by the two terms, and
    // no Ray cluster restarted (the outage was the control plane's, not Ray's).
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (name, workers) in want {
        assert_eq!(
            status(&client, &ns, name).await.autoscaler_retries,
            0,
            "{name} restarted"
        );
        let pods = pods(&client, &ns, name).await;
        assert_eq!(
            (
                names_of(&pods, "head").len(),
                names_of(&pods, "worker").len()
            ),
            (1, workers),
            "{name}: {:?}",
            pods.iter()
                .map(|p| p.metadata.name.clone())
                .collect::<Vec<_>>()
        );
    }
    assert!(
        operator.is_running(),
        "the operator exited:\n{}",
        operator.logs()
    );
    let logs = operator.logs();
    assert!(logs.contains("leader Lease lost: stopping"), "{logs}");
    assert!(
        logs.matches("holding the leader Lease").count() >= 2,
        "it never took the Lease back:\n{logs}"
    );
}
