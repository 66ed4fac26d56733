//! The seed's flows on real nodes: `helm install` of the chart (and the
//! Helm-free `components/`), the operator running as a pod from the chart's
//! Deployment, and the Ray clusters it makes forming for real: `ray.nodes()`
//! inside the head lists the head and every worker alive, and a task needing
//! a whole CPU runs on each worker.
//!
//! Every name carries a random suffix and every test its own namespaces, so
//! these run beside `make demo`'s release (`example-cluster` in `ray`).

mod support;

use std::time::Duration;

use support::real::{
    Cleanup, FORM_TIMEOUT, assert_tasks_run_on_workers, eventually, formed, helm_cmd, kubectl,
    kubectl_json, serial, try_kubectl, unique, wait_phase,
};

const ROLLOUT: &str = "--timeout=180s";

/// Waits for the operator Deployment's rollout, then checks that its pod runs
/// Ready under the chart's restricted security context; returns the pod names.
fn operator_ready(namespace: &str, deployment: &str) -> Vec<String> {
    kubectl(&[
        "rollout",
        "status",
        "-n",
        namespace,
        &format!("deployment/{deployment}"),
        ROLLOUT,
    ]);
    let pods = kubectl_json(&[
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        "cluster.ray.io/component=operator",
    ]);
    let mut names = Vec::new();
    for pod in pods["items"].as_array().into_iter().flatten() {
        if !pod["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let owner_matches = name.starts_with(deployment);
        if !owner_matches {
            continue;
        }
        let container = &pod["spec"]["containers"][0];
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 65532, "{name}");
        let status = &pod["status"]["containerStatuses"][0];
        assert_eq!(status["ready"], true, "{name} is Ready: {status}");
        names.push(name.to_string());
    }
    assert!(
        !names.is_empty(),
        "no pod of deployment {namespace}/{deployment}"
    );
    names
}

/// The pod holding the cluster-scoped operators' leader Lease (several
/// releases may run one: `make demo`'s and a test's), as the log recipe needs
/// the pod that acts.
fn cluster_scoped_leader() -> String {
    eventually(
        "a cluster-scoped operator holding the Lease",
        Duration::from_secs(60),
        || {
            try_kubectl(
                &[
                    "get",
                    "lease",
                    "-n",
                    "kube-system",
                    "ray-operator-cluster-scoped",
                    "-o",
                    "jsonpath={.spec.holderIdentity}",
                ],
                "",
            )
            .and_then(|h| {
                if h.is_empty() {
                    Err("no holder".into())
                } else {
                    Ok(h)
                }
            })
        },
    )
}

/// The operator's log lines for `<cluster>,<namespace>`, by the seed's recipe
/// `kubectl logs <pod> | grep <cluster>,<namespace>`.
fn log_lines(pod_namespace: &str, pod: &str, cluster: &str, namespace: &str) -> Vec<String> {
    let logs = kubectl(&["logs", "-n", pod_namespace, pod]);
    let prefix = format!("{cluster},{namespace}");
    logs.lines()
        .filter(|l| l.contains(&prefix))
        .map(String::from)
        .collect()
}

/// Waits until the pod's log shows the cluster's lines, each prefixed by it.
fn assert_logged(pod_namespace: &str, pod: &str, cluster: &str, namespace: &str) {
    let lines = eventually(
        &format!("log lines of {cluster},{namespace} in {pod}"),
        Duration::from_secs(60),
        || {
            let lines = log_lines(pod_namespace, pod, cluster, namespace);
            if lines.iter().any(|l| l.contains("Running")) {
                Ok(lines)
            } else {
                Err(format!("{lines:?}"))
            }
        },
    );
    let prefix = format!("{cluster},{namespace} ");
    assert!(
        lines.iter().all(|l| l.starts_with(&prefix)),
        "each line starts with the prefix: {lines:?}"
    );
}

/// A cluster of the chart's defaults (a head and 2 workers) forms and runs tasks.
fn assert_default_cluster_runs(namespace: &str, cluster: &str) {
    wait_phase(namespace, cluster, "Running", FORM_TIMEOUT);
    let pods = formed(namespace, cluster, 2);
    assert_tasks_run_on_workers(namespace, cluster, &pods);
}

