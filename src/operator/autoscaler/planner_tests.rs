//! Table tests for the planner: one case per rule.

use super::*;
use crate::operator::autoscaler::gcs::Gang;
use crate::operator::resources::bundle;

fn cpu(n: f64) -> ResourceBundle {
    bundle([("CPU", n)])
}

fn wt(name: &str, min: u32, max: u32, res: ResourceBundle) -> WorkerType {
    WorkerType {
        name: name.into(),
        min_workers: min,
        max_workers: max,
        resources: res,
    }
}

/// `cpu4` (4 CPU, max 10), `gpu` (4 CPU + 1 GPU, max 4); idle timeout 60 s.
fn config() -> AutoscalerConfig {
    AutoscalerConfig {
        worker_types: vec![
            wt("cpu4", 0, 10, cpu(4.0)),
            wt("gpu", 0, 4, bundle([("CPU", 4.0), ("GPU", 1.0)])),
        ],
        max_workers: None,
        upscaling_speed: 1.0,
        idle_timeout: Duration::from_secs(60),
    }
}

fn pod(name: &str, ty: &str, ready: bool) -> WorkerPod {
    WorkerPod {
        name: name.into(),
        pod_type: ty.into(),
        ready,
    }
}

/// A Ray node for pod `name` with `total` resources and `free` of them available.
fn node(
    name: &str,
    ty: &str,
    total: ResourceBundle,
    free: ResourceBundle,
    idle_ms: i64,
) -> RayNode {
    RayNode {
        node_id: format!("id-{name}"),
        instance_id: name.into(),
        node_type: ty.into(),
        ip: String::new(),
        total,
        available: free,
        status: if idle_ms > 0 {
            NodeStatus::Idle
        } else {
            NodeStatus::Running
        },
        idle_ms,
    }
}

fn head() -> RayNode {
    node("head", "head", cpu(0.0), cpu(0.0), 0)
}

fn state(nodes: Vec<RayNode>, pending: Vec<(ResourceBundle, u64)>) -> ClusterState {
    ClusterState {
        nodes,
        pending,
        ..Default::default()
    }
}

