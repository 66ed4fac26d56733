//! The local control plane (`hack/cluster-up.sh`) behaves like a real cluster where the operator
//! needs it to: fake nodes with capacity, pods that reach Running, garbage collection, RBAC.

mod support;

use std::time::Duration;

use k8s_openapi::{
    api::{
        core::v1::{ConfigMap, Node, Pod, ServiceAccount},
        rbac::v1::{RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::OwnerReference},
};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use support::cluster::{TestNamespace, kwok, shared};
use support::eventually;

const TIMEOUT: Duration = Duration::from_secs(60);

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn q(s: &str) -> Quantity {
    Quantity(s.into())
}

#[tokio::test]
async fn fake_nodes_are_ready_with_capacity() {
    let _kwok = kwok();
    let client = shared().client().await;
    let nodes: Api<Node> = Api::all(client);
    let expected = [
        ("kwok-gpu-0", true),
        ("kwok-gpu-1", true),
        ("kwok-gpu-2", true),
        ("kwok-cpu-0", false),
    ];
    for (name, gpu) in expected {
        let node = nodes
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("node {name}: {e}"));
        let status = node.status.unwrap();
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        assert_eq!(
            ready.map(|c| c.status).as_deref(),
            Some("True"),
            "{name} Ready"
        );
        let cap = status.capacity.unwrap();
        assert_eq!(cap.get("cpu"), Some(&q("16")), "{name} cpu");
        assert_eq!(cap.get("memory"), Some(&q("64Gi")), "{name} memory");
        assert_eq!(cap.get("pods"), Some(&q("110")), "{name} pods");
        assert_eq!(
            cap.get("nvidia.com/gpu"),
            gpu.then(|| q("4")).as_ref(),
            "{name} gpus"
        );
    }
}

#[tokio::test]
async fn pod_becomes_running_with_an_ip() {
    let _kwok = kwok();
    let client = shared().client().await;
    let ns = TestNamespace::new(&client, "pod-running").await;
    let pods: Api<Pod> = Api::namespaced(client, &ns.name);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{
            "name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}
        }]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let (node, ip) = eventually("pod p Running with a podIP", TIMEOUT, async || {
        let p = pods.get("p").await.ok()?;
        let status = p.status?;
        (status.phase.as_deref() == Some("Running")).then_some(())?;
        Some((p.spec?.node_name?, status.pod_ip?))
    })
    .await;
    assert!(
        node.starts_with("kwok-gpu-"),
        "a GPU pod must land on a GPU node, got {node}"
    );
    assert!(!ip.is_empty());
    // kwok's pod-delete stage finalizes deleted pods, as a kubelet would.
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    eventually("pod p deleted", TIMEOUT, async || {
        pods.get_opt("p").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn owned_object_is_garbage_collected() {
    let _kwok = kwok();
    let client = shared().client().await;
    let ns = TestNamespace::new(&client, "gc").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, &ns.name);
    let owner = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: meta("owner"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let child = ConfigMap {
        metadata: ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: owner.metadata.uid.unwrap(),
                ..Default::default()
            }]),
            ..meta("child")
        },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &child).await.unwrap();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    eventually("child ConfigMap garbage-collected", TIMEOUT, async || {
        cms.get_opt("child").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn rbac_refuses_a_service_account_without_a_binding() {
    let cluster = kwok();
    let admin = cluster.client().await;
    let ns = TestNamespace::new(&admin, "rbac").await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns.name);
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: meta("nobody"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let token = cluster
        .service_account_token(&admin, &ns.name, "nobody")
        .await;
    let as_sa: Api<Pod> = Api::namespaced(cluster.client_with_token(&token).await, &ns.name);

    match as_sa.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "expected Forbidden, got {status:?}")
        }
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }

    // Control: the same token works once bound to the `view` ClusterRole, so the 403 was RBAC.
    let rb = RoleBinding {
        metadata: meta("nobody-view"),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "view".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "nobody".into(),
            namespace: Some(ns.name.clone()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, &ns.name)
        .create(&PostParams::default(), &rb)
        .await
        .unwrap();
    eventually(
        "list pods allowed after the RoleBinding",
        TIMEOUT,
        async || as_sa.list(&ListParams::default()).await.ok(),
    )
    .await;
}
