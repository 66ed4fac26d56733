//! Table tests of the pure stages: validate, build, plan, status.

use std::collections::{BTreeMap, BTreeSet};

use super::apply::Applied;
use super::build;
use super::plan::{ObservedPod, PlanInput, PodState, RayCheck, plan};
use super::validate::{SpecError, ValidatedCluster, validate};
use crate::api::{Phase, RayCluster, RayClusterStatus};
use crate::naming::NodeKind;
use crate::operator::board::{RayHealth, Scaling};

const CLUSTER: &str = r#"
apiVersion: cluster.ray.io/v1
kind: RayCluster
metadata: {name: demo, namespace: ray, uid: u-1, generation: 3}
spec:
  maxWorkers: 10
  headPodType: head
  headServicePorts:
  - {name: dashboard, port: 9265}
  - {name: metrics, port: 8080, targetPort: 8081}
  podTypes:
  - name: head
    rayResources: {CPU: 0}
    podConfig:
      apiVersion: v1
      kind: Pod
      metadata: {labels: {team: a}}
      spec:
        restartPolicy: Never
        containers:
        - name: ray-node
          image: rayproject/ray:2.47.1
          env: [{name: RAY_HEAD_IP, value: wrong}]
          resources: {limits: {cpu: 1, memory: 1Gi}}
  - name: cpuWorker
    minWorkers: 2
    maxWorkers: 5
    podConfig:
      spec:
        containers:
        - {name: ray-node, image: rayproject/ray:2.47.1, resources: {limits: {cpu: 2}}}
  - name: gpuWorker
    minWorkers: 0
    maxWorkers: 4
    podConfig:
      spec:
        containers:
        - {name: ray-node, image: rayproject/ray:2.47.1, resources: {limits: {nvidia.com/gpu: 1}}}
"#;

pub(super) fn raw() -> RayCluster {
    serde_yaml_ng::from_str(CLUSTER).expect("fixture parses")
}

fn cluster() -> ValidatedCluster {
    validate(&raw()).expect("fixture is valid")
}

fn edit(f: impl FnOnce(&mut serde_json::Value)) -> RayCluster {
    let mut value = serde_json::to_value(raw()).unwrap();
    f(&mut value);
    serde_json::from_value(value).unwrap()
}

fn pod(
    name: &str,
    kind: NodeKind,
    pod_type: &str,
    hash: &str,
    state: PodState,
    created: i64,
) -> ObservedPod {
    ObservedPod {
        name: name.into(),
        uid: Some(format!("uid-{name}")),
        kind,
        pod_type: pod_type.into(),
        launch_hash: hash.into(),
        state,
        ready: state == PodState::Running,
        created,
        terminating: false,
    }
}

fn head_pod(c: &ValidatedCluster, state: PodState) -> ObservedPod {
    pod(
        "demo-head-aaaaa",
        NodeKind::Head,
        "head",
        &c.head.launch_hash,
        state,
        1,
    )
}

fn workers(c: &ValidatedCluster, type_index: usize, n: usize) -> Vec<ObservedPod> {
    let t = &c.workers[type_index];
    (0..n)
        .map(|i| {
            pod(
                &format!("demo-{}-{i}", t.slug),
                NodeKind::Worker,
                &t.name,
                &t.launch_hash,
                PodState::Running,
                10 + i as i64,
            )
        })
        .collect()
}

fn running_status(c: &ValidatedCluster) -> RayClusterStatus {
    RayClusterStatus {
        phase: Some(Phase::Running),
        head_launch_config: Some(c.head.launch_hash.clone()),
        ..Default::default()
    }
}

fn run_plan<'c>(
    c: &'c ValidatedCluster,
    pods: &[ObservedPod],
    previous: &RayClusterStatus,
    scaling: Option<&Scaling>,
    unreachable: Option<&str>,
) -> super::plan::PodPlan<'c> {
    plan_with_ray(c, pods, previous, scaling, unreachable, RayCheck::Off)
}

fn plan_with_ray<'c>(
    c: &'c ValidatedCluster,
    pods: &[ObservedPod],
    previous: &RayClusterStatus,
    scaling: Option<&Scaling>,
    unreachable: Option<&str>,
    ray: RayCheck,
) -> super::plan::PodPlan<'c> {
    let mut n = 0;
    let input = PlanInput {
        held: None,
        cluster: c,
        pods,
        previous,
        scaling,
        unreachable_head: unreachable,
        ray,
    };
    plan(&input, &mut || {
        n += 1;
        format!("n{n}")
    })
}

