//! End-to-end tests of `ray-operator run` on the local control plane (kwok
//! makes the pods Running). Each test runs its own operator process as the
//! chart's ServiceAccount, in its own namespace.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::{self, Timestamp};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use ray_operator::api::{Phase, RayCluster};
use ray_operator::operator::reconcile::status::REJECTED;
use support::cluster::{TestNamespace, kwok, kwok_alone, shared};
use support::eventually;
use support::kwok_clusters::{
    WAIT, create_cluster, edit_spec, live_pods, names_of, pods, running, status,
};
use support::operator::{Applied, Operator, events, install_crd, kubectl, render};
use support::probe::TRACKED_MAPS;

/// A namespace for one test, with the CRD installed. The test holds a claim
/// on the cluster first: [`kwok()`], or [`kwok_alone()`] for a cluster-scoped
/// operator (it sees every namespace, so its test runs alone).
async fn setup(test: &str) -> (Client, TestNamespace) {
    install_crd();
    let client = shared().client().await;
    let ns = TestNamespace::new(&client, test).await;
    (client, ns)
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaced_operator_runs_its_clusters_and_only_those() {
    let _kwok = kwok();
    let (client, ns) = setup("namespaced").await;
    let (other_client, other) = setup("namespaced-other").await;
    let operator = Operator::start("op", &ns.name, true, &[]).await;
    create_cluster("alpha", &ns.name, &[]);
    create_cluster("beta", &ns.name, &["podTypes.rayWorkerType.minWorkers=1"]);
    create_cluster("gamma", &other.name, &[]);

    let alpha = running(&client, &ns.name, "alpha", 2).await;
    running(&client, &ns.name, "beta", 1).await;
    // Pods are named <cluster>-<podtype>-<suffix>, owned by the cluster, labelled.
    for pod in &alpha {
        let name = pod.name_any();
        assert!(
            name.starts_with("alpha-ray-head-type-") || name.starts_with("alpha-ray-worker-type-"),
            "{name}"
        );
        let owner = &pod.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("RayCluster", "alpha", Some(true))
        );
        assert!(pod.labels().contains_key("ray-launch-config"));
    }
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let head = services.get("alpha-ray-head").await.unwrap();
    let ports: BTreeSet<i32> = head
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, BTreeSet::from([6379, 8000, 8265, 10001]));
    assert_eq!(
        services
            .list(&ListParams::default().labels("ray-cluster-name"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    // The other namespace is not this operator's: no status, no pods.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        status(&other_client, &other.name, "gamma").await.phase,
        None
    );
    assert!(pods(&other_client, &other.name, "gamma").await.is_empty());

    // Log lines about a cluster start with <cluster>,<namespace>.
    let logs = operator.logs();
    let prefix = format!("alpha,{} ", ns.name);
    assert!(
        logs.lines()
            .any(|l| l.starts_with(&prefix) && l.contains("creating head pod")),
        "no line starts with {prefix:?}:\n{logs}"
    );

    // Deleting a cluster removes its pods and Service (garbage collection), and nothing else.
    let api: Api<RayCluster> = Api::namespaced(client.clone(), &ns.name);
    api.delete("alpha", &DeleteParams::default()).await.unwrap();
    eventually("alpha's pods and service gone", WAIT, async || {
        let gone = pods(&client, &ns.name, "alpha").await.is_empty()
            && services.get_opt("alpha-ray-head").await.unwrap().is_none();
        gone.then_some(())
    })
    .await;
    assert_eq!(pods(&client, &ns.name, "beta").await.len(), 2);
    assert!(services.get_opt("beta-ray-head").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn min_workers_edits_scale_without_restarts() {
    let _kwok = kwok();
    let (client, ns) = setup("scaling").await;
    let _operator = Operator::start("op", &ns.name, true, &[]).await;
    create_cluster("c", &ns.name, &[]);
    let before = running(&client, &ns.name, "c", 2).await;
    let head = names_of(&before, "head");

    edit_spec(&client, &ns.name, "c", |s| {
        s["podTypes"][1]["minWorkers"] = 3.into()
    })
    .await;
    let up = running(&client, &ns.name, "c", 3).await;
    assert_eq!(names_of(&up, "head"), head, "scaling keeps the head");
    assert!(
        names_of(&before, "worker").is_subset(&names_of(&up, "worker")),
        "scaling up keeps the workers"
    );

    edit_spec(&client, &ns.name, "c", |s| {
        s["podTypes"][1]["minWorkers"] = 1.into()
    })
    .await;
    let down = running(&client, &ns.name, "c", 1).await;
    assert_eq!(names_of(&down, "head"), head);
    assert!(names_of(&down, "worker").is_subset(&names_of(&up, "worker")));
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_rules_follow_the_seed() {
    let _kwok = kwok();
    let (client, ns) = setup("restarts").await;
    let _operator = Operator::start("op", &ns.name, true, &[]).await;
    create_cluster("c", &ns.name, &[]);
    let start = running(&client, &ns.name, "c", 2).await;

    // rayResources, upscalingSpeed, idleTimeoutMinutes: nothing restarts.
    edit_spec(&client, &ns.name, "c", |s| {
        s["podTypes"][1]["rayResources"] = serde_json::json!({"custom": 1});
        s["upscalingSpeed"] = 2.0.into();
        s["idleTimeoutMinutes"] = 1.into();
    })
    .await;
    let api: Api<RayCluster> = Api::namespaced(client.clone(), &ns.name);
    let generation = api.get("c").await.unwrap().metadata.generation;
    eventually("status catches up with the edit", WAIT, async || {
        (status(&client, &ns.name, "c").await.observed_generation == generation).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        running(&client, &ns.name, "c", 2)
            .await
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>(),
        start.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );

    // A worker podType's CPU: only its workers are replaced.
    edit_spec(&client, &ns.name, "c", |s| {
        s["podTypes"][1]["podConfig"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
            2.into()
    })
    .await;
    let workers_replaced = eventually("workers replaced", WAIT, async || {
        let pods = pods(&client, &ns.name, "c").await;
        let s = status(&client, &ns.name, "c").await;
        let fresh = names_of(&pods, "worker").is_disjoint(&names_of(&start, "worker"))
            && names_of(&pods, "worker").len() == 2;
        (fresh && s.phase == Some(Phase::Running) && s.ready_workers == 2).then_some(pods)
    })
    .await;
    assert_eq!(
        names_of(&workers_replaced, "head"),
        names_of(&start, "head"),
        "a worker change keeps the head"
    );

    // The head podType's memory: the whole Ray cluster restarts.
    edit_spec(&client, &ns.name, "c", |s| {
        s["podTypes"][0]["podConfig"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
            "3Gi".into()
    })
    .await;
    let restarted = eventually("cluster restarted", WAIT, async || {
        let pods = pods(&client, &ns.name, "c").await;
        let s = status(&client, &ns.name, "c").await;
        let fresh = names_of(&pods, "head").is_disjoint(&names_of(&start, "head"))
            && names_of(&pods, "worker").is_disjoint(&names_of(&workers_replaced, "worker"))
            && names_of(&pods, "worker").len() == 2;
        (fresh && s.phase == Some(Phase::Running) && s.ready_workers == 2).then_some(s)
    })
    .await;
    assert_eq!(
        restarted.autoscaler_retries, 0,
        "a config change is not an autoscaling error"
    );
    assert!(!events(&client, &ns.name, "Restarting").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_head_is_recovered_and_counted() {
    let _kwok = kwok();
    let (client, ns) = setup("head-loss").await;
    let _operator = Operator::start("op", &ns.name, true, &[]).await;
    create_cluster("c", &ns.name, &[]);
    let start = running(&client, &ns.name, "c", 2).await;
    let head = names_of(&start, "head").into_iter().next().unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    api.delete(&head, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();

    eventually("recovered with one retry", WAIT, async || {
        let s = status(&client, &ns.name, "c").await;
        (s.phase == Some(Phase::Running) && s.autoscaler_retries == 1 && s.ready_workers == 2)
            .then_some(())
    })
    .await;
    let now = pods(&client, &ns.name, "c").await;
    assert!(!names_of(&now, "head").contains(&head), "a new head");
    assert!(
        names_of(&now, "worker").is_disjoint(&names_of(&start, "worker")),
        "workers rejoin the new head"
    );
    let warnings = events(&client, &ns.name, "HeadFailed").await;
    assert_eq!(
        warnings.first().and_then(|e| e.type_.as_deref()),
        Some("Warning")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_operator_leaves_no_duplicates_or_orphans() {
    let _kwok = kwok();
    let (client, ns) = setup("crash").await;
    let mut operator = Operator::start("op", &ns.name, true, &[]).await;
    for name in ["a", "b", "c"] {
        create_cluster(name, &ns.name, &["podTypes.rayWorkerType.minWorkers=3"]);
    }
    // Kill it while it creates pods, then again after a moment, then let it finish.
    eventually("some pods exist", WAIT, async || {
        (!pods(&client, &ns.name, "a").await.is_empty()).then_some(())
    })
    .await;
    operator.restart();
    tokio::time::sleep(Duration::from_millis(700)).await;
    operator.restart();
    for name in ["a", "b", "c"] {
        running(&client, &ns.name, name, 3).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let live = live_pods(&client, &ns.name, "").await;
    assert_eq!(
        live.len(),
        12,
        "3 clusters x (1 head + 3 workers), no duplicates: {:?}",
        live.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );
    assert!(
        live.iter().all(|p| !p.owner_references().is_empty()),
        "no orphans"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_the_operator_cannot_act_on_is_reported_not_fatal() {
    let _kwok = kwok();
    let (client, ns) = setup("invalid").await;
    let mut operator = Operator::start("op", &ns.name, true, &[]).await;
    // Passes the CRD's schema (the pod spec is free-form there) but is no PodSpec.
    let manifest = render(&["bad", "-n", &ns.name, "--set", "clusterOnly=true"]).replace(
        "restartPolicy: Never",
        "restartPolicy: Never\n          hostNetwork: \"maybe\"",
    );
    assert!(manifest.contains("hostNetwork"), "fixture edit applied");
    kubectl(&["apply", "-n", &ns.name, "-f", "-"], &manifest);
    create_cluster("good", &ns.name, &[]);

    let s = eventually("bad cluster in Error", WAIT, async || {
        let s = status(&client, &ns.name, "bad").await;
        (s.phase == Some(Phase::Error)).then_some(s)
    })
    .await;
    let valid = s.conditions.iter().find(|c| c.type_ == "Valid").unwrap();
    assert_eq!(valid.status, "False");
    assert!(
        valid.message.contains("podConfig.spec.hostNetwork"),
        "{}",
        valid.message
    );
    let event = eventually("an InvalidSpec event", WAIT, async || {
        events(&client, &ns.name, "InvalidSpec")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    running(&client, &ns.name, "good", 2).await;
    assert!(pods(&client, &ns.name, "bad").await.is_empty());

    // Fixing the spec brings the cluster up.
    let fixed = render(&["bad", "-n", &ns.name, "--set", "clusterOnly=true"]);
    kubectl(&["apply", "-n", &ns.name, "-f", "-"], &fixed);
    running(&client, &ns.name, "bad", 2).await;
    operator.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_scoped_and_namespaced_operators_share_the_cluster_safely() {
    let _kwok = kwok_alone();
    let (client, claimed) = setup("claimed").await;
    let (_, open) = setup("open").await;
    let (_, home) = setup("operator-home").await;
    let namespaced = Operator::start("ns-op", &claimed.name, true, &[]).await;
    let release = format!("cs-{}", &home.name[home.name.len() - 6..]);
    let cluster_scoped = Operator::start(&release, &home.name, false, &[]).await;
    create_cluster("mine", &claimed.name, &[]);
    create_cluster("yours", &open.name, &[]);
    create_cluster("x", &home.name, &["podTypes.rayWorkerType.minWorkers=0"]);

    running(&client, &claimed.name, "mine", 2).await;
    running(&client, &open.name, "yours", 2).await;
    running(&client, &home.name, "x", 0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pods(&client, &claimed.name, "mine").await.len(),
        3,
        "no pod twice"
    );
    let skip = format!("mine,{} ", claimed.name);
    assert!(
        cluster_scoped
            .logs()
            .lines()
            .any(|l| l.starts_with(&skip) && l.contains("claimed by the namespaced operator")),
        "{}",
        cluster_scoped.logs()
    );
    assert!(
        !namespaced.logs().contains(&format!("yours,{}", open.name)),
        "the namespaced operator stays in its namespace"
    );
    kubectl(
        &[
            "delete",
            "clusterrole,clusterrolebinding",
            &format!("{release}-ray-operator"),
            "--ignore-not-found",
        ],
        "",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_replica_waits_for_the_lease_and_takes_over() {
    let _kwok = kwok();
    let (client, ns) = setup("leader").await;
    let mut first = Operator::start("first", &ns.name, true, &[]).await;
    eventually("the first replica leads", WAIT, async || {
        first
            .logs()
            .contains("holding the leader Lease")
            .then_some(())
    })
    .await;
    let second = Operator::start("second", &ns.name, true, &[]).await;
    create_cluster("c", &ns.name, &[]);
    let pods_before = running(&client, &ns.name, "c", 2).await;
    eventually("the second replica waits", WAIT, async || {
        second
            .logs()
            .contains("waiting for the leader Lease")
            .then_some(())
    })
    .await;
    assert!(
        !second.logs().contains("creating head pod"),
        "only the leader acts"
    );

    first.kill();
    eventually("the second replica takes over", WAIT, async || {
        second
            .logs()
            .contains("holding the leader Lease")
            .then_some(())
    })
    .await;
    let worker = names_of(&pods_before, "worker").into_iter().next().unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    api.delete(&worker, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let after = running(&client, &ns.name, "c", 2).await;
    assert!(
        !names_of(&after, "worker").contains(&worker),
        "the new leader replaced the deleted worker"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics_are_served() {
    let _kwok = kwok();
    let (client, ns) = setup("health").await;
    let operator = Operator::start("op", &ns.name, true, &[]).await;
    eventually("/readyz 200 once the caches synced", WAIT, async || {
        (operator.get("/readyz").await?.0 == 200).then_some(())
    })
    .await;
    assert_eq!(operator.get("/healthz").await.map(|r| r.0), Some(200));
    create_cluster("c", &ns.name, &["podTypes.rayWorkerType.minWorkers=1"]);
    running(&client, &ns.name, "c", 1).await;
    let (code, metrics) = operator.get("/metrics").await.unwrap();
    assert_eq!(code, 200);
    for line in [
        "ray_operator_managed_clusters 1",
        "ray_operator_managed_pods 2",
        "ray_operator_pods_created_total 2",
        // Each created pod is one write; nothing was deleted to get there.
        r#"ray_operator_api_writes_total{kind="pod_creation"} 2"#,
        r#"ray_operator_api_writes_total{kind="pod_deletion"} 0"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    assert!(metrics.contains("ray_operator_reconcile_duration_seconds_count"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_re_created_under_its_name_starts_afresh() {
    let _kwok = kwok();
    let (client, ns) = setup("recreate").await;
    let operator = Operator::start("op", &ns.name, true, &[]).await;
    create_cluster("c", &ns.name, &["podTypes.rayWorkerType.minWorkers=1"]);
    running(&client, &ns.name, "c", 1).await;
    let metrics = operator.metrics().await.unwrap();
    assert_eq!(
        metrics.tracked_clusters().len(),
        TRACKED_MAPS,
        "one gauge per map in\n{metrics:?}"
    );

    let api: Api<RayCluster> = Api::namespaced(client.clone(), &ns.name);
    api.delete("c", &DeleteParams::default()).await.unwrap();
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    eventually("the cluster and all its pods gone", WAIT, async || {
        let gone = api.get_opt("c").await.unwrap().is_none()
            && pod_api
                .list(&ListParams::default().labels("ray-cluster-name=c"))
                .await
                .unwrap()
                .items
                .is_empty();
        gone.then_some(())
    })
    .await;
    eventually("every tracked_clusters gauge back at 0", WAIT, async || {
        let tracked = operator.metrics().await?.tracked_clusters();
        (tracked.len() == TRACKED_MAPS && tracked.values().all(|n| *n == 0)).then_some(())
    })
    .await;

    create_cluster("c", &ns.name, &["podTypes.rayWorkerType.minWorkers=1"]);
    let mut phases = BTreeSet::new();
    eventually("the re-created cluster Running", WAIT, async || {
        let s = status(&client, &ns.name, "c").await;
        phases.extend(s.phase.map(Phase::as_str));
        (s.phase == Some(Phase::Running) && s.ready_workers == 1).then_some(())
    })
    .await;
    let s = status(&client, &ns.name, "c").await;
    assert_eq!(s.autoscaler_retries, 0, "no restart counted: {s:?}");
    assert!(
        !phases.contains("AutoscalingExceptionRecovery"),
        "passed through {phases:?}"
    );
    assert!(events(&client, &ns.name, "Restarting").await.is_empty());
}

/// The chart's cluster `name` with a sidecar requesting `cpu: lots` in its
/// worker type: the CRD's schema and the operator's own checks (which read
/// only the first container) let it through; the API server refuses the pod.
fn cluster_with_a_bad_worker(name: &str, namespace: &str) -> String {
    let manifest = render(&[name, "-n", namespace, "--set", "clusterOnly=true"]);
    let mut cluster: serde_json::Value = serde_yaml_ng::from_str(&manifest).unwrap();
    let worker = cluster["spec"]["podTypes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"] == "rayWorkerType")
        .unwrap();
    worker["podConfig"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "sidecar",
            "image": "busybox",
            "resources": {"requests": {"cpu": "lots"}},
        }));
    serde_json::to_string(&cluster).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_the_api_server_rejects_is_reported_once_and_not_retried() {
    let _kwok = kwok();
    let (client, ns) = setup("rejected").await;
    let _operator = Operator::start("op", &ns.name, true, &[]).await;
    kubectl(
        &["apply", "-n", &ns.name, "-f", "-"],
        &cluster_with_a_bad_worker("c", &ns.name),
    );
    let s = eventually("the cluster in Error", WAIT, async || {
        let s = status(&client, &ns.name, "c").await;
        (s.phase == Some(Phase::Error)).then_some(s)
    })
    .await;
    let valid = s.conditions.iter().find(|c| c.type_ == "Valid").unwrap();
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "RejectedByApiServer"),
        "{valid:?}"
    );
    assert!(valid.message.contains("rayWorkerType"), "{}", valid.message);
    assert!(valid.message.contains("quantities"), "{}", valid.message);
    let head = names_of(&pods(&client, &ns.name, "c").await, "head");
    assert_eq!(head.len(), 1, "the head still runs");

    // Reconciles keep coming (pod and status events, requeues) but the pod
    // is not sent again for this spec: one Event, never repeated.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let warnings = events(&client, &ns.name, "RejectedByApiServer").await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let event = &warnings[0];
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.series.is_none(), "repeated: {:?}", event.series);
    let note = event.note.clone().unwrap_or_default();
    for part in [
        "rayWorkerType",
        "spec.containers[1].resources.requests.cpu",
        "quantities",
    ] {
        assert!(note.contains(part), "no {part:?} in {note}");
    }
    let announced = events(&client, &ns.name, "CreatedWorkers").await;
    assert!(
        announced.iter().all(|e| e.series.is_none()),
        "the rejected workers were announced again: {announced:?}"
    );
    assert!(names_of(&pods(&client, &ns.name, "c").await, "worker").is_empty());
    assert_eq!(names_of(&pods(&client, &ns.name, "c").await, "head"), head);

    // Fixing the spec (a new generation) brings the cluster up.
    edit_spec(&client, &ns.name, "c", |spec| {
        for t in spec["podTypes"].as_array_mut().unwrap() {
            t["podConfig"]["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .retain(|c| c["name"] != "sidecar");
        }
    })
    .await;
    running(&client, &ns.name, "c", 2).await;
    let s = status(&client, &ns.name, "c").await;
    let valid = s.conditions.iter().find(|c| c.type_ == "Valid").unwrap();
    assert_eq!(valid.status, "True");
}

/// A webhook every pod created in `namespace` must pass, at an address where
/// nothing listens: with `failurePolicy: Fail` the API server answers each
/// such create with 500 InternalError ("failed calling webhook"), a
/// transient failure, and leaves every other namespace alone.
fn unreachable_pod_webhook(namespace: &str) -> String {
    format!(
        r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: unreachable-{namespace}
webhooks:
  - name: unreachable.ray-operator.test
    clientConfig: {{url: "https://127.0.0.1:1/validate"}}
    rules:
      - {{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}
    namespaceSelector:
      matchLabels: {{kubernetes.io/metadata.name: {namespace}}}
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: [v1]
    timeoutSeconds: 2
"#
    )
}

/// Whether the API server creates a pod in `ns` now (a dry run, which a
/// webhook without side effects is called for too).
async fn pods_admitted(client: &Client, ns: &str) -> bool {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probe"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match api.create(&dry_run, &pod).await {
        Ok(_) => true,
        Err(kube::Error::Api(s))
            if s.code == 500 && s.message.contains("failed calling webhook") =>
        {
            false
        }
        Err(e) => panic!("dry-run pod: {e}"),
    }
}

/// When a reconcile of `cluster` failed and how long the operator said it
/// would wait before the next, in order (from the lines "reconcile failed
/// (retrying in 2s)").
fn retries(logs: &str, cluster: &str, ns: &str) -> Vec<(Timestamp, Duration)> {
    let prefix = format!("{cluster},{ns} ");
    logs.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| {
            let (time, rest) = l.split_once(' ')?;
            let (secs, _) = rest
                .split_once("reconcile failed (retrying in ")?
                .1
                .split_once("s)")?;
            let wait = Duration::from_secs(secs.parse().expect("whole seconds"));
            Some((time.parse().expect("a log time"), wait))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_failure_is_retried_with_a_growing_wait_per_cluster() {
    let _kwok = kwok();
    let (client, ns) = setup("transient").await;
    let webhook = Applied::new(&unreachable_pod_webhook(&ns.name));
    eventually("the API server calls the webhook", WAIT, async || {
        (!pods_admitted(&client, &ns.name).await).then_some(())
    })
    .await;
    let operator = Operator::start("op", &ns.name, true, &[]).await;
    create_cluster("a", &ns.name, &[]);

    // A second cluster that starts failing later backs off from 1 s, not
    // from where the first one is.
    eventually("a's wait at 4 s", WAIT, async || {
        (retries(&operator.logs(), "a", &ns.name).len() >= 3).then_some(())
    })
    .await;
    create_cluster("b", &ns.name, &[]);
    let a = eventually("a's wait at 16 s", WAIT, async || {
        let a = retries(&operator.logs(), "a", &ns.name);
        (a.len() >= 5).then_some(a)
    })
    .await;
    let metrics = operator.metrics().await.unwrap();
    let b = retries(&operator.logs(), "b", &ns.name);
    let waits: Vec<Duration> = a.iter().map(|(_, wait)| *wait).collect();
    let doubling: Vec<Duration> = (0..a.len() as u32)
        .map(|n| Duration::from_secs(1 << n))
        .collect();
    let span = a[a.len() - 1].0.duration_since(a[0].0);
    let errors = metrics.samples("ray_operator_reconcile_errors_total");
    eprintln!(
        "[{}] a failed at {:?} s, waits {waits:?}; b's waits {:?}; {errors:?}",
        ns.name,
        a.iter()
            .map(|(at, _)| at.duration_since(a[0].0).as_secs_f64())
            .collect::<Vec<_>>(),
        b.iter().map(|(_, wait)| *wait).collect::<Vec<_>>(),
    );
    assert_eq!(waits, doubling, "a's waits");
    assert_eq!(
        b.first().map(|(_, wait)| wait.as_secs()),
        Some(1),
        "b's first wait"
    );
    // 1 + 2 + 4 + 8 s of waits, of which an event (the head Service's
    // creation) may cut the first short: retried every second, the five
    // attempts would take 4 s.
    assert!(
        span >= jiff::SignedDuration::from_secs(7),
        "a's 5 attempts in {span:?}"
    );
    // Every failure was the webhook's 500, counted as a server error.
    assert_eq!(
        errors.keys().copied().collect::<Vec<_>>(),
        [r#"ray_operator_reconcile_errors_total{stage="create",reason="server_error"}"#],
        "{errors:?}"
    );

    // Retried, not rejected: no Error, no Valid=False, no Warning saying so.
    for name in ["a", "b"] {
        let s = status(&client, &ns.name, name).await;
        assert_ne!(s.phase, Some(Phase::Error), "{name}: {s:?}");
        assert!(
            s.conditions
                .iter()
                .all(|c| c.type_ != "Valid" || c.status == "True"),
            "{name}: {s:?}"
        );
    }
    assert!(events(&client, &ns.name, REJECTED).await.is_empty());

    // Once pods are admitted again, the next retry (within a's last wait)
    // brings both clusters up.
    drop(webhook);
    let healed = Instant::now();
    eventually("the API server admits pods", WAIT, async || {
        pods_admitted(&client, &ns.name).await.then_some(())
    })
    .await;
    running(&client, &ns.name, "a", 2).await;
    running(&client, &ns.name, "b", 2).await;
    let bound = *waits.last().unwrap() + Duration::from_secs(15);
    eprintln!(
        "[{}] Running {:.1?} after the webhook went",
        ns.name,
        healed.elapsed()
    );
    assert!(
        healed.elapsed() < bound,
        "Running {:?} after pods were admitted again; a's last wait was {:?}",
        healed.elapsed(),
        waits.last()
    );
}

/// How long a quiet cluster is watched for status writes, idle and then
/// with its pods changing.
const QUIET: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_cluster_s_status_is_not_rewritten() {
    let _kwok = kwok();
    let (client, ns) = setup("quiet").await;
    let operator = Operator::start("op", &ns.name, true, &[]).await;
    create_cluster("c", &ns.name, &["podTypes.rayWorkerType.minWorkers=1"]);
    let pods = running(&client, &ns.name, "c", 1).await;
    // The operator keeps the status it wrote only until its cache shows it:
    // a status that never reads back as written would stay (and be planned
    // from) for the cluster's life.
    eventually("the written status seen in the cache", WAIT, async || {
        let tracked = operator.metrics().await?.tracked_clusters();
        (tracked.get("statuses") == Some(&0)).then_some(())
    })
    .await;

    let api: Api<RayCluster> = Api::namespaced(client.clone(), &ns.name);
    let version = async || api.get("c").await.unwrap().resource_version();
    let reconciles = async || {
        let metrics = operator.metrics().await.unwrap();
        metrics.value("ray_operator_reconciles_total")
    };
    let (idle_version, idle_reconciles) = (version().await, reconciles().await);
    tokio::time::sleep(QUIET).await;
    assert_eq!(version().await, idle_version, "written while idle");

    // Each pod change is a watch event and a reconcile, which finds the
    // status as it was.
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let busy_reconciles = reconciles().await;
    let touches = QUIET.as_secs();
    for touch in 0..touches {
        for pod in &pods {
            let label = serde_json::json!({"metadata": {"labels": {"touched": touch.to_string()}}});
            pod_api
                .patch(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(label),
                )
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ran = reconciles().await - busy_reconciles;
    eprintln!(
        "[{}] idle {QUIET:?}: {} reconciles; {touches} pod changes: {ran} reconciles; resourceVersion {idle_version:?} -> {:?}",
        ns.name,
        busy_reconciles - idle_reconciles,
        version().await
    );
    assert!(
        ran >= touches as f64 / 2.0,
        "the pod changes were reconciled ({ran})"
    );
    assert_eq!(
        version().await,
        idle_version,
        "written while only the pods changed"
    );
}
