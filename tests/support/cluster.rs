//! A real local control plane for integration tests.
//!
//! [`kwok()`] makes sure the control plane of `hack/cluster-up.sh` is running and returns a
//! [`Claim`] on it: a handle to the [`Cluster`] that the test holds until it ends.
//! [`TestNamespace`] gives each test its own namespace, deleted on drop.
//!
//! Tests run alike under `cargo test` (one process per test binary, its tests on threads) and
//! `cargo nextest` (one process per test, many at once), so whatever keeps them apart is a file
//! lock (`flock(2)`) in the cluster's state dir, never a static of the process:
//! - `up.lock`: one `hack/cluster-up.sh` (or `cluster-down.sh`) per state dir at a time;
//! - `use.lock`: held shared by every test that uses the cluster ([`kwok()`]), exclusive by a test
//!   that needs it to itself ([`kwok_alone()`]: a cluster-scoped operator sees every namespace),
//!   and by whoever stops a private control plane ([`PrivateKwok`]);
//! - `turn.lock`: taken briefly before `use.lock`, and held by a test waiting for `use.lock` to
//!   itself, so tests that come later wait behind it instead of starving it.
//!
//! The `OnceLock`s below only cache, per process, that the cluster was started.
//!
//! ```ignore
//! mod support;
//! #[tokio::test]
//! async fn something() {
//!     let cluster = support::cluster::kwok();
//!     let client = cluster.client().await;
//!     let ns = support::cluster::TestNamespace::new(&client, "something").await;
//!     // ... Api::<Pod>::namespaced(client.clone(), &ns.name) ...
//! }
//! ```
//!
//! Two profiles, never one control plane: [`shared()`] has kwok's fake nodes (`.cluster/kwok`),
//! [`real()`] real nodes (`.cluster`). Both are left running after the tests; `make
//! cluster-down` stops them.

use std::{
    collections::hash_map::RandomState,
    fs::{File, OpenOptions},
    hash::{BuildHasher, Hasher},
    ops::Deref,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{Namespace, ServiceAccount},
};
use kube::{
    Client, Config,
    api::{Api, ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};

/// A running control plane: its state dir and admin kubeconfig.
#[derive(Debug)]
pub struct Cluster {
    /// The state dir (`.cluster/` unless `CLUSTER_DIR` says otherwise).
    pub dir: PathBuf,
    /// Admin (cluster-admin) kubeconfig.
    pub kubeconfig: PathBuf,
}

/// A test's claim on a running control plane: a lock on its state dir's
/// `use.lock` (shared or exclusive) for as long as the test holds it. Derefs
/// to the [`Cluster`].
pub struct Claim {
    cluster: &'static Cluster,
    _use: File,
}

impl Deref for Claim {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        self.cluster
    }
}

/// The kwok control plane, shared with the other tests that run at the same
/// time (in this process or others); see [`shared()`]. Hold the claim for the
/// whole test. Blocks while a test has the cluster to itself.
pub fn kwok() -> Claim {
    Claim {
        _use: claim(&kwok_dir(), false),
        cluster: shared(),
    }
}

/// The kwok control plane to this test alone: waits until no other test uses
/// it, and keeps the others waiting until the claim drops. For a test that
/// sees what every other test does (a cluster-scoped operator).
pub fn kwok_alone() -> Claim {
    Claim {
        _use: claim(&kwok_dir(), true),
        cluster: shared(),
    }
}

/// The real-node control plane ([`real()`]) to this test alone: real pods
/// and Ray clusters are heavy, and two cores run few at once.
pub fn real_alone() -> Claim {
    Claim {
        _use: claim(&real_dir(), true),
        cluster: real(),
    }
}

/// Locks `<dir>/use.lock`, shared or exclusive, passing through `turn.lock`
/// (held while waiting, so an exclusive waiter is not starved by shared
/// claims that come after it). Blocks the calling thread: call it first thing
/// in a test, before anything runs on the test's runtime.
fn claim(dir: &Path, exclusive: bool) -> File {
    std::fs::create_dir_all(dir).expect("create the cluster state dir");
    let open = |name: &str| {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(name))
            .unwrap_or_else(|e| panic!("open {}: {e}", dir.join(name).display()))
    };
    let turn = open("turn.lock");
    turn.lock().expect("lock turn.lock");
    let lock = open("use.lock");
    if exclusive {
        lock.lock().expect("lock use.lock");
    } else {
        lock.lock_shared().expect("lock use.lock shared");
    }
    drop(turn);
    lock
}