fn names(pods: &[ObservedPod]) -> BTreeSet<&str> {
    pods.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn validate_rejects_bad_specs_naming_the_field() {
    let cases: Vec<(RayCluster, &str)> = vec![
        (
            edit(|v| v["spec"]["headPodType"] = "nope".into()),
            "spec.headPodType",
        ),
        (
            edit(|v| v["spec"]["podTypes"][1]["minWorkers"] = 9.into()),
            "spec.podTypes[1].minWorkers",
        ),
        (
            edit(|v| v["spec"]["podTypes"][2]["maxWorkers"] = (-1).into()),
            "spec.podTypes[2].maxWorkers",
        ),
        (
            edit(|v| v["spec"]["podTypes"][2]["name"] = "cpuWorker".into()),
            "spec.podTypes[2].name",
        ),
        (
            edit(|v| v["spec"]["maxWorkers"] = 1.into()),
            "spec.maxWorkers",
        ),
        (
            edit(|v| {
                for p in 1..=2 {
                    v["spec"]["podTypes"][p]["minWorkers"] = i32::MAX.into();
                    v["spec"]["podTypes"][p]["maxWorkers"] = i32::MAX.into();
                }
                v["spec"]["maxWorkers"] = i32::MAX.into();
            }),
            "spec.maxWorkers: 2147483647 is less than the sum of podTypes[].minWorkers (4294967294)",
        ),
        (
            edit(|v| v["spec"]["podTypes"][1]["podConfig"]["spec"]["containers"] = "x".into()),
            "spec.podTypes[1].podConfig.spec.containers",
        ),
        (
            edit(|v| {
                v["spec"]["podTypes"][1]["podConfig"]["spec"]["containers"] = serde_json::json!([])
            }),
            "spec.podTypes[1].podConfig.spec.containers",
        ),
        (
            edit(|v| {
                v["spec"]["podTypes"][0]["podConfig"]["spec"]["containers"][0]["resources"]["limits"]
                    ["cpu"] = serde_json::json!([1])
            }),
            "spec.podTypes[0].podConfig.spec.containers[0].resources.limits.cpu",
        ),
        (
            edit(|v| v["metadata"]["name"] = "x".repeat(60).into()),
            "metadata.name",
        ),
    ];
    for (cluster, field) in cases {
        let error = validate(&cluster).expect_err(field).to_string();
        assert!(error.starts_with(field), "{error:?} should name {field}");
        assert!(
            !error.contains(" at line "),
            "{error:?}: a position in the operator's copy of the JSON means nothing"
        );
    }
    assert!(matches!(
        validate(&edit(|v| v["spec"]["headPodType"] = "x".into())),
        Err(SpecError::UnknownHeadPodType(_))
    ));
}

#[test]
fn launch_hash_follows_the_pod_config_not_the_counts_or_ray_resources() {
    let base = cluster();
    let counts = validate(&edit(|v| {
        v["spec"]["podTypes"][1]["minWorkers"] = 3.into();
        v["spec"]["podTypes"][1]["rayResources"] = serde_json::json!({"CPU": 7});
        v["spec"]["upscalingSpeed"] = 2.0.into();
        v["spec"]["idleTimeoutMinutes"] = 1.into();
    }))
    .unwrap();
    assert_eq!(base.workers[0].launch_hash, counts.workers[0].launch_hash);
    assert_eq!(base.head.launch_hash, counts.head.launch_hash);
    for path in ["resources", "nodeSelector"] {
        let changed = validate(&edit(|v| {
            let spec = &mut v["spec"]["podTypes"][0]["podConfig"]["spec"];
            if path == "resources" {
                spec["containers"][0]["resources"]["limits"]["cpu"] = 2.into();
            } else {
                spec["nodeSelector"] = serde_json::json!({"disk": "ssd"});
            }
        }))
        .unwrap();
        assert_ne!(base.head.launch_hash, changed.head.launch_hash, "{path}");
        assert_eq!(
            base.workers[0].launch_hash, changed.workers[0].launch_hash,
            "{path} of the head leaves workers' hash alone"
        );
    }
}

#[test]
fn build_head_service_carries_the_hash_of_its_spec() {
    let hash = |c: &ValidatedCluster| {
        build::head_service(c).metadata.annotations.unwrap()[crate::naming::SPEC_HASH].clone()
    };
    assert_eq!(hash(&cluster()), hash(&cluster()), "stable");
    let more_ports = validate(&edit(|v| {
        v["spec"]["headServicePorts"][0]["port"] = 9266.into()
    }))
    .unwrap();
    assert_ne!(
        hash(&cluster()),
        hash(&more_ports),
        "a port change is applied again"
    );
}

#[test]
fn build_head_service_merges_ports_by_name() {
    let service = build::head_service(&cluster());
    assert_eq!(service.metadata.name.as_deref(), Some("demo-ray-head"));
    let ports: Vec<(String, i32)> = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap(), p.port))
        .collect();
    let want: Vec<(String, i32)> = [
        ("gcs", 6379),
        ("client", 10001),
        ("dashboard", 9265),
        ("ray-serve", 8000),
        ("metrics", 8080),
    ]
    .iter()
    .map(|(n, p)| (n.to_string(), *p))
    .collect();
    assert_eq!(ports, want);
}

