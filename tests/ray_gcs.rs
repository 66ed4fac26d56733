//! The GCS client against a real Ray head (from the venv `make ray` installs;
//! see `support::ray` for `RAY_VENV` / `RAY_VERSION`). Without Ray the test
//! fails and says to run `make ray`. Every Ray process started here is stopped
//! by PID, also on panic.

mod support;

use std::time::{Duration, Instant};

use ray_operator::operator::autoscaler::gcs::{DrainReason, GcsClient, GcsOptions, NodeStatus};
use ray_operator::operator::autoscaler::planner::{self, AutoscalerConfig, WorkerPod, WorkerType};
use ray_operator::operator::autoscaler::{AutoscalerReport, ClusterState};
use ray_operator::operator::resources::bundle;
use support::ray::{RayHead, free_port};

const WORKER_POD: &str = "test-cpu-worker-abcde";
const WORKER_TYPE: &str = "cpu-worker";

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