/// The kwok control plane (fake nodes: pods are Running at once and run
/// nothing), started once per test process (a cache: between processes,
/// `up.lock` keeps `hack/cluster-up.sh` to one at a time, and a running
/// control plane is reused). For tests of what the operator writes; a test
/// takes it through [`kwok()`] or [`kwok_alone()`], which hold `use.lock`;
/// helpers that a test calls while it holds its claim use this.
///
/// Its state dir is `$KWOK_CLUSTER_DIR` (default `<repo>/.cluster/kwok`), on
/// ports from `$KWOK_PORT_BASE` (default 26473; give a second checkout's
/// private control plane another base), so no pod of these tests lands on a real node and an
/// operator left running by `make demo` never sees them.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let port_base = std::env::var("KWOK_PORT_BASE").unwrap_or_else(|_| "26473".into());
        up(kwok_dir(), "kwok", &port_base)
    })
}

/// `$KWOK_CLUSTER_DIR`, default `<repo>/.cluster/kwok`.
fn kwok_dir() -> PathBuf {
    std::env::var_os("KWOK_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cluster/kwok"))
}

/// `$CLUSTER_DIR`, default `<repo>/.cluster`.
fn real_dir() -> PathBuf {
    std::env::var_os("CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cluster"))
}

/// Makes [`kwok()`] a kwok control plane of this test binary's own, for a
/// test that changes what every other test would see (a permissive CRD, the
/// API server stopped): state dir `$<env>_CLUSTER_DIR` (default
/// `<repo>/.cluster/<name>`), ports from `$<env>_PORT_BASE` (default
/// `port_base`). Call it before anything else of the test, and take the
/// [`kwok()`] claim after it (so the claim drops first); the control plane is
/// stopped when the returned guard drops and no other test holds a claim.
pub fn private_kwok(name: &str, env: &str, port_base: u16) -> PrivateKwok {
    let dir = std::env::var_os(format!("{env}_CLUSTER_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cluster").join(name));
    let port_base = std::env::var(format!("{env}_PORT_BASE")).unwrap_or(port_base.to_string());
    // SAFETY: the binary's only test calls this before any thread reads the environment.
    unsafe {
        std::env::set_var("KWOK_CLUSTER_DIR", &dir);
        std::env::set_var("KWOK_PORT_BASE", port_base);
    }
    PrivateKwok { dir }
}

/// A private kwok control plane ([`private_kwok`]), stopped (by PID) on drop
/// so it does not load the machine while later test binaries run; left
/// running for inspection when the test failed, and for the tests that still
/// hold a claim on it (the last one out stops it).
pub struct PrivateKwok {
    pub dir: PathBuf,
}

impl Drop for PrivateKwok {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "the control plane in {0} is left running for inspection; stop it with: CLUSTER_DIR={0} hack/cluster-down.sh",
                self.dir.display()
            );
            return;
        }
        // Exclusive, without waiting: a test that holds a claim stops it itself when done.
        let Ok(lock) = File::open(self.dir.join("use.lock")) else {
            return;
        };
        if lock.try_lock().is_err() {
            eprintln!(
                "the control plane in {} is still in use by another test; left to it",
                self.dir.display()
            );
            return;
        }
        let _ = Command::new(repo().join("hack/cluster-down.sh"))
            .env("CLUSTER_DIR", &self.dir)
            .output();
        drop(lock);
    }
}