#[test]
fn build_pod_runs_ray_as_the_container_command() {
    let c = cluster();
    let pod = build::pod(&c, &c.head, NodeKind::Head, "demo-head-x1");
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(labels["ray-cluster-name"], "demo");
    assert_eq!(labels["ray-node-type"], "head");
    assert_eq!(labels["ray-user-node-type"], "head");
    assert_eq!(labels["ray-launch-config"], c.head.launch_hash);
    assert_eq!(labels["team"], "a", "pod config labels are kept");
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("RayCluster", "u-1", Some(true))
    );
    let container = &pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container.command.as_deref(),
        Some(&["/bin/bash".to_string(), "-lc".to_string()][..])
    );
    assert!(
        container.args.as_ref().unwrap()[0].contains("--head")
            && container.args.as_ref().unwrap()[0].contains("--no-monitor")
    );
    let env: BTreeMap<String, String> = container
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap()))
        .collect();
    assert_eq!(env["RAY_CLOUD_INSTANCE_ID"], "demo-head-x1");
    assert_eq!(env["RAY_NODE_TYPE_NAME"], "head");
    assert_eq!(
        env["RAY_HEAD_IP"], "demo-ray-head.ray.svc",
        "the operator's value replaces the config's"
    );
    // The head's rayResources {CPU: 0} wins over its 1 CPU limit; its memory
    // limit is split between Ray's memory and its object store.
    assert_eq!(
        env["RAY_OVERRIDE_RESOURCES"],
        r#"{"CPU":0.0,"memory":751619276.0,"object_store_memory":322122547.0}"#
    );
    let script = &container.args.as_ref().unwrap()[0];
    assert!(
        script.contains("gcs_server"),
        "the head lives while its GCS does"
    );
    let worker = build::pod(&c, &c.workers[0], NodeKind::Worker, "demo-cpu-worker-x2");
    assert_eq!(
        worker.spec.as_ref().unwrap().restart_policy.as_deref(),
        Some("Never"),
        "unset, the restart policy is Never: the operator replaces a failed node's pod"
    );
    assert!(
        worker.spec.unwrap().containers[0].args.as_ref().unwrap()[0]
            .contains("--address=$RAY_HEAD_IP:6379")
    );
}

#[test]
fn first_start_creates_the_head_then_the_minimum_workers() {
    let c = cluster();
    let p = run_plan(&c, &[], &RayClusterStatus::default(), None, None);
    assert_eq!(p.create.len(), 1);
    assert_eq!(
        (p.create[0].kind, p.create[0].name.as_str()),
        (NodeKind::Head, "demo-head-n1")
    );
    assert_eq!(p.phase, Some(Phase::Updating));
    assert_eq!(p.autoscaler_retries, 0);

    let pending = [head_pod(&c, PodState::Pending)];
    let p = run_plan(&c, &pending, &RayClusterStatus::default(), None, None);
    assert!(p.create.is_empty(), "workers wait for the head to run");

    let running = [head_pod(&c, PodState::Running)];
    let p = run_plan(&c, &running, &running_status(&c), None, None);
    let created: Vec<(&str, &str)> = p
        .create
        .iter()
        .map(|n| (n.pod_type.name.as_str(), n.name.as_str()))
        .collect();
    assert_eq!(
        created,
        [
            ("cpuWorker", "demo-cpu-worker-n1"),
            ("cpuWorker", "demo-cpu-worker-n2")
        ]
    );
    assert_eq!(p.phase, Some(Phase::Updating));
}

