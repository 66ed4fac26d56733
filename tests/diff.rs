//! `ray-operator diff` against the local control plane: exit 0 when the
//! cluster matches the rendered manifests, 1 with a unified diff when not.

mod support;

use std::process::Command;

use support::cluster::{TestNamespace, kwok, shared};
use support::operator::{BIN, install_crd, kubectl, render};

fn diff(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("diff")
        .args(args)
        .env("KUBECONFIG", &shared().kubeconfig)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_reports_what_would_change() {
    let _kwok = kwok();
    install_crd();
    let client = shared().client().await;
    let ns = TestNamespace::new(&client, "diff").await;
    let set = "clusterOnly=true";
    kubectl(
        &["apply", "-n", &ns.name, "-f", "-"],
        &render(&["ex", "-n", &ns.name, "--set", set]),
    );

    let (code, out, err) = diff(&["ex", "-n", &ns.name, "--set", set]);
    assert_eq!((code, out.as_str()), (0, ""), "stderr: {err}");

    let (code, out, _) = diff(&[
        "ex",
        "-n",
        &ns.name,
        "--set",
        "clusterOnly=true,podTypes.rayWorkerType.maxWorkers=7",
    ]);
    assert_eq!(code, 1);
    let header = format!(
        "--- live/RayCluster/{0}/ex\n+++ rendered/RayCluster/{0}/ex\n",
        ns.name
    );
    assert!(out.starts_with(&header), "{out}");
    assert!(
        out.contains("-  maxWorkers: 3\n+  maxWorkers: 7\n"),
        "{out}"
    );

    let (code, out, _) = diff(&["new", "-n", &ns.name, "--set", set]);
    assert_eq!(code, 1, "a missing object differs");
    assert!(out.contains("+kind: RayCluster"), "{out}");

    let (code, out, err) = diff(&[
        "ex",
        "-n",
        &ns.name,
        "--set",
        "clusterOnly=true,headPodType=nope",
    ]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("headPodType"), "{err}");
}