/// The control plane with real nodes (kubelet, containerd, CNI, CoreDNS):
/// pods run real containers; started once per test process, like [`shared()`].
/// A test takes it through [`real_alone()`]. State dir `$CLUSTER_DIR` (default
/// `<repo>/.cluster`).
pub fn real() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| up(real_dir(), "real", "26443"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `hack/cluster-up.sh` for a profile (a no-op when it runs already).
/// Blocking (it may build binaries and start processes); panics with the
/// script's output when it fails.
fn up(dir: PathBuf, nodes: &str, port_base: &str) -> Cluster {
    std::fs::create_dir_all(&dir).expect("create the cluster state dir");
    // The same lock file cluster-up.sh takes itself when not told we hold it.
    let lock = File::create(dir.join("up.lock")).expect("open up.lock");
    lock.lock().expect("lock up.lock");
    let out = Command::new(repo().join("hack/cluster-up.sh"))
        .env("CLUSTER_DIR", &dir)
        .env("CLUSTER_NODES", nodes)
        .env("CLUSTER_PORT_BASE", port_base)
        .env("CLUSTER_LOCK_HELD", "1")
        .output()
        .expect("run hack/cluster-up.sh");
    drop(lock);
    assert!(
        out.status.success(),
        "hack/cluster-up.sh ({nodes} nodes, {}) failed ({}):\n{}{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Cluster {
        kubeconfig: dir.join("kubeconfig"),
        dir,
    }
}

impl Cluster {
    /// An admin client. Create one per test: a client belongs to the runtime it was made on.
    pub async fn client(&self) -> Client {
        client_from(Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig")).await
    }

    /// A client that authenticates with a bearer token only (e.g. a ServiceAccount token from
    /// [`Cluster::service_account_token`]); same server and CA as the admin kubeconfig.
    pub async fn client_with_token(&self, token: &str) -> Client {
        let admin = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let cluster = admin.clusters[0].cluster.as_ref().expect("cluster entry");
        let yaml = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: c, cluster: {{server: {:?}, certificate-authority: {:?}}}}}]\n\
             users: [{{name: u, user: {{token: {:?}}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n",
            cluster.server.as_deref().unwrap_or_default(),
            cluster.certificate_authority.as_deref().unwrap_or_default(),
            token,
        );
        client_from(Kubeconfig::from_yaml(&yaml).expect("token kubeconfig")).await
    }

    /// A short-lived token for `namespace/name` from the TokenRequest API.
    pub async fn service_account_token(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> String {
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let req = TokenRequest {
            spec: Some(TokenRequestSpec {
                // Long enough for the longest bench's operator (10,000
                // clusters created, then measured): a static token in a
                // kubeconfig is not renewed.
                expiration_seconds: Some(4 * 3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let tr = sas
            .create_token_request(name, &PostParams::default(), &req)
            .await
            .expect("TokenRequest");
        tr.status
            .and_then(|s| s.token)
            .expect("TokenRequest returned a token")
    }

    /// Directory of the control plane binaries (kubectl, ...), from `hack/build-k8s.sh`.
    pub fn bin_dir(&self) -> PathBuf {
        let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/build-k8s.sh"))
            .arg("--print-bin-dir")
            .output()
            .expect("run hack/build-k8s.sh --print-bin-dir");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }
}

async fn client_from(kubeconfig: Kubeconfig) -> Client {
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

/// A namespace `t-<test>-<random>` for one test; deleted (without waiting) on drop.
pub struct TestNamespace {
    pub name: String,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
}

impl TestNamespace {
    /// Creates the namespace and waits for its `default` ServiceAccount (pods need it).
    pub async fn new(client: &Client, test: &str) -> TestNamespace {
        let cluster = shared();
        let name = namespace_name(test);
        let nss: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        nss.create(&PostParams::default(), &ns)
            .await
            .expect("create test namespace");
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        for _ in 0..100 {
            if sas
                .get_opt("default")
                .await
                .expect("get ServiceAccount")
                .is_some()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        TestNamespace {
            name,
            kubeconfig: cluster.kubeconfig.clone(),
            kubectl: cluster.bin_dir().join("kubectl"),
        }
    }
}

impl Drop for TestNamespace {
    /// Best effort: asks for deletion and returns (kubectl bounded by a 10s request timeout).
    fn drop(&mut self) {
        let _ = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .arg("--request-timeout=10s")
            .output();
    }
}

/// `t-<test as a DNS label>-<6 hex chars>`, at most 63 characters.
fn namespace_name(test: &str) -> String {
    let mut label: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    label.truncate(50);
    let label = label.trim_matches('-');
    format!("t-{label}-{}", random_hex6())
}

/// 6 random hex digits, to make names unique.
pub fn random_hex6() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{:06x}", h.finish() & 0xff_ffff)
}