#[test]
fn a_held_pod_type_gets_no_workers_nor_a_note_about_them() {
    let c = cluster();
    let running = [head_pod(&c, PodState::Running)];
    let input = PlanInput {
        held: Some("cpuWorker"),
        cluster: &c,
        pods: &running,
        previous: &running_status(&c),
        scaling: None,
        unreachable_head: None,
        ray: RayCheck::Off,
    };
    let p = plan(&input, &mut || "n".to_string());
    assert!(p.create.is_empty(), "{:?}", p.create);
    assert!(p.notes.iter().all(|n| n.reason != "CreatedWorkers"));
    assert_eq!(
        (p.pod_types[0].desired_workers, p.pod_types[0].ready_workers),
        (2, 0),
        "still wanted"
    );
}

#[test]
fn a_settled_cluster_is_running_and_left_alone() {
    let c = cluster();
    let mut pods = vec![head_pod(&c, PodState::Running)];
    pods.extend(workers(&c, 0, 2));
    let p = run_plan(&c, &pods, &running_status(&c), None, None);
    assert!(p.create.is_empty() && p.delete.is_empty(), "{p:?}");
    assert_eq!(p.phase, Some(Phase::Running));
    assert_eq!(
        (p.pod_types[0].desired_workers, p.pod_types[0].ready_workers),
        (2, 2)
    );
}

#[test]
fn running_needs_the_gcs_to_answer_and_the_minimum_workers_in_ray() {
    let c = cluster();
    let mut pods = vec![head_pod(&c, PodState::Running)];
    pods.extend(workers(&c, 0, 2));
    let joined = |names: &[&str]| RayHealth {
        joined: Some(names.iter().map(|n| n.to_string()).collect()),
    };
    let both = joined(&["demo-head-aaaaa", "demo-cpu-worker-0", "demo-cpu-worker-1"]);
    let one = joined(&["demo-head-aaaaa", "demo-cpu-worker-0"]);
    let old_ray = RayHealth { joined: None };
    let workers_only = joined(&["demo-cpu-worker-0", "demo-cpu-worker-1"]);
    let status = running_status(&c);
    for (ray, phase, reason) in [
        (RayCheck::Off, Phase::Running, None),
        (RayCheck::Down, Phase::Updating, Some("GcsUnreachable")),
        (
            RayCheck::Up(&one),
            Phase::Updating,
            Some("WorkersNotJoined"),
        ),
        (
            RayCheck::Up(&workers_only),
            Phase::Updating,
            Some("HeadNotJoined"),
        ),
        (RayCheck::Up(&both), Phase::Running, Some("RayRunning")),
        (RayCheck::Up(&old_ray), Phase::Running, Some("GcsAnswers")),
    ] {
        let p = plan_with_ray(&c, &pods, &status, None, None, ray);
        assert_eq!(p.phase, Some(phase), "{ray:?}");
        assert_eq!(p.ray.as_ref().map(|r| r.reason), reason, "{ray:?}");
        assert!(p.create.is_empty() && p.delete.is_empty(), "{ray:?}: {p:?}");
    }
    let p = plan_with_ray(&c, &pods, &status, None, None, RayCheck::Up(&one));
    assert_eq!(p.ray.unwrap().message, "cpuWorker: 1/2 in Ray");
    // A head that is not ready yet is waited for, not called unreachable.
    let starting = [head_pod(&c, PodState::Pending)];
    let p = plan_with_ray(
        &c,
        &starting,
        &RayClusterStatus::default(),
        None,
        None,
        RayCheck::Down,
    );
    assert_eq!(p.ray.unwrap().reason, "WaitingForHead");
}