#[test]
fn helm_install_then_a_second_cluster_with_cluster_only() {
    let _serial = serial();
    let id = unique();
    let namespace = format!("ray-{id}");
    let (first, second) = (
        format!("example-cluster-{id}"),
        format!("example-cluster2-{id}"),
    );
    let mut cleanup = Cleanup::default();
    cleanup.namespaces.push(namespace.clone());

    // helm -n ray install example-cluster --create-namespace ./charts/ray
    cleanup.releases.push((first.clone(), namespace.clone()));
    helm_cmd(&[
        "-n",
        &namespace,
        "install",
        &first,
        "--create-namespace",
        "./charts/ray",
    ]);
    operator_ready("default", &format!("{first}-ray-operator"));
    assert_default_cluster_runs(&namespace, &first);

    // helm -n ray install example-cluster2 --set clusterOnly=true ./charts/ray
    cleanup.releases.push((second.clone(), namespace.clone()));
    helm_cmd(&[
        "-n",
        &namespace,
        "install",
        &second,
        "--set",
        "clusterOnly=true",
        "./charts/ray",
    ]);
    assert_default_cluster_runs(&namespace, &second);

    // kubectl logs <the operator pod> | grep example-cluster2,ray
    let leader = cluster_scoped_leader();
    assert_logged("default", &leader, &second, &namespace);
}

#[test]
fn operator_only_then_clusters_in_another_namespace() {
    let _serial = serial();
    let id = unique();
    let (operator_ns, cluster_ns) = (format!("ops-{id}"), format!("ray-{id}"));
    let operator = format!("ray-operator-{id}");
    let cluster = format!("example-cluster-{id}");
    let mut cleanup = Cleanup::default();
    cleanup
        .namespaces
        .extend([operator_ns.clone(), cluster_ns.clone()]);

    kubectl(&["create", "namespace", &operator_ns]);
    cleanup
        .releases
        .push((operator.clone(), operator_ns.clone()));
    helm_cmd(&[
        "-n",
        &operator_ns,
        "install",
        &operator,
        "--set",
        "operatorOnly=true",
        "--set",
        &format!("operatorNamespace={operator_ns}"),
        "./charts/ray",
    ]);
    operator_ready(&operator_ns, &operator);

    cleanup.releases.push((cluster.clone(), cluster_ns.clone()));
    helm_cmd(&[
        "-n",
        &cluster_ns,
        "install",
        &cluster,
        "--create-namespace",
        "--set",
        "clusterOnly=true",
        "./charts/ray",
    ]);
    assert_default_cluster_runs(&cluster_ns, &cluster);
}

#[test]
fn a_namespaced_operator_runs_its_namespace() {
    let _serial = serial();
    let id = unique();
    let namespace = format!("ray-ns-{id}");
    let release = format!("example-cluster-{id}");
    let mut cleanup = Cleanup::default();
    cleanup.namespaces.push(namespace.clone());
    cleanup.releases.push((release.clone(), namespace.clone()));
    helm_cmd(&[
        "-n",
        &namespace,
        "install",
        &release,
        "--create-namespace",
        "--set",
        "namespacedOperator=true",
        "./charts/ray",
    ]);
    let pods = operator_ready(&namespace, &format!("{release}-ray-operator"));
    assert_default_cluster_runs(&namespace, &release);

    // The seed's recipe exactly: one operator pod in the namespace.
    let listed = kubectl(&[
        "get",
        "pod",
        "-n",
        &namespace,
        "-l",
        "cluster.ray.io/component=operator",
        "-o",
        "name",
    ]);
    assert_eq!(listed.trim(), format!("pod/{}", pods[0]));
    assert_logged(&namespace, listed.trim(), &release, &namespace);
}

#[test]
fn components_without_helm_in_the_documented_order() {
    let _serial = serial();
    let id = unique();
    let namespace = format!("ray-comp-{id}");
    let mut cleanup = Cleanup::default();
    cleanup.namespaces.push(namespace.clone());
    let repo = env!("CARGO_MANIFEST_DIR");

    // The README's order: the CRD, the operator, the namespace, the cluster.
    kubectl(&["apply", "-f", "charts/ray/crds/cluster_crd.yaml"]);
    let operator = format!("{repo}/components/operator_cluster_scoped.yaml");
    cleanup.applied.push(operator.clone());
    kubectl(&["apply", "-f", &operator]);
    kubectl(&["create", "namespace", &namespace]);
    // components/example_cluster.yaml names namespace `ray`, where `make demo`'s
    // release may run a cluster of the same name: this test moves it into its own.
    let manifest = std::fs::read_to_string(format!("{repo}/components/example_cluster.yaml"))
        .expect("read components/example_cluster.yaml")
        .replace("namespace: ray\n", &format!("namespace: {namespace}\n"));
    try_kubectl(&["apply", "-f", "-"], &manifest).expect("apply the example cluster");
    operator_ready("default", "ray-operator");
    assert_default_cluster_runs(&namespace, "example-cluster");
    kubectl(&["-n", &namespace, "get", "rayclusters"]);
}
