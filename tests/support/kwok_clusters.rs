//! RayClusters on the kwok control plane ([`shared()`]): create them from
//! the chart, read their pods and status, wait for them to run.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use ray_operator::api::{Phase, RayCluster, RayClusterStatus};

use super::eventually;
use super::operator::{kubectl, render};

/// How long a kwok test waits for the operator to act.
pub const WAIT: Duration = Duration::from_secs(60);

/// Creates a RayCluster from the chart (`clusterOnly`), with extra `--set`s.
pub fn create_cluster(name: &str, namespace: &str, sets: &[&str]) {
    let mut set = vec!["clusterOnly=true"];
    set.extend_from_slice(sets);
    let manifest = render(&[name, "-n", namespace, "--set", &set.join(",")]);
    kubectl(&["apply", "-n", namespace, "-f", "-"], &manifest);
}

/// Live (not terminating) pods of a cluster, sorted by name.
pub async fn pods(client: &Client, ns: &str, cluster: &str) -> Vec<Pod> {
    live_pods(client, ns, &format!("ray-cluster-name={cluster}")).await
}

/// Live (not terminating) pods matching a label selector (every pod when
/// empty), sorted by name.
pub async fn live_pods(client: &Client, ns: &str, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut pods: Vec<Pod> = api
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by_key(|p| p.name_any());
    pods
}

/// Live (not terminating) pods of one of a cluster's pod types (label
/// `ray-user-node-type`), sorted by name.
pub async fn pods_of_type(client: &Client, ns: &str, cluster: &str, pod_type: &str) -> Vec<Pod> {
    let selector = format!("ray-cluster-name={cluster},ray-user-node-type={pod_type}");
    live_pods(client, ns, &selector).await
}

/// Whether the pod runs (kwok makes a scheduled pod Running at once).
pub fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// The pods' names, in their order.
pub fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(|p| p.name_any()).collect()
}

/// Names of the pods of a kind (label `ray-node-type`: `head` or `worker`).
pub fn names_of(pods: &[Pod], kind: &str) -> BTreeSet<String> {
    pods.iter()
        .filter(|p| p.labels().get("ray-node-type").map(String::as_str) == Some(kind))
        .map(|p| p.name_any())
        .collect()
}

/// The cluster's status (empty while it has none).
pub async fn status(client: &Client, ns: &str, name: &str) -> RayClusterStatus {
    let api: Api<RayCluster> = Api::namespaced(client.clone(), ns);
    api.get(name).await.unwrap().status.unwrap_or_default()
}

/// Waits until the cluster is Running with `workers` ready workers and exactly
/// that many worker pods (and one head); returns its pods.
pub async fn running(client: &Client, ns: &str, name: &str, workers: usize) -> Vec<Pod> {
    eventually(
        &format!("{ns}/{name} Running with {workers} workers"),
        WAIT,
        async || {
            let s = status(client, ns, name).await;
            let pods = pods(client, ns, name).await;
            let ok = s.phase == Some(Phase::Running)
                && s.ready_workers as usize == workers
                && names_of(&pods, "head").len() == 1
                && names_of(&pods, "worker").len() == workers;
            ok.then_some(pods)
        },
    )
    .await
}

/// Edits the cluster's spec as a JSON value, then writes the whole spec back.
pub async fn edit_spec(
    client: &Client,
    ns: &str,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) {
    let api: Api<RayCluster> = Api::namespaced(client.clone(), ns);
    let mut spec = serde_json::to_value(api.get(name).await.unwrap().spec).unwrap();
    edit(&mut spec);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": spec})),
    )
    .await
    .unwrap();
}