#[test]
fn head_config_change_restarts_the_whole_cluster() {
    let c = cluster();
    let mut pods = vec![pod(
        "demo-head-old",
        NodeKind::Head,
        "head",
        "oldhash",
        PodState::Running,
        1,
    )];
    pods.extend(workers(&c, 0, 2));
    let p = run_plan(&c, &pods, &running_status(&c), None, None);
    assert_eq!(
        names(&p.delete),
        BTreeSet::from(["demo-head-old", "demo-cpu-worker-0", "demo-cpu-worker-1"])
    );
    assert_eq!(p.create.len(), 1);
    assert_eq!(p.create[0].kind, NodeKind::Head);
    assert_eq!((p.phase, p.autoscaler_retries), (Some(Phase::Updating), 0));
    assert!(p.notes.iter().any(|n| n.reason == "Restarting"));
}

#[test]
fn a_lost_or_failed_head_is_an_autoscaling_exception() {
    let c = cluster();
    let previous = RayClusterStatus {
        autoscaler_retries: 2,
        ..running_status(&c)
    };
    for head in [None, Some(head_pod(&c, PodState::Finished))] {
        let mut pods: Vec<ObservedPod> = head.clone().into_iter().collect();
        pods.extend(workers(&c, 0, 2));
        let p = run_plan(&c, &pods, &previous, None, None);
        assert_eq!(
            (p.phase, p.autoscaler_retries),
            (Some(Phase::AutoscalingExceptionRecovery), 3),
            "{head:?}"
        );
        assert_eq!(
            p.create.iter().filter(|n| n.kind == NodeKind::Head).count(),
            1
        );
        assert_eq!(
            p.delete
                .iter()
                .filter(|d| d.kind == NodeKind::Worker)
                .count(),
            2,
            "workers rejoin the new head"
        );
        assert_eq!(
            p.delete.iter().any(|d| d.kind == NodeKind::Head),
            head.is_some()
        );
    }
    // The new head is starting: still recovering, no second retry.
    let recovering = RayClusterStatus {
        phase: Some(Phase::AutoscalingExceptionRecovery),
        autoscaler_retries: 3,
        ..running_status(&c)
    };
    let p = run_plan(
        &c,
        &[head_pod(&c, PodState::Pending)],
        &recovering,
        None,
        None,
    );
    assert_eq!(
        (p.phase, p.autoscaler_retries),
        (Some(Phase::AutoscalingExceptionRecovery), 3)
    );
    // An unreachable head's Ray counts as a failure too, but only for that head.
    let head = [head_pod(&c, PodState::Running)];
    let p = run_plan(
        &c,
        &head,
        &running_status(&c),
        None,
        Some("demo-head-aaaaa"),
    );
    assert_eq!(
        (p.phase, p.autoscaler_retries),
        (Some(Phase::AutoscalingExceptionRecovery), 1)
    );
    let p = run_plan(
        &c,
        &head,
        &running_status(&c),
        None,
        Some("demo-head-older"),
    );
    assert_eq!(
        (p.autoscaler_retries, p.delete.len()),
        (0, 0),
        "the current head stays"
    );
}

#[test]
fn worker_config_change_replaces_only_that_types_workers() {
    let c = cluster();
    let mut pods = vec![head_pod(&c, PodState::Running)];
    pods.extend(workers(&c, 0, 2));
    pods.push(pod(
        "demo-gpu-worker-old",
        NodeKind::Worker,
        "gpuWorker",
        "stale",
        PodState::Running,
        5,
    ));
    pods[1].launch_hash = "stale".into();
    let p = run_plan(
        &c,
        &pods,
        &running_status(&c),
        Some(&Scaling {
            desired: BTreeMap::from([("gpuWorker".into(), 1)]),
            ..Default::default()
        }),
        None,
    );
    assert_eq!(
        names(&p.delete),
        BTreeSet::from(["demo-cpu-worker-0", "demo-gpu-worker-old"])
    );
    let created: Vec<&str> = p.create.iter().map(|n| n.pod_type.name.as_str()).collect();
    assert_eq!(created, ["cpuWorker", "gpuWorker"]);
    assert_eq!(p.phase, Some(Phase::Updating));
}