fn launches(p: &Plan) -> Vec<(&str, u32)> {
    p.launch.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

fn drains(p: &Plan) -> Vec<(&str, DrainCause)> {
    p.drain.iter().map(|d| (d.pod.as_str(), d.cause)).collect()
}

#[test]
fn from_spec_skips_head_and_reads_limits() {
    let spec: RayClusterSpec = serde_json::from_value(serde_json::json!({
        "headPodType": "head", "maxWorkers": 7, "upscalingSpeed": 2.0, "idleTimeoutMinutes": 3,
        "podTypes": [
            {"name": "head", "podConfig": {"spec": {"containers": [{"name": "ray"}]}}},
            {"name": "w", "minWorkers": 1, "maxWorkers": 4, "rayResources": {"custom": 1},
             "podConfig": {"spec": {"containers": [{"name": "ray", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}]}}}
        ]
    }))
    .unwrap();
    let c = AutoscalerConfig::from_spec(&spec).unwrap();
    assert_eq!(c.worker_types.len(), 1);
    assert_eq!(c.worker_types[0].resources["CPU"], 2.0);
    assert_eq!(c.worker_types[0].resources["custom"], 1.0);
    assert_eq!(
        (c.max_workers, c.upscaling_speed, c.idle_timeout),
        (Some(7), 2.0, Duration::from_secs(180))
    );
}

#[test]
fn scale_up_cases() {
    struct Case {
        name: &'static str,
        config: AutoscalerConfig,
        pods: Vec<WorkerPod>,
        state: ClusterState,
        launch: Vec<(&'static str, u32)>,
        infeasible: Vec<ResourceBundle>,
    }
    let mut min2 = config();
    min2.worker_types[0].min_workers = 2;
    let mut max2 = config();
    max2.worker_types[0].max_workers = 2;
    let mut cluster_max3 = config();
    cluster_max3.max_workers = Some(3);
    let mut fast = config();
    fast.upscaling_speed = 2.0;
    let busy = |n: &str| node(n, "cpu4", cpu(4.0), cpu(0.0), 0);
    let cases = vec![
        Case {
            name: "nothing to do",
            config: config(),
            pods: vec![],
            state: state(vec![head()], vec![]),
            launch: vec![],
            infeasible: vec![],
        },
        Case {
            name: "minWorkers are launched without demand",
            config: min2.clone(),
            pods: vec![pod("a", "cpu4", true)],
            state: state(vec![head(), busy("a")], vec![]),
            launch: vec![("cpu4", 1)],
            infeasible: vec![],
        },
        Case {
            name: "demand is bin-packed: 3 x 4 CPU and 2 x 2 CPU need 4 nodes",
            config: config(),
            pods: vec![],
            state: state(vec![head()], vec![(cpu(4.0), 3), (cpu(2.0), 2)]),
            launch: vec![("cpu4", 4)],
            infeasible: vec![],
        },
        Case {
            name: "free capacity on an existing node is used first",
            config: config(),
            pods: vec![pod("a", "cpu4", true)],
            state: state(
                vec![head(), node("a", "cpu4", cpu(4.0), cpu(2.0), 0)],
                vec![(cpu(2.0), 2)],
            ),
            launch: vec![("cpu4", 1)],
            infeasible: vec![],
        },
        Case {
            name: "a pending pod counts as an empty node of its type",
            config: config(),
            pods: vec![pod("p", "cpu4", false)],
            state: state(vec![head()], vec![(cpu(4.0), 2)]),
            launch: vec![("cpu4", 1)],
            infeasible: vec![],
        },
        Case {
            name: "GPU demand launches the GPU type",
            config: config(),
            pods: vec![],
            state: state(vec![head()], vec![(bundle([("GPU", 1.0)]), 1)]),
            launch: vec![("gpu", 1)],
            infeasible: vec![],
        },
        Case {
            name: "CPU demand never launches a GPU type while a CPU type fits",
            config: max2.clone(),
            pods: vec![pod("a", "cpu4", true), pod("b", "cpu4", true)],
            state: state(vec![head(), busy("a"), busy("b")], vec![(cpu(1.0), 1)]),
            launch: vec![],
            infeasible: vec![],
        },
        Case {
            name: "infeasible demand is reported, nothing launched",
            config: config(),
            pods: vec![],
            state: state(
                vec![head()],
                vec![(cpu(8.0), 3), (bundle([("TPU", 1.0)]), 1)],
            ),
            launch: vec![],
            infeasible: vec![cpu(8.0), bundle([("TPU", 1.0)])],
        },
        Case {
            name: "per-type maxWorkers bounds launches",
            config: max2,
            pods: vec![pod("a", "cpu4", true)],
            state: state(vec![head(), busy("a")], vec![(cpu(4.0), 5)]),
            launch: vec![("cpu4", 1)],
            infeasible: vec![],
        },
        Case {
            name: "cluster maxWorkers bounds launches over all types",
            config: cluster_max3,
            pods: vec![pod("a", "cpu4", true)],
            state: state(
                vec![head(), busy("a")],
                vec![(cpu(4.0), 3), (bundle([("GPU", 1.0)]), 3)],
            ),
            launch: vec![("gpu", 2)],
            infeasible: vec![],
        },
        Case {
            name: "launches per round are capped at 5 with few running",
            config: config(),
            pods: vec![],
            state: state(vec![head()], vec![(cpu(4.0), 9)]),
            launch: vec![("cpu4", 5)],
            infeasible: vec![],
        },
        Case {
            name: "the cap grows with upscalingSpeed x ready pods",
            config: fast,
            pods: (0..3)
                .map(|i| pod(&format!("r{i}"), "cpu4", true))
                .collect(),
            state: state(
                vec![head(), busy("r0"), busy("r1"), busy("r2")],
                vec![(cpu(4.0), 9)],
            ),
            launch: vec![("cpu4", 6)],
            infeasible: vec![],
        },
        Case {
            name: "pod-less node types and placement-group resources are not launched for",
            config: config(),
            pods: vec![],
            state: state(
                vec![head()],
                vec![
                    (bundle([("CPU_group_abc", 1.0)]), 2),
                    (bundle([("node:1.2.3.4", 0.01)]), 1),
                ],
            ),
            launch: vec![],
            infeasible: vec![],
        },
    ];
    for c in cases {
        let p = plan(&c.config, &c.pods, &c.state);
        assert_eq!(launches(&p), c.launch, "{}", c.name);
        assert_eq!(p.infeasible, c.infeasible, "{}", c.name);
    }
}

#[test]
fn best_utilised_type_is_chosen() {
    let mut c = config();
    c.worker_types.insert(0, wt("cpu16", 0, 10, cpu(16.0)));
    // 2 x 2 CPU: a 4-CPU node is fully used, a 16-CPU one is not.
    let p = plan(&c, &[], &state(vec![], vec![(cpu(2.0), 2)]));
    assert_eq!(launches(&p), vec![("cpu4", 1)]);
    // 4 x 4 CPU: one 16-CPU node is fully used too; ties go to the first type in the spec.
    let p = plan(&c, &[], &state(vec![], vec![(cpu(4.0), 4)]));
    assert_eq!(launches(&p), vec![("cpu16", 1)]);
}

#[test]
fn gangs_place_all_or_nothing() {
    let gang = |n: usize, cpus: f64, spread: bool| Gang {
        bundles: vec![cpu(cpus); n],
        strict_spread: spread,
        details: String::new(),
    };
    let mut s = state(vec![head()], vec![]);
    // PACK: 2 x 2 CPU fit on one 4-CPU node.
    s.gangs = vec![gang(2, 2.0, false)];
    assert_eq!(launches(&plan(&config(), &[], &s)), vec![("cpu4", 1)]);
    // STRICT_SPREAD: each bundle on its own node.
    s.gangs = vec![gang(3, 1.0, true)];
    assert_eq!(launches(&plan(&config(), &[], &s)), vec![("cpu4", 3)]);
    // A gang that cannot be placed whole launches nothing; infeasible if any bundle never fits.
    let mut c = config();
    c.worker_types[0].max_workers = 2;
    c.worker_types.truncate(1);
    s.gangs = vec![gang(3, 1.0, true)];
    let p = plan(&c, &[], &s);
    assert_eq!((launches(&p), p.infeasible.len()), (vec![], 0));
    s.gangs = vec![Gang {
        bundles: vec![cpu(1.0), cpu(64.0)],
        strict_spread: false,
        details: String::new(),
    }];
    let p = plan(&c, &[], &s);
    assert_eq!(
        (launches(&p), p.infeasible.clone()),
        (vec![], vec![cpu(1.0), cpu(64.0)])
    );
    assert!(plan(&c, &[], &s).pending_summary[0].starts_with("placement group"));
}

#[test]
fn request_resources_uses_total_capacity_and_bypasses_cap() {
    let busy = node("a", "cpu4", cpu(4.0), cpu(0.0), 0);
    // The busy node's total covers the first 4 CPUs; 36 more need 9 nodes, beyond the cap of 5.
    let mut s = state(vec![head(), busy], vec![]);
    s.constraints = vec![cpu(1.0); 40];
    let p = plan(&config(), &[pod("a", "cpu4", true)], &s);
    assert_eq!(launches(&p), vec![("cpu4", 9)]);
    // New constraint nodes also take queued demand.
    s.pending = vec![(cpu(4.0), 2)];
    let p = plan(&config(), &[pod("a", "cpu4", true)], &s);
    assert_eq!(launches(&p), vec![("cpu4", 9)]);
}

#[test]
fn scale_down_cases() {
    let idle = |n: &str, ms: i64| node(n, "cpu4", cpu(4.0), cpu(4.0), ms);
    let busy = |n: &str| node(n, "cpu4", cpu(4.0), cpu(0.0), 0);
    let mut min1 = config();
    min1.worker_types[0].min_workers = 1;
    let mut max1 = config();
    max1.worker_types[0].max_workers = 1;
    let mut cluster_max1 = config();
    cluster_max1.max_workers = Some(1);
    let pods2 = vec![pod("a", "cpu4", true), pod("b", "cpu4", true)];
    struct Case {
        name: &'static str,
        config: AutoscalerConfig,
        pods: Vec<WorkerPod>,
        state: ClusterState,
        drain: Vec<(&'static str, DrainCause)>,
    }
    let with_constraint = {
        let mut s = state(vec![head(), idle("a", 120_000)], vec![]);
        s.constraints = vec![cpu(2.0)];
        s
    };
    let cases = vec![
        Case {
            name: "idle past the timeout is drained",
            config: config(),
            pods: pods2.clone(),
            state: state(vec![head(), idle("a", 120_000), busy("b")], vec![]),
            drain: vec![("a", DrainCause::Idle)],
        },
        Case {
            name: "idle within the timeout stays",
            config: config(),
            pods: pods2.clone(),
            state: state(vec![head(), idle("a", 30_000), busy("b")], vec![]),
            drain: vec![],
        },
        Case {
            name: "minWorkers are kept: the longest idle goes",
            config: min1,
            pods: pods2.clone(),
            state: state(vec![head(), idle("a", 120_000), idle("b", 500_000)], vec![]),
            drain: vec![("b", DrainCause::Idle)],
        },
        Case {
            name: "an idle node that pending demand would use stays",
            config: config(),
            pods: pods2.clone(),
            state: state(
                vec![head(), idle("a", 120_000), busy("b")],
                vec![(cpu(4.0), 1)],
            ),
            drain: vec![],
        },
        Case {
            name: "request_resources protects the node it needs",
            config: config(),
            pods: vec![pod("a", "cpu4", true)],
            state: with_constraint,
            drain: vec![],
        },
        Case {
            name: "above the type's max: idle first, even within the timeout",
            config: max1,
            pods: pods2.clone(),
            state: state(vec![head(), busy("a"), idle("b", 1_000)], vec![]),
            drain: vec![("b", DrainCause::AboveTypeMax)],
        },
        Case {
            name: "above the cluster's max: a pending pod goes before a busy one",
            config: cluster_max1,
            pods: vec![pod("a", "cpu4", true), pod("p", "cpu4", false)],
            state: state(vec![head(), busy("a")], vec![]),
            drain: vec![("p", DrainCause::AboveClusterMax)],
        },
        Case {
            name: "a type no longer configured is drained",
            config: config(),
            pods: vec![pod("old-1", "gone", true)],
            state: state(
                vec![head(), node("old-1", "gone", cpu(1.0), cpu(0.0), 0)],
                vec![],
            ),
            drain: vec![("old-1", DrainCause::UnknownType)],
        },
        Case {
            name: "a draining node is not drained again",
            config: config(),
            pods: pods2.clone(),
            state: state(
                vec![
                    head(),
                    RayNode {
                        status: NodeStatus::Draining,
                        ..idle("a", 120_000)
                    },
                    busy("b"),
                ],
                vec![],
            ),
            drain: vec![],
        },
    ];
    for c in cases {
        let p = plan(&c.config, &c.pods, &c.state);
        assert_eq!(drains(&p), c.drain, "{}", c.name);
    }
}

#[test]
fn drains_carry_node_ids_and_desired_counts() {
    let s = state(
        vec![head(), node("a", "cpu4", cpu(4.0), cpu(4.0), 999_999)],
        vec![],
    );
    let p = plan(
        &config(),
        &[pod("a", "cpu4", true), pod("p", "cpu4", false)],
        &s,
    );
    assert_eq!(p.drain[0].node_id.as_deref(), Some("id-a"));
    assert_eq!(p.drain[0].cause.ray_reason(), DrainReason::IdleTermination);
    assert_eq!(
        p.desired,
        BTreeMap::from([("cpu4".to_string(), 1), ("gpu".to_string(), 0)])
    );
}

#[test]
fn plans_are_deterministic() {
    let s = state(
        vec![head()],
        vec![(cpu(1.0), 7), (bundle([("GPU", 1.0)]), 2)],
    );
    let pods = vec![pod("z", "cpu4", false), pod("a", "cpu4", false)];
    let first = plan(&config(), &pods, &s);
    for _ in 0..5 {
        assert_eq!(plan(&config(), &pods, &s), first);
    }
    assert_eq!(first.pending_summary, vec!["7 x {CPU: 1}", "2 x {GPU: 1}"]);
}
