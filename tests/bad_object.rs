//! A RayCluster object that does not fit the RayCluster type does not break
//! the watch for the others. It needs a permissive CRD (`spec` free-form),
//! so it runs on a kwok control plane of its own: `$KWOK_BAD_CLUSTER_DIR`
//! (default `<repo>/.cluster/kwok-bad`), ports from `$KWOK_BAD_PORT_BASE`
//! (default 26513).

mod support;

use std::time::Duration;

use kube::api::Api;
use ray_operator::api::{ClusterObject, Phase};
use support::cluster::{TestNamespace, kwok, private_kwok, shared};
use support::eventually;
use support::operator::{Operator, events, kubectl, render, wait_for_crd};

const WAIT: Duration = Duration::from_secs(60);

/// The RayCluster CRD with nothing checked: any spec is stored.
const PERMISSIVE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: rayclusters.cluster.ray.io
spec:
  group: cluster.ray.io
  scope: Namespaced
  names: {kind: RayCluster, plural: rayclusters, singular: raycluster, listKind: RayClusterList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

/// Status phase and `Valid` condition of a cluster, read through the wrapper
/// (the bad object does not parse as a RayCluster).
async fn phase_and_valid(
    api: &Api<ClusterObject>,
    name: &str,
) -> (Option<Phase>, Option<(String, String, String)>) {
    let object = api.get(name).await.unwrap();
    let status = match &object.0 {
        Ok(cluster) => cluster.status.clone(),
        Err(invalid) => invalid.status.clone(),
    }
    .unwrap_or_default();
    let valid = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Valid")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
    (status.phase, valid)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_that_does_not_fit_is_reported_and_the_others_run() {
    let _plane = private_kwok("kwok-bad", "KWOK_BAD", 26513);
    let _kwok = kwok();
    kubectl(&["apply", "-f", "-"], PERMISSIVE_CRD);
    wait_for_crd();
    let client = shared().client().await;
    let ns = TestNamespace::new(&client, "bad-object").await;
    let _operator = Operator::start("op", &ns.name, true, &[]).await;

    let bad = serde_json::json!({
        "apiVersion": "cluster.ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "bad"},
        "spec": {"podTypes": "not a list", "headPodType": "x"},
    });
    kubectl(&["apply", "-n", &ns.name, "-f", "-"], &bad.to_string());
    let good = render(&["good", "-n", &ns.name, "--set", "clusterOnly=true"]);
    kubectl(&["apply", "-n", &ns.name, "-f", "-"], &good);

    let api: Api<ClusterObject> = Api::namespaced(client.clone(), &ns.name);
    eventually(
        "the good cluster Running beside the bad one",
        WAIT,
        async || (phase_and_valid(&api, "good").await.0 == Some(Phase::Running)).then_some(()),
    )
    .await;
    let (phase, valid) = eventually("the bad object in Error", WAIT, async || {
        let (phase, valid) = phase_and_valid(&api, "bad").await;
        (phase == Some(Phase::Error)).then_some((phase, valid))
    })
    .await;
    assert_eq!(phase, Some(Phase::Error));
    let (value, reason, message) = valid.expect("a Valid condition");
    assert_eq!(
        (value.as_str(), reason.as_str()),
        ("False", "InvalidObject")
    );
    assert!(message.starts_with("spec.podTypes"), "{message}");
    let event = eventually("an InvalidObject Event", WAIT, async || {
        events(&client, &ns.name, "InvalidObject")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let note = event.note.unwrap_or_default();
    assert!(note.contains("spec.podTypes"), "{note}");
}