#[test]
fn scale_down_removes_drained_then_unready_then_newest() {
    let c = cluster();
    let mut pods = vec![head_pod(&c, PodState::Running)];
    pods.extend(workers(&c, 0, 5));
    pods[2].ready = false; // demo-cpu-worker-1
    let scaling = Scaling {
        desired: BTreeMap::from([("cpuWorker".into(), 2)]),
        remove: BTreeSet::from(["demo-cpu-worker-0".into()]),
    };
    let p = run_plan(&c, &pods, &running_status(&c), Some(&scaling), None);
    assert_eq!(
        names(&p.delete),
        BTreeSet::from([
            "demo-cpu-worker-0",
            "demo-cpu-worker-1",
            "demo-cpu-worker-4"
        ])
    );
    assert!(p.create.is_empty());
}

#[test]
fn desired_counts_respect_min_max_and_the_cluster_cap() {
    let c = cluster();
    let wish = |cpu, gpu| Scaling {
        desired: BTreeMap::from([("cpuWorker".into(), cpu), ("gpuWorker".into(), gpu)]),
        ..Default::default()
    };
    assert_eq!(super::plan::desired_workers(&c, None), [2, 0]);
    assert_eq!(
        super::plan::desired_workers(&c, Some(&wish(0, 1))),
        [2, 1],
        "never below minWorkers"
    );
    assert_eq!(
        super::plan::desired_workers(&c, Some(&wish(9, 1))),
        [5, 1],
        "never above maxWorkers"
    );
    assert_eq!(super::plan::desired_workers(&c, Some(&wish(5, 4))), [5, 4]);
    let capped = validate(&edit(|v| v["spec"]["maxWorkers"] = 6.into())).unwrap();
    assert_eq!(
        super::plan::desired_workers(&capped, Some(&wish(5, 4))),
        [5, 1],
        "cluster maxWorkers trims the last types first"
    );
}

#[test]
fn workers_of_removed_pod_types_are_deleted() {
    let c = cluster();
    let mut pods = vec![head_pod(&c, PodState::Running)];
    pods.extend(workers(&c, 0, 2));
    pods.push(pod(
        "demo-old-type-1",
        NodeKind::Worker,
        "oldType",
        "h",
        PodState::Running,
        3,
    ));
    let p = run_plan(&c, &pods, &running_status(&c), None, None);
    assert_eq!(names(&p.delete), BTreeSet::from(["demo-old-type-1"]));
}

#[test]
fn status_reports_counts_and_conditions() {
    let c = cluster();
    let mut pods = vec![head_pod(&c, PodState::Running)];
    pods.extend(workers(&c, 0, 1));
    let p = run_plan(&c, &pods, &running_status(&c), None, None);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    );
    let s = super::status::from_plan(
        &running_status(&c),
        &Applied::in_full(p.clone()),
        Some(3),
        now.clone(),
    );
    assert_eq!(
        (s.desired_workers, s.ready_workers, s.observed_generation),
        (2, 1, Some(3))
    );
    let cond: BTreeMap<&str, &str> = s
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
        .collect();
    assert_eq!(
        cond,
        BTreeMap::from([
            ("HeadReady", "True"),
            ("Valid", "True"),
            ("WorkersReady", "False")
        ])
    );
    let again = super::status::from_plan(
        &s,
        &Applied::in_full(p.clone()),
        Some(3),
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    assert_eq!(
        again, s,
        "an unchanged status is equal, transition times included, so it is not rewritten"
    );
    let err = super::status::from_spec_error(
        &s,
        &SpecError::UnknownHeadPodType("x".into()),
        Some(4),
        now,
    );
    assert_eq!(err.phase, Some(Phase::Error));
    assert!(err.conditions.iter().any(|c| c.type_ == "Valid"
        && c.status == "False"
        && c.message.contains("spec.headPodType")));
}

#[test]
fn worker_totals_saturate_instead_of_overflowing() {
    let c = cluster();
    let mut p = run_plan(
        &c,
        &[head_pod(&c, PodState::Running)],
        &running_status(&c),
        None,
        None,
    );
    let mut second = p.pod_types[0].clone();
    second.name = "second".into();
    p.pod_types[0].desired_workers = i32::MAX;
    second.desired_workers = i32::MAX;
    p.pod_types.push(second);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    );
    let s = super::status::from_plan(
        &running_status(&c),
        &Applied::in_full(p.clone()),
        Some(1),
        now,
    );
    assert_eq!(s.desired_workers, i32::MAX);
}

