//! Real `helm` for the tests, and the matrix of value cases the chart is rendered with
//! (`tests/render_parity.rs` compares `ray-operator render` with `helm template` on each;
//! `tests/manifests.rs` sends each to the API server).

use std::path::PathBuf;

/// The `helm` binary: `$HELM`, then `${RAY_OPERATOR_CACHE:-~/.cache/ray-operator}/helm/bin/helm`
/// (what `make helm` installs), then `PATH`. Panics saying `make helm` when there is none.
pub fn helm() -> PathBuf {
    if let Some(h) = std::env::var_os("HELM") {
        return h.into();
    }
    let cache = std::env::var_os("RAY_OPERATOR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ray-operator")
        });
    let cached = cache.join("helm/bin/helm");
    if cached.is_file() {
        return cached;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("helm"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "helm not found ($HELM, {}, PATH): run `make helm`",
            cached.display()
        )
    })
}

/// One way of rendering the chart: `helm template RELEASE charts/ray ARGS`.
///
/// The release namespace and `operatorNamespace` are fields of their own, so a test
/// against a real API server can put them into namespaces of its own ([`Case::args_in`]).
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub release: &'static str,
    /// `-n`, if given.
    pub namespace: Option<&'static str>,
    /// `--set operatorNamespace=`, if given.
    pub operator_namespace: Option<&'static str>,
    /// The other arguments (`--set`, `-f tests/fixtures/...`, ...), relative to the repo root.
    pub args: &'static [&'static str],
}

impl Case {
    /// The arguments after the release name, with the case's own namespaces.
    pub fn args(&self) -> Vec<String> {
        self.args_in(self.namespace, self.operator_namespace)
    }

    /// The arguments after the release name, with these namespaces instead of the case's.
    pub fn args_in(
        &self,
        namespace: Option<&str>,
        operator_namespace: Option<&str>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(ns) = namespace {
            out.extend(["-n".to_string(), ns.to_string()]);
        }
        if let Some(ns) = operator_namespace {
            out.extend(["--set".to_string(), format!("operatorNamespace={ns}")]);
        }
        out.extend(self.args.iter().map(|a| a.to_string()));
        out
    }
}

const fn case(name: &'static str, release: &'static str, args: &'static [&'static str]) -> Case {
    Case {
        name,
        release,
        namespace: None,
        operator_namespace: None,
        args,
    }
}

/// Every valid case of the render matrix.
pub const CASES: &[Case] = &[
    case("defaults", "release-name", &[]),
    case(
        "operatorOnly",
        "ray-operator",
        &["--set", "operatorOnly=true"],
    ),
    Case {
        namespace: Some("ray"),
        ..case(
            "clusterOnly",
            "example-cluster",
            &["--set", "clusterOnly=true"],
        )
    },
    Case {
        namespace: Some("ray"),
        ..case(
            "namespacedOperator",
            "release-name",
            &["--set", "namespacedOperator=true"],
        )
    },
    Case {
        namespace: Some("ray"),
        ..case(
            "namespaced operator only",
            "ray-operator",
            &["--set", "namespacedOperator=true,operatorOnly=true"],
        )
    },
    Case {
        operator_namespace: Some("ray-system"),
        ..case("operatorNamespace", "release-name", &[])
    },
    case(
        "three worker types",
        "release-name",
        &["-f", "tests/fixtures/three-worker-types.yaml"],
    ),
    case(
        "CPU/GPU spelling",
        "release-name",
        &["-f", "tests/fixtures/cpu-gpu-spelling.yaml"],
    ),
    case(
        "--set",
        "release-name",
        &[
            "-f",
            "tests/fixtures/three-worker-types.yaml",
            "--set",
            "podTypes.rayWorkerType.maxWorkers=7,podTypes.gpuWorker.numGPU=2",
            "--set",
            "podTypes.rayWorkerType.tolerations[0].key=dedicated,podTypes.rayWorkerType.tolerations[0].operator=Exists",
            "--set",
            "podTypes.rayWorkerType.nodeSelector.pool=a\\,b,imagePullSecrets[1].name=other",
            "--set",
            "image=rayproject/ray:2.60.0,upscalingSpeed=3,logFormat=json",
            "--set",
            "podTypes.rayWorkerType=null,podTypes.rayHeadType.rayResources.CPU=0",
        ],
    ),
    case(
        "--set-string",
        "release-name",
        &[
            "--set-string",
            "podTypes.rayWorkerType.nodeSelector.dedicated=true,podTypes.rayWorkerType.memory=2Gi",
            "--set",
            "podTypes.rayWorkerType.nodeSelector.other=1",
            "--set-string",
            "podTypes.rayWorkerType.nodeSelector.other=01,logLevel=debug",
        ],
    ),
    // Helm's --set infers only integers and booleans: 0.5 and 2.5 arrive as
    // strings, which the chart takes for numbers (issue 11, item 5).
    case(
        "--set numCPU=0.5",
        "release-name",
        &["--set", "podTypes.rayWorkerType.numCPU=0.5"],
    ),
    case(
        "--set upscalingSpeed=2.5",
        "release-name",
        &["--set", "upscalingSpeed=2.5"],
    ),
    case(
        "--set minWorkers=1",
        "release-name",
        &["--set", "podTypes.rayWorkerType.minWorkers=1"],
    ),
    case(
        "--set-string maxWorkers=3",
        "release-name",
        &["--set-string", "podTypes.rayWorkerType.maxWorkers=3"],
    ),
    case(
        "--set-string rayResources",
        "release-name",
        &[
            "--set-string",
            "podTypes.rayWorkerType.rayResources.spot=1.5,podTypes.rayHeadType.rayResources.CPU=0",
            "--set-string",
            "podTypes.rayWorkerType.GPU=1,idleTimeoutMinutes=10",
        ],
    ),
    case(
        "numbers as strings",
        "release-name",
        &["-f", "tests/fixtures/numbers-as-strings.yaml"],
    ),
    // A Ray 1.x values file, once operatorImage names the operator (item 6).
    case(
        "legacy values",
        "release-name",
        &[
            "-f",
            "tests/fixtures/legacy-values.yaml",
            "--set",
            "operatorImage=rayproject/ray-operator:0.1.0",
        ],
    ),
    Case {
        namespace: Some("ml-team"),
        ..case("namespace", "release-name", &[])
    },
    Case {
        namespace: Some("ml-team"),
        operator_namespace: Some("ray-system"),
        ..case("release name", "my-ray.v2", &[])
    },
    case("--include-crds", "release-name", &["--include-crds"]),
    case(
        "allowGcsAddress",
        "release-name",
        &["--set", "allowGcsAddress=true"],
    ),
];
