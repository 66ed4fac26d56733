//! The chart's and `components/`'s manifests against the real API server of the local
//! control plane (`hack/cluster-up.sh`): client-side `kubectl apply` of the CRD and the
//! components, `--dry-run=server` of every case of the render matrix, the CRD's schema and
//! CEL rules on invalid RayClusters (and a legacy one that must pass unchanged), and real
//! `helm install` / `upgrade` / `uninstall` of the flows of the advanced guide.
//!
//! Needs helm (`make helm`). The operator does not run here: the Deployments' pods are kwok
//! fakes. Each test uses namespaces and release names of its own, and deletes the
//! cluster-scoped objects it creates (the CRD stays, as it does with Helm).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_json::{Value, json};
use support::cluster::{TestNamespace, kwok, shared};
use support::helm::{CASES, helm};
use support::operator::{install_crd, kubectl, render, try_kubectl};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CRD: &str = "rayclusters.cluster.ray.io";
const INSTANCE: &str = "app.kubernetes.io/instance";

/// Real `helm ARGS --kubeconfig <admin>` in the repo root; its stdout, panics on failure.
fn helm_run(args: &[&str]) -> String {
    let out = Command::new(helm())
        .current_dir(ROOT)
        .args(args)
        .arg("--kubeconfig")
        .arg(&shared().kubeconfig)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// 6 random hex digits, to make release names unique.
fn suffix() -> String {
    support::cluster::random_hex6()
}

/// Number of (non-empty) YAML documents in a manifest stream.
fn documents(stream: &str) -> usize {
    serde_yaml_ng::Deserializer::from_str(stream)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .count()
}

/// Best-effort cleanup of what tests create outside their TestNamespaces: cluster-scoped
/// objects of releases, and namespaces `helm --create-namespace` made.
#[derive(Default)]
struct Cleanup {
    releases: Vec<String>,
    cluster_roles: Vec<String>,
    namespaces: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for release in &self.releases {
            let _ = try_kubectl(
                &[
                    "delete",
                    "clusterrole,clusterrolebinding",
                    "-l",
                    &format!("{INSTANCE}={release}"),
                    "--ignore-not-found",
                    "--wait=false",
                ],
                "",
            );
        }
        for name in &self.cluster_roles {
            let _ = try_kubectl(
                &[
                    "delete",
                    &format!("clusterrole/{name}"),
                    &format!("clusterrolebinding/{name}"),
                    "--ignore-not-found",
                    "--wait=false",
                ],
                "",
            );
        }
        for ns in &self.namespaces {
            let _ = try_kubectl(
                &[
                    "delete",
                    "namespace",
                    ns,
                    "--ignore-not-found",
                    "--wait=false",
                ],
                "",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. Client-side apply of the CRD and of components/, in the order the guide lists.
// ---------------------------------------------------------------------------------------

/// A components/ file with its `namespace: <from>` fields moved to `to` (the guide: the
/// cluster-scoped operator "is configured to run in namespace default; modify as needed").
fn component(file: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(Path::new(ROOT).join("components").join(file))
        .unwrap_or_else(|e| panic!("components/{file}: {e}"));
    let from = format!("namespace: {from}\n");
    assert!(text.contains(&from), "components/{file} has no `{from}`");
    text.replace(&from, &format!("namespace: {to}\n"))
}

#[tokio::test]
async fn crd_and_components_apply_client_side() {
    let cluster = kwok();
    let client = cluster.client().await;
    let mut cleanup = Cleanup::default();

    // Client-side apply stores the whole CRD in the last-applied annotation (256 KiB max).
    let out = kubectl(
        &[
            "apply",
            "-f",
            &format!("{ROOT}/charts/ray/crds/cluster_crd.yaml"),
        ],
        "",
    );
    assert!(out.contains(CRD), "{out}");
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            &format!("crd/{CRD}"),
            "--timeout=30s",
        ],
        "",
    );
    let annotation = kubectl(
        &[
            "get",
            "crd",
            CRD,
            "-o",
            r"jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}",
        ],
        "",
    );
    assert!(
        annotation.contains("\"rayclusters\""),
        "no last-applied annotation on the CRD after a client-side apply: {annotation:?}"
    );

    // The cluster-scoped operator, moved from `default` into a namespace of the test.
    let operator_ns = TestNamespace::new(&client, "components-operator").await;
    cleanup.cluster_roles.push("ray-operator".into());
    let out = kubectl(
        &["apply", "-f", "-"],
        &component("operator_cluster_scoped.yaml", "default", &operator_ns.name),
    );
    for object in [
        "serviceaccount/ray-operator",
        "clusterrole.rbac.authorization.k8s.io/ray-operator",
        "clusterrolebinding.rbac.authorization.k8s.io/ray-operator",
        "deployment.apps/ray-operator",
    ] {
        assert!(out.contains(object), "apply did not make {object}:\n{out}");
    }
    let subject = kubectl(
        &[
            "get",
            "clusterrolebinding",
            "ray-operator",
            "-o",
            "jsonpath={.subjects[0].namespace}",
        ],
        "",
    );
    assert_eq!(subject, operator_ns.name);

    // The namespaced operator and the example cluster, moved from `ray`.
    let ray_ns = TestNamespace::new(&client, "components-ray").await;
    let out = kubectl(
        &["apply", "-f", "-"],
        &component("operator_namespaced.yaml", "ray", &ray_ns.name),
    );
    for object in [
        "serviceaccount/ray-operator",
        "role.rbac.authorization.k8s.io/ray-operator",
        "rolebinding.rbac.authorization.k8s.io/ray-operator",
        "deployment.apps/ray-operator",
    ] {
        assert!(out.contains(object), "apply did not make {object}:\n{out}");
    }
    let out = kubectl(
        &["apply", "-f", "-"],
        &component("example_cluster.yaml", "ray", &ray_ns.name),
    );
    assert!(
        out.contains("raycluster.cluster.ray.io/example-cluster"),
        "{out}"
    );

    // The guide's `kubectl -n ray get rayclusters`: STATUS and RESTARTS columns.
    let table = kubectl(&["-n", &ray_ns.name, "get", "rayclusters"], "");
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    for column in ["NAME", "STATUS", "RESTARTS"] {
        assert!(header.contains(&column), "no {column} column:\n{table}");
    }
    assert!(
        lines.any(|l| l.starts_with("example-cluster ")),
        "example-cluster not listed:\n{table}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Every case of the render matrix passes `kubectl apply --dry-run=server`.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn render_matrix_passes_server_dry_run() {
    let cluster = kwok();
    let client = cluster.client().await;
    install_crd();
    // One namespace of the test for each namespace the matrix names.
    let mut namespaces: Vec<(&str, TestNamespace)> = Vec::new();
    for case in CASES {
        for ns in [case.namespace, case.operator_namespace]
            .into_iter()
            .flatten()
        {
            if !namespaces.iter().any(|(n, _)| *n == ns) {
                namespaces.push((
                    ns,
                    TestNamespace::new(&client, &format!("matrix-{ns}")).await,
                ));
            }
        }
    }
    let ours = |ns: Option<&str>| {
        ns.map(|ns| {
            namespaces
                .iter()
                .find(|(n, _)| *n == ns)
                .map(|(_, t)| t.name.as_str())
                .unwrap()
        })
    };
    let id = suffix();
    // The cases are independent: run them side by side (kubectl and helm mostly wait).
    std::thread::scope(|scope| {
        let runs: Vec<_> = CASES
            .iter()
            .map(|case| {
                let release = format!("{}-{id}", case.release);
                let args = case.args_in(ours(case.namespace), ours(case.operator_namespace));
                scope.spawn(move || dry_run_case(case.name, &release, &args))
            })
            .collect();
        for run in runs {
            if let Err(panic) = run.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// `helm template` and `ray-operator render` of one case, each through
/// `kubectl apply --dry-run=server`: every object must be accepted.
fn dry_run_case(name: &str, release: &str, args: &[String]) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let helm_out = Command::new(helm())
        .current_dir(ROOT)
        .args(["template", release, "charts/ray"])
        .args(&args)
        .output()
        .expect("run helm");
    assert!(
        helm_out.status.success(),
        "{name}: helm template failed: {}",
        String::from_utf8_lossy(&helm_out.stderr)
    );
    let from_helm = String::from_utf8(helm_out.stdout).unwrap();
    let mut render_args = vec![release];
    render_args.extend(&args);
    // `-f tests/fixtures/...` is relative: cargo runs tests in the package root.
    let from_render = render(&render_args);
    for (who, manifests) in [("helm template", &from_helm), ("render", &from_render)] {
        let out = try_kubectl(
            &["apply", "--dry-run=server", "-o", "name", "-f", "-"],
            manifests,
        )
        .unwrap_or_else(|e| {
            panic!("{name}: the API server rejects {who}'s manifests:\n{e}\n{manifests}")
        });
        assert_eq!(
            out.lines().count(),
            documents(manifests),
            "{name}: not every object of {who} was applied:\n{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. The CRD's schema and CEL rules.
// ---------------------------------------------------------------------------------------

/// A valid RayCluster: a head-only type `head` and a worker type `w` (0..2).
fn valid_cluster(namespace: &str) -> Value {
    let pod =
        json!({"spec": {"containers": [{"name": "ray-node", "image": "rayproject/ray:2.47.1"}]}});
    json!({
        "apiVersion": "cluster.ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "invalid", "namespace": namespace},
        "spec": {
            "headPodType": "head",
            "podTypes": [
                {"name": "head", "minWorkers": 0, "maxWorkers": 0, "podConfig": pod},
                {"name": "w", "minWorkers": 0, "maxWorkers": 2, "podConfig": pod},
            ],
        },
    })
}

#[tokio::test]
async fn crd_rejects_invalid_rayclusters_naming_the_field() {
    let cluster = kwok();
    let client = cluster.client().await;
    install_crd();
    let ns = TestNamespace::new(&client, "invalid-rayclusters").await;
    let create = |v: &Value| {
        try_kubectl(
            &["create", "--dry-run=server", "-f", "-"],
            &serde_json::to_string(v).unwrap(),
        )
    };
    create(&valid_cluster(&ns.name)).expect("the valid base RayCluster is accepted");

    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit, &[&str])] = &[
        (
            "minWorkers > maxWorkers",
            |v| v["spec"]["podTypes"][1]["minWorkers"] = json!(3),
            &[
                "spec.podTypes[1].minWorkers",
                "minWorkers must be <= maxWorkers",
            ],
        ),
        (
            "headPodType naming no podType",
            |v| v["spec"]["headPodType"] = json!("nope"),
            &["spec.headPodType", "spec.podTypes"],
        ),
        (
            "duplicate podType names",
            |v| {
                let dup = v["spec"]["podTypes"][1].clone();
                v["spec"]["podTypes"].as_array_mut().unwrap().push(dup);
            },
            &["spec.podTypes[2]", "Duplicate value", "\"name\":\"w\""],
        ),
        (
            "negative minWorkers",
            |v| v["spec"]["podTypes"][1]["minWorkers"] = json!(-1),
            &["spec.podTypes[1].minWorkers", "greater than or equal to 0"],
        ),
        (
            "negative maxWorkers of a podType",
            |v| v["spec"]["podTypes"][0]["maxWorkers"] = json!(-1),
            &["spec.podTypes[0].maxWorkers", "greater than or equal to 0"],
        ),
        (
            "negative maxWorkers of the cluster",
            |v| v["spec"]["maxWorkers"] = json!(-1),
            &["spec.maxWorkers", "greater than or equal to 0"],
        ),
        (
            "sum of minWorkers > maxWorkers",
            |v| {
                v["spec"]["podTypes"][1]["minWorkers"] = json!(2);
                v["spec"]["maxWorkers"] = json!(1);
            },
            &["spec.maxWorkers", "sum of podTypes[].minWorkers"],
        ),
        (
            "upscalingSpeed 0",
            |v| v["spec"]["upscalingSpeed"] = json!(0),
            &["spec.upscalingSpeed", "greater than 0"],
        ),
    ];
    for (name, edit, expect) in cases {
        let mut v = valid_cluster(&ns.name);
        edit(&mut v);
        let err = match create(&v) {
            Ok(out) => panic!("{name}: the API server accepted it: {out}"),
            Err(e) => e,
        };
        for e in *expect {
            assert!(
                err.contains(e),
                "{name}: the error does not say {e:?}:\n{err}"
            );
        }
    }
}

/// A RayCluster as the legacy Ray Helm chart rendered it: pods that sleep until the legacy
/// operator ran Ray in them, `setupCommands`, Ray started without `--block`.
const LEGACY: &str = r#"
apiVersion: cluster.ray.io/v1
kind: RayCluster
metadata:
  name: example-cluster
spec:
  maxWorkers: 3
  upscalingSpeed: 1.0
  idleTimeoutMinutes: 5
  headPodType: rayHeadType
  podTypes:
  - name: rayHeadType
    minWorkers: 0
    maxWorkers: 0
    rayResources: {"CPU": 0}
    setupCommands: ["pip install -q boto3"]
    podConfig:
      apiVersion: v1
      kind: Pod
      metadata:
        generateName: ray-head-type-
      spec:
        restartPolicy: Never
        volumes:
        - name: dshm
          emptyDir:
            medium: Memory
        containers:
        - name: ray-node
          imagePullPolicy: Always
          image: rayproject/ray:latest
          command: ["/bin/bash", "-c", "--"]
          args: ["trap : TERM INT; sleep infinity & wait;"]
          env:
          - name: RAY_gcs_server_rpc_server_reconnect_timeout_s
            value: "300"
          ports:
          - containerPort: 6379
          - containerPort: 10001
          - containerPort: 8265
          - containerPort: 8000
          volumeMounts:
          - mountPath: /dev/shm
            name: dshm
          resources:
            requests:
              cpu: 1
              memory: 512Mi
            limits:
              cpu: 1
              memory: 512Mi
  - name: rayWorkerType
    minWorkers: 2
    maxWorkers: 3
    rayResources: {"example-resource-a": 1}
    setupCommands: []
    podConfig:
      apiVersion: v1
      kind: Pod
      metadata:
        generateName: ray-worker-type-
      spec:
        restartPolicy: Never
        volumes:
        - name: dshm
          emptyDir:
            medium: Memory
        containers:
        - name: ray-node
          imagePullPolicy: Always
          image: rayproject/ray:latest
          command: ["/bin/bash", "-c", "--"]
          args: ["trap : TERM INT; sleep infinity & wait;"]
          env:
          - name: RAY_gcs_server_rpc_server_reconnect_timeout_s
            value: "300"
          volumeMounts:
          - mountPath: /dev/shm
            name: dshm
          resources:
            requests:
              cpu: 1
              memory: 512Mi
            limits:
              cpu: 1
              memory: 512Mi
              nvidia.com/gpu: 0
        nodeSelector: {}
        tolerations: []
  headStartRayCommands:
    - ray stop
    - ulimit -n 65536; ray start --head --port=6379 --no-monitor --dashboard-host 0.0.0.0
  workerStartRayCommands:
    - ray stop
    - ulimit -n 65536; ray start --address=$RAY_HEAD_IP:6379
"#;

/// `v` with every number as a float (`1.0` and `1` are the same number to the API server).
fn numbers_as_f64(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_f64).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn crd_accepts_a_legacy_raycluster_unchanged() {
    let cluster = kwok();
    let client = cluster.client().await;
    install_crd();
    let ns = TestNamespace::new(&client, "legacy-raycluster").await;
    // kubectl validates strictly: an unknown field would be an error, not a silent prune.
    kubectl(&["-n", &ns.name, "create", "-f", "-"], LEGACY);
    let stored: Value = serde_json::from_str(&kubectl(
        &[
            "-n",
            &ns.name,
            "get",
            "raycluster",
            "example-cluster",
            "-o",
            "json",
        ],
        "",
    ))
    .unwrap();
    let sent: Value = serde_yaml_ng::from_str(LEGACY).unwrap();
    let (sent, stored) = (numbers_as_f64(&sent), numbers_as_f64(&stored));
    if stored["spec"] != sent["spec"] {
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
        let diff = similar::TextDiff::from_lines(pretty(&sent["spec"]), pretty(&stored["spec"]))
            .unified_diff()
            .header("sent", "stored")
            .to_string();
        panic!("the API server changed the legacy RayCluster's spec:\n{diff}");
    }
}

// ---------------------------------------------------------------------------------------
// 4. Real helm install / upgrade / uninstall of the guide's flows.
// ---------------------------------------------------------------------------------------

/// Kinds a release of the chart may create.
const KINDS: &str = "customresourcedefinitions,clusterroles,clusterrolebindings,serviceaccounts,\
                     roles,rolebindings,deployments,services,rayclusters";

/// The objects labelled as `release`'s, as `Kind namespace/name` (`Kind name` if cluster-scoped).
fn release_objects(release: &str) -> BTreeSet<String> {
    let out = kubectl(
        &[
            "get",
            KINDS,
            "-A",
            "-l",
            &format!("{INSTANCE}={release}"),
            "-o",
            "json",
        ],
        "",
    );
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let kind = o["kind"].as_str().unwrap();
            let name = o["metadata"]["name"].as_str().unwrap();
            match o["metadata"]["namespace"].as_str() {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None => format!("{kind} {name}"),
            }
        })
        .collect()
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// What the chart makes for a cluster-scoped operator of `release` in `ns`.
fn cluster_scoped_operator(release: &str, ns: &str) -> Vec<String> {
    let name = operator_name(release);
    vec![
        format!("ServiceAccount {ns}/{name}"),
        format!("ClusterRole {name}"),
        format!("ClusterRoleBinding {name}"),
        format!("Deployment {ns}/{name}"),
    ]
}

fn operator_name(release: &str) -> String {
    if release.contains("ray-operator") {
        release.to_string()
    } else {
        format!("{release}-ray-operator")
    }
}

fn assert_crd_exists() {
    kubectl(&["get", "crd", CRD, "-o", "name"], "");
}

/// Which workers of `rayWorkerType` the RayCluster allows: (spec.maxWorkers, the type's).
fn worker_max(ns: &str, name: &str) -> (i64, i64) {
    let rc: Value = serde_json::from_str(&kubectl(
        &["-n", ns, "get", "raycluster", name, "-o", "json"],
        "",
    ))
    .unwrap();
    let pt = rc["spec"]["podTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "rayWorkerType")
        .expect("podType rayWorkerType");
    (
        rc["spec"]["maxWorkers"].as_i64().unwrap(),
        pt["maxWorkers"].as_i64().unwrap(),
    )
}

/// (a) `helm -n ray install example-cluster --create-namespace ./ray`, then
/// `helm -n ray install example-cluster2 --set clusterOnly=true`.
#[tokio::test]
async fn helm_operator_and_cluster_then_cluster_only() {
    let _kwok = kwok();
    helm(); // fails saying `make helm` when there is none
    let id = suffix();
    let ns = format!("t-helm-create-ns-{id}");
    let (first, second) = (
        format!("example-cluster-{id}"),
        format!("example-cluster2-{id}"),
    );
    let mut cleanup = Cleanup::default();
    cleanup.namespaces.push(ns.clone());
    cleanup.releases.extend([first.clone(), second.clone()]);

    helm_run(&[
        "-n",
        &ns,
        "install",
        &first,
        "--create-namespace",
        "charts/ray",
        "--set",
        &format!("operatorNamespace={ns}"),
    ]);
    assert_crd_exists();
    let mut expect = cluster_scoped_operator(&first, &ns);
    expect.push(format!("RayCluster {ns}/{first}"));
    assert_eq!(release_objects(&first), set(&expect));

    helm_run(&[
        "-n",
        &ns,
        "install",
        &second,
        "charts/ray",
        "--set",
        "clusterOnly=true",
    ]);
    assert_eq!(
        release_objects(&second),
        set(&[format!("RayCluster {ns}/{second}")])
    );
    // The first release is untouched.
    assert_eq!(release_objects(&first), set(&expect));

    for release in [&second, &first] {
        helm_run(&["-n", &ns, "uninstall", release]);
        assert_eq!(release_objects(release), BTreeSet::new(), "{release}");
    }
    assert_crd_exists();
}

/// (b) `helm install ray-operator --set operatorOnly=true ./ray`, then clusterOnly releases
/// in another namespace.
#[tokio::test]
async fn helm_operator_only_then_cluster_only_elsewhere() {
    let cluster = kwok();
    helm();
    let client = cluster.client().await;
    let operator_ns = TestNamespace::new(&client, "helm-operator-only").await;
    let ray_ns = TestNamespace::new(&client, "helm-cluster-only").await;
    let id = suffix();
    let operator = format!("ray-operator-{id}");
    let clusters = [
        format!("example-cluster-{id}"),
        format!("example-cluster2-{id}"),
    ];
    let mut cleanup = Cleanup::default();
    cleanup.releases.push(operator.clone());
    cleanup.releases.extend(clusters.iter().cloned());

    helm_run(&[
        "-n",
        &operator_ns.name,
        "install",
        &operator,
        "charts/ray",
        "--set",
        &format!("operatorOnly=true,operatorNamespace={}", operator_ns.name),
    ]);
    assert_crd_exists();
    let operator_objects = set(&cluster_scoped_operator(&operator, &operator_ns.name));
    assert_eq!(release_objects(&operator), operator_objects);

    for release in &clusters {
        helm_run(&[
            "-n",
            &ray_ns.name,
            "install",
            release,
            "charts/ray",
            "--set",
            "clusterOnly=true",
        ]);
        assert_eq!(
            release_objects(release),
            set(&[format!("RayCluster {}/{release}", ray_ns.name)])
        );
    }
    assert_eq!(release_objects(&operator), operator_objects);

    helm_run(&["-n", &operator_ns.name, "uninstall", &operator]);
    assert_eq!(release_objects(&operator), BTreeSet::new());
    // The clusters stay when the operator's release goes.
    for release in &clusters {
        assert_eq!(release_objects(release).len(), 1, "{release}");
    }
}

/// (c) `--set namespacedOperator=true`: Role, RoleBinding, ServiceAccount and Deployment in
/// the release namespace, no ClusterRole.
#[tokio::test]
async fn helm_namespaced_operator() {
    let cluster = kwok();
    helm();
    let client = cluster.client().await;
    let ns = TestNamespace::new(&client, "helm-namespaced").await;
    let release = format!("example-cluster-{}", suffix());
    let mut cleanup = Cleanup::default();
    cleanup.releases.push(release.clone());

    helm_run(&[
        "-n",
        &ns.name,
        "install",
        &release,
        "charts/ray",
        "--set",
        "namespacedOperator=true",
    ]);
    assert_crd_exists();
    let name = operator_name(&release);
    let n = &ns.name;
    assert_eq!(
        release_objects(&release),
        set(&[
            format!("ServiceAccount {n}/{name}"),
            format!("Role {n}/{name}"),
            format!("RoleBinding {n}/{name}"),
            format!("Deployment {n}/{name}"),
            format!("RayCluster {n}/{release}"),
        ])
    );
    let env = kubectl(
        &[
            "-n",
            n,
            "get",
            "deployment",
            &name,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].env[*].name}",
        ],
        "",
    );
    assert!(env.contains("RAY_OPERATOR_POD_NAMESPACE"), "{env}");
    helm_run(&["-n", n, "uninstall", &release]);
    assert_eq!(release_objects(&release), BTreeSet::new());
}

/// (d) `helm upgrade` of `podTypes.rayWorkerType.maxWorkers` changes the RayCluster;
/// `helm uninstall` removes the release's objects but not the CRD.
#[tokio::test]
async fn helm_upgrade_then_uninstall() {
    let cluster = kwok();
    helm();
    let client = cluster.client().await;
    let ns = TestNamespace::new(&client, "helm-upgrade").await;
    let release = format!("example-cluster-{}", suffix());
    let mut cleanup = Cleanup::default();
    cleanup.releases.push(release.clone());
    let n = &ns.name;
    let operator_ns = format!("operatorNamespace={n}");

    helm_run(&[
        "-n",
        n,
        "install",
        &release,
        "charts/ray",
        "--set",
        &operator_ns,
    ]);
    let mut expect = cluster_scoped_operator(&release, n);
    expect.push(format!("RayCluster {n}/{release}"));
    assert_eq!(release_objects(&release), set(&expect));
    assert_eq!(worker_max(n, &release), (3, 3));
    let operator = operator_name(&release);
    let generation = |kind: &str, name: &str| {
        kubectl(
            &[
                "-n",
                n,
                "get",
                kind,
                name,
                "-o",
                "jsonpath={.metadata.generation}",
            ],
            "",
        )
    };
    let before = generation("raycluster", &release);
    let deployment_before = generation("deployment", &operator);

    helm_run(&[
        "-n",
        n,
        "upgrade",
        &release,
        "charts/ray",
        "--set",
        &operator_ns,
        "--set",
        "podTypes.rayWorkerType.maxWorkers=5",
    ]);
    assert_eq!(worker_max(n, &release), (5, 5));
    assert_ne!(
        generation("raycluster", &release),
        before,
        "the upgrade did not change the RayCluster's spec"
    );
    // Changing maxWorkers restarts nothing: the operator's Deployment is as it was.
    assert_eq!(generation("deployment", &operator), deployment_before);
    assert_eq!(release_objects(&release), set(&expect));
    let history = helm_run(&["-n", n, "history", &release, "-o", "json"]);
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");

    helm_run(&["-n", n, "uninstall", &release]);
    assert_eq!(release_objects(&release), BTreeSet::new());
    assert_crd_exists();
}