#[test]
fn withdrawn_pods_leave_no_trace_in_the_plan() {
    let c = cluster();
    let names = |p: &super::plan::PodPlan| -> Vec<String> {
        p.create.iter().map(|n| n.name.clone()).collect()
    };
    // (previous status, pods, what is withdrawn, launch config and retries after)
    let first = RayClusterStatus::default();
    let mut lost = running_status(&c);
    lost.autoscaler_retries = 2;
    let running = [head_pod(&c, PodState::Running)];
    let cases: [(&str, &RayClusterStatus, &[ObservedPod], bool); 3] = [
        ("a refused first head", &first, &[], true),
        ("a refused head after the head was lost", &lost, &[], true),
        (
            "one refused worker of two",
            &running_status(&c),
            &running,
            false,
        ),
    ];
    for (case, previous, pods, head) in cases {
        let mut p = run_plan(&c, pods, previous, None, None);
        let planned = names(&p);
        let refused = planned[0].clone();
        p.withdraw(std::slice::from_ref(&refused), previous);
        assert_eq!(names(&p), planned[1..], "{case}: the others stay");
        assert!(
            p.notes.iter().all(|n| !n.message.contains(&refused)),
            "{case}: no note names {refused}: {:?}",
            p.notes
        );
        if head {
            assert_eq!(
                (p.head_launch_config.as_ref(), p.autoscaler_retries),
                (
                    previous.head_launch_config.as_ref(),
                    previous.autoscaler_retries
                ),
                "{case}: a head never created changes neither the launch config nor the restarts"
            );
        } else {
            assert_eq!(p.head_launch_config, Some(c.head.launch_hash.clone()));
        }
    }
}

#[test]
fn side_conditions_warn_once_per_change() {
    use super::status::{SideInput, set_side_conditions};
    use crate::operator::board::{AutoscalerView, Checks};
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    );
    let mut with_address = cluster();
    with_address.gcs_address = Some("10.0.0.1:6379".into());
    let unsupported = AutoscalerView {
        unsupported: Some("no autoscaler API".into()),
        ..AutoscalerView::default()
    };
    let answering = AutoscalerView {
        ray: Some(RayHealth { joined: None }),
        ..AutoscalerView::default()
    };
    let on = Checks {
        autoscaling: true,
        ray_health: true,
        allow_gcs_address: false,
    };
    let allowed = Checks {
        allow_gcs_address: true,
        ..on
    };
    let plain = cluster();
    /// (case, cluster, view, checks, warnings on a first status)
    type Case<'a> = (
        &'a str,
        &'a ValidatedCluster,
        Option<&'a AutoscalerView>,
        Checks,
        &'a [&'a str],
    );
    let cases: [Case; 4] = [
        (
            "a Ray without the autoscaler API",
            &plain,
            Some(&unsupported),
            on,
            &["UnsupportedRay"],
        ),
        (
            "a healthy autoscaler: a condition, no warning",
            &plain,
            Some(&answering),
            on,
            &[],
        ),
        (
            "an ignored gcsAddress",
            &with_address,
            None,
            on,
            &["GcsAddressIgnored"],
        ),
        ("an honoured gcsAddress", &with_address, None, allowed, &[]),
    ];
    for (case, c, view, checks, want) in cases {
        let input = SideInput {
            cluster: c,
            view,
            checks: &checks,
            generation: Some(3),
            now: &now,
        };
        let mut first = RayClusterStatus::default();
        let warned = set_side_conditions(&mut first, &RayClusterStatus::default(), &input);
        let reasons: Vec<&str> = warned.iter().map(|(r, _)| *r).collect();
        assert_eq!(reasons, want, "{case}");
        for reason in want {
            assert!(
                first.conditions.iter().any(|c| c.reason == *reason),
                "{case}: the condition is set"
            );
        }
        let mut again = first.clone();
        let repeated = set_side_conditions(&mut again, &first, &input);
        assert!(
            repeated.is_empty(),
            "{case}: a standing warning is not repeated"
        );
        assert_eq!(again, first, "{case}: the same status again");
    }
    let mut status = RayClusterStatus::default();
    let input = SideInput {
        cluster: &plain,
        view: Some(&answering),
        checks: &on,
        generation: Some(3),
        now: &now,
    };
    set_side_conditions(&mut status, &RayClusterStatus::default(), &input);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "AutoscalerHealthy" && c.status == "True")
    );
}
