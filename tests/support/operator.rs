//! Runs `ray-operator run` against the local control plane, as the chart's
//! ServiceAccount (so a permission the chart forgot fails the test), and
//! renders and applies the chart's manifests for a test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::cluster::{Cluster, shared};
use super::probe::{self, Memory, Metrics};

pub const BIN: &str = env!("CARGO_BIN_EXE_ray-operator");

/// `ray-operator render` with these arguments; panics with its stderr on failure.
pub fn render(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("render")
        .args(args)
        .output()
        .expect("run ray-operator render");
    assert!(
        out.status.success(),
        "render {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `kubectl` (from the control plane's build) with the admin kubeconfig, run in
/// the repository root with `stdin` piped in: its stdout, or its stderr on failure.
pub fn try_kubectl(args: &[&str], stdin: &str) -> Result<String, String> {
    let cluster = shared();
    let mut child = Command::new(cluster.bin_dir().join("kubectl"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// [`try_kubectl`], panicking with kubectl's stderr on failure.
pub fn kubectl(args: &[&str], stdin: &str) -> String {
    try_kubectl(args, stdin).unwrap_or_else(|err| panic!("kubectl {args:?} failed: {err}"))
}

/// Objects a test applied that outlive its namespace (cluster-scoped: a
/// Node, a webhook configuration): deleted on drop, also when the test
/// fails, so they never reach into the tests that follow.
pub struct Applied {
    manifest: String,
}

impl Applied {
    /// `kubectl apply`s the manifest.
    pub fn new(manifest: &str) -> Applied {
        kubectl(&["apply", "-f", "-"], manifest);
        Applied {
            manifest: manifest.to_string(),
        }
    }
}

impl Drop for Applied {
    /// Asks for deletion and returns (bounded by a 10s request timeout).
    fn drop(&mut self) {
        let deleted = try_kubectl(
            &[
                "delete",
                "--ignore-not-found",
                "--wait=false",
                "--request-timeout=10s",
                "-f",
                "-",
            ],
            &self.manifest,
        );
        if let Err(err) = deleted {
            eprintln!("could not delete what the test applied: {err}");
        }
    }
}

/// Installs (or updates) the RayCluster CRD from the chart and waits until it is served.
pub fn install_crd() {
    let crd = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/ray/crds/cluster_crd.yaml"),
    )
    .unwrap();
    kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &crd,
    );
    wait_for_crd();
}

/// Waits until the RayCluster CRD is served.
pub fn wait_for_crd() {
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/rayclusters.cluster.ray.io",
            "--timeout=30s",
        ],
        "",
    );
}

/// A running `ray-operator run`; killed on drop. Its stderr goes to a file.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    /// Where it serves /healthz, /readyz and /metrics.
    health_port: u16,
    kubeconfig: PathBuf,
    args: Vec<String>,
}

impl Operator {
    /// Installs the chart's operator RBAC (namespaced into `namespace` when
    /// `namespaced`, else cluster-scoped with its ServiceAccount in
    /// `namespace`) under release `release`, and starts the operator as that
    /// ServiceAccount with `extra` flags.
    pub async fn start(
        release: &str,
        namespace: &str,
        namespaced: bool,
        extra: &[&str],
    ) -> Operator {
        let cluster = shared();
        let mut sets = vec!["operatorOnly=true".to_string()];
        if namespaced {
            sets.push("namespacedOperator=true".into());
        } else {
            sets.push(format!("operatorNamespace={namespace}"));
        }
        let manifests = render(&[release, "-n", namespace, "--set", &sets.join(",")]);
        // The Deployment would only run a fake pod under kwok; the test runs the binary instead.
        let rbac: Vec<&str> = manifests
            .split("\n---")
            .filter(|doc| !doc.contains("kind: Deployment"))
            .collect();
        kubectl(&["apply", "-f", "-"], &rbac.join("\n---\n"));
        let account = if release.contains("ray-operator") {
            release.to_string()
        } else {
            format!("{release}-ray-operator")
        };
        let admin = cluster.client().await;
        let token = cluster
            .service_account_token(&admin, namespace, &account)
            .await;
        let kubeconfig = token_kubeconfig(cluster, &token, namespace);
        let health_port = super::ray::free_port();
        let mut args = vec![
            "run".to_string(),
            "--health-port".into(),
            health_port.to_string(),
        ];
        if namespaced {
            args.extend(["--namespace".to_string(), namespace.to_string()]);
        } else {
            args.extend(["--lease-namespace".to_string(), namespace.to_string()]);
        }
        // kwok pods run no Ray: unless a test points the autoscaler at a real
        // head, an unreachable GCS must not count as a failure.
        if !extra.iter().any(|a| a.starts_with("--autoscaler")) {
            args.push("--autoscaler=false".into());
        }
        // Nor can Ray's health be read from them.
        if !extra.iter().any(|a| a.starts_with("--ray-health")) {
            args.push("--ray-health=false".into());
        }
        // The autoscaler tests point clusters at a Ray head beside the control plane.
        if !extra.iter().any(|a| a.starts_with("--allow-gcs-address")) {
            args.push("--allow-gcs-address=true".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = std::env::temp_dir().join(format!("ray-operator-{release}-{namespace}.log"));
        let mut operator = Operator {
            child: None,
            log,
            health_port,
            kubeconfig,
            args,
        };
        operator.spawn();
        operator
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BIN)
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info")
            // A fixed identity, so a restarted operator takes its Lease back at once.
            .env("HOSTNAME", self.log.file_stem().unwrap())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ray-operator run");
        self.child = Some(child);
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().expect("wait on the operator").is_none())
    }

    /// Starts the operator again with the same flags and identity.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Everything the operator logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` on the health port: (status code, body); `None` while it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        probe::http_get(self.health_port, path).await
    }

    /// The operator's /metrics; `None` while it does not answer.
    pub async fn metrics(&self) -> Option<Metrics> {
        let (code, body) = self.get("/metrics").await?;
        (code == 200).then(|| Metrics::parse(&body))
    }

    /// The operator process' memory now.
    pub fn memory(&self) -> Memory {
        let child = self.child.as_ref().expect("the operator runs");
        Memory::of(child.id())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- operator log {} ---\n{}",
                self.log.display(),
                self.logs()
            );
        }
    }
}

/// A kubeconfig file that authenticates with `token` only.
fn token_kubeconfig(cluster: &Cluster, token: &str, namespace: &str) -> PathBuf {
    let admin = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).unwrap();
    let c = admin.clusters[0].cluster.as_ref().unwrap();
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: {:?}, certificate-authority: {:?}}}}}]\n\
         users: [{{name: u, user: {{token: {:?}}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u, namespace: {namespace}}}}}]\ncurrent-context: x\n",
        c.server.as_deref().unwrap_or_default(),
        c.certificate_authority.as_deref().unwrap_or_default(),
        token
    );
    let path = std::env::temp_dir().join(format!("kubeconfig-{namespace}-{}", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The Events with `reason` in a namespace.
pub async fn events(
    client: &kube::Client,
    ns: &str,
    reason: &str,
) -> Vec<k8s_openapi::api::events::v1::Event> {
    let api: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(client.clone(), ns);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}
