//! `ray-operator render` against real `helm template` on the same chart and values.
//!
//! Both outputs are parsed as multi-document YAML and compared as sets of
//! objects keyed by kind/namespace/name. Needs helm: `make helm` installs it
//! (found through $HELM, then ~/.cache/ray-operator/helm/bin, then PATH).

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::Value;
use support::helm::{CASES, Case, helm};

const RENDER: &str = env!("CARGO_BIN_EXE_ray-operator");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `helm template RELEASE charts/ray ARGS` and `ray-operator render RELEASE ARGS`.
fn both(release: &str, args: &[&str]) -> (Output, Output) {
    let helm = Command::new(helm())
        .current_dir(ROOT)
        .args(["template", release, "charts/ray"])
        .args(args)
        .output()
        .expect("run helm");
    let render = Command::new(RENDER)
        .current_dir(ROOT)
        .args(["render", release])
        .args(args)
        .output()
        .expect("run ray-operator render");
    (helm, render)
}

/// Objects by `kind namespace/name`.
fn objects(stream: &[u8], who: &str) -> BTreeMap<String, Value> {
    let text = String::from_utf8_lossy(stream);
    let mut out = BTreeMap::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc)
            .unwrap_or_else(|e| panic!("{who} printed invalid YAML: {e}\n{text}"));
        if v.is_null() {
            continue;
        }
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let key = format!(
            "{} {}/{}",
            s("/kind"),
            s("/metadata/namespace"),
            s("/metadata/name")
        );
        assert!(out.insert(key.clone(), v).is_none(), "{who}: {key} twice");
    }
    out
}

/// [`assert_parity`] on a case of the shared matrix (tests/support/helm.rs).
fn assert_case(case: &Case) {
    let args = case.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_parity(case.name, case.release, &args);
}

fn assert_parity(name: &str, release: &str, args: &[&str]) {
    let (helm, render) = both(release, args);
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        helm.status.success(),
        "{name}: helm failed: {}",
        stderr(&helm)
    );
    assert!(
        render.status.success(),
        "{name}: render failed: {}",
        stderr(&render)
    );
    let (h, r) = (
        objects(&helm.stdout, "helm"),
        objects(&render.stdout, "render"),
    );
    assert!(!h.is_empty(), "{name}: helm rendered nothing");
    if h != r {
        let pretty = |m: &BTreeMap<String, Value>| serde_json::to_string_pretty(m).unwrap();
        let diff = similar::TextDiff::from_lines(pretty(&h), pretty(&r))
            .unified_diff()
            .header("helm template", "ray-operator render")
            .to_string();
        panic!("{name}: render differs from helm template:\n{diff}");
    }
}

/// Every case of the shared matrix (tests/support/helm.rs), so a new case
/// gets its parity check without new code. The cases run on threads of
/// their own, and every failing case is reported, not only the first.
#[test]
fn every_case_of_the_matrix() {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = CASES
            .iter()
            .map(|case| {
                scope.spawn(move || {
                    std::panic::catch_unwind(|| assert_case(case)).map_err(|panic| {
                        panic
                            .downcast_ref::<String>()
                            .cloned()
                            .unwrap_or_else(|| format!("{}: panicked", case.name))
                    })
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|run| run.join().expect("a case thread").err())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// A number given as a string reaches the RayCluster as a number, in both.
#[test]
fn numbers_from_strings_are_numbers() {
    let args = [
        "-f",
        "tests/fixtures/numbers-as-strings.yaml",
        "--set",
        "upscalingSpeed=2.5,podTypes.rayWorkerType.numCPU=0.5",
        "--set-string",
        "podTypes.rayWorkerType.maxWorkers=3,podTypes.rayWorkerType.rayResources.spot=1.5",
    ];
    let (helm, render) = both("release-name", &args);
    for (who, out) in [("helm", helm), ("render", render)] {
        assert!(
            out.status.success(),
            "{who}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let objects = objects(&out.stdout, who);
        let spec = &objects["RayCluster default/release-name"]["spec"];
        let number = |v: &Value, want: f64, what: &str| {
            assert_eq!(
                v.as_f64(),
                Some(want),
                "{who}: {what} is {v}, not the number {want}"
            );
        };
        number(&spec["upscalingSpeed"], 2.5, "upscalingSpeed");
        number(&spec["idleTimeoutMinutes"], 10.0, "idleTimeoutMinutes");
        number(&spec["maxWorkers"], 3.0, "maxWorkers");
        let pod_types = spec["podTypes"].as_array().unwrap();
        let (head, worker) = (&pod_types[0], &pod_types[1]);
        assert_eq!(worker["name"], "rayWorkerType");
        number(&head["rayResources"]["CPU"], 0.0, "head rayResources.CPU");
        number(&worker["minWorkers"], 1.0, "minWorkers");
        number(&worker["maxWorkers"], 3.0, "maxWorkers");
        number(&worker["rayResources"]["spot"], 1.5, "rayResources.spot");
        number(
            &worker["rayResources"]["memory"],
            2.5e9,
            "rayResources.memory",
        );
        let resources = &worker["podConfig"]["spec"]["containers"][0]["resources"];
        number(&resources["requests"]["cpu"], 0.5, "numCPU");
        number(&resources["limits"]["cpu"], 0.5, "numCPU");
        number(&resources["limits"]["nvidia.com/gpu"], 1.0, "GPU");
        let head_cpu = &head["podConfig"]["spec"]["containers"][0]["resources"]["limits"]["cpu"];
        number(head_cpu, 1.5, "head CPU");
    }
}

/// `allowGcsAddress` turns on the operator's flag, and only then.
#[test]
fn allow_gcs_address() {
    let flag = "--allow-gcs-address=true";
    let allowed = support::operator::render(&["release-name", "--set", "allowGcsAddress=true"]);
    assert_eq!(allowed.matches(flag).count(), 1, "{allowed}");
    let default = support::operator::render(&["release-name"]);
    assert!(!default.contains("allow-gcs-address"), "{default}");
}

/// Both must fail; render names the problem on stderr and prints nothing.
fn assert_both_fail(name: &str, args: &[&str], expect: &[&str]) {
    assert_both_fail_in(name, args, expect, &[]);
}

/// [`assert_both_fail`], and helm's error says each of `helm_says`.
fn assert_both_fail_in(name: &str, args: &[&str], expect: &[&str], helm_says: &[&str]) {
    let (helm, render) = both("release-name", args);
    assert!(!helm.status.success(), "{name}: helm accepted it");
    assert!(!render.status.success(), "{name}: render accepted it");
    assert!(render.stdout.is_empty(), "{name}: render printed to stdout");
    let err = String::from_utf8_lossy(&render.stderr);
    for e in expect {
        assert!(
            err.contains(e),
            "{name}: render's error does not say {e:?}:\n{err}"
        );
    }
    let helm_err = String::from_utf8_lossy(&helm.stderr);
    for e in helm_says {
        assert!(
            helm_err.contains(e),
            "{name}: helm's error does not say {e:?}:\n{helm_err}"
        );
    }
}

#[test]
fn numbers_that_are_not_fail_in_both() {
    assert_both_fail(
        "non-numeric upscalingSpeed",
        &["--set", "upscalingSpeed=fast"],
        &["upscalingSpeed", "fast"],
    );
    assert_both_fail(
        "zero upscalingSpeed as a string",
        &["--set-string", "upscalingSpeed=0"],
        &["upscalingSpeed: must be > 0"],
    );
    assert_both_fail(
        "zero numCPU as a string",
        &["--set-string", "podTypes.rayWorkerType.numCPU=0.0"],
        &["podTypes.rayWorkerType.numCPU: must be > 0"],
    );
    assert_both_fail(
        "negative CPU as a string",
        &["--set", "podTypes.rayWorkerType.CPU=-0.5"],
        &["podTypes.rayWorkerType.CPU"],
    );
    assert_both_fail(
        "fractional count as a string",
        &["--set", "podTypes.rayWorkerType.maxWorkers=3.5"],
        &["podTypes.rayWorkerType.maxWorkers"],
    );
    assert_both_fail(
        // int64 would read it as octal.
        "count with a leading zero",
        &["--set-string", "podTypes.rayWorkerType.maxWorkers=010"],
        &["podTypes.rayWorkerType.maxWorkers"],
    );
    assert_both_fail(
        "count string above the RayCluster's int32",
        &[
            "--set-string",
            "podTypes.rayWorkerType.maxWorkers=3000000000",
        ],
        &["podTypes.rayWorkerType.maxWorkers: must be <= 2147483647"],
    );
    assert_both_fail(
        "minWorkers string above int32",
        &[
            "--set-string",
            "podTypes.rayWorkerType.minWorkers=2147483648,podTypes.rayWorkerType.maxWorkers=2147483648",
        ],
        &["podTypes.rayWorkerType.minWorkers: must be <= 2147483647"],
    );
    assert_both_fail(
        "idleTimeoutMinutes string above int32",
        &["--set-string", "idleTimeoutMinutes=2147483648"],
        &["idleTimeoutMinutes: must be <= 2147483647"],
    );
    assert_both_fail(
        "count string too long to be a number",
        &[
            "--set-string",
            "podTypes.rayWorkerType.maxWorkers=99999999999999999999",
        ],
        &["podTypes.rayWorkerType.maxWorkers"],
    );
    assert_both_fail(
        "non-numeric rayResources amount",
        &[
            "--set-string",
            "podTypes.rayWorkerType.rayResources.spot=lots",
        ],
        &["podTypes.rayWorkerType.rayResources.spot"],
    );
    assert_both_fail(
        // ParseFloat would overflow to 0.
        "rayResources amount out of range",
        &[
            "--set-string",
            "podTypes.rayWorkerType.rayResources.spot=1e999",
        ],
        &["podTypes.rayWorkerType.rayResources.spot"],
    );
    assert_both_fail(
        "fractional GPU",
        &["--set", "podTypes.rayWorkerType.GPU=1.5"],
        &["podTypes.rayWorkerType.GPU"],
    );
}

#[test]
fn ray_image_as_operator_image_fails_in_both() {
    let says = [
        "operatorImage",
        "is Ray's image",
        "set operatorImage to rayproject/ray-operator:0.1.0",
    ];
    assert_both_fail_in(
        "legacy values file",
        &["-f", "tests/fixtures/legacy-values.yaml"],
        &says,
        &says,
    );
    for image in [
        "rayproject/ray",
        "rayproject/ray:2.47.1",
        "docker.io/rayproject/ray:nightly",
        "rayproject/ray@sha256:0123456789abcdef",
    ] {
        let set = format!("operatorImage={image}");
        assert_both_fail_in(image, &["--set", &set], &says, &says);
    }
    // Without an operator the image is not used; other images are the user's choice.
    for set in [
        "operatorImage=rayproject/ray:nightly,clusterOnly=true",
        "operatorImage=example.com/rayproject/ray-operator:dev",
    ] {
        assert_parity(set, "release-name", &["--set", set]);
    }
}

#[test]
fn bad_values_fail_in_both() {
    assert_both_fail(
        "unknown headPodType",
        &["--set", "headPodType=nope"],
        &["headPodType", "nope"],
    );
    assert_both_fail(
        "minWorkers > maxWorkers",
        &["--set", "podTypes.rayWorkerType.minWorkers=5"],
        &["podTypes.rayWorkerType.minWorkers"],
    );
    assert_both_fail(
        "negative count",
        &["--set", "podTypes.rayWorkerType.maxWorkers=-1"],
        &["podTypes.rayWorkerType.maxWorkers"],
    );
    assert_both_fail(
        "count above the RayCluster's int32",
        &["--set", "podTypes.rayWorkerType.maxWorkers=3000000000"],
        &["podTypes.rayWorkerType.maxWorkers"],
    );
    assert_both_fail(
        "non-numeric CPU",
        &["--set", "podTypes.rayHeadType.numCPU=two"],
        &["podTypes.rayHeadType.numCPU"],
    );
    assert_both_fail(
        "non-numeric GPU",
        &["--set-string", "podTypes.rayWorkerType.GPU=one"],
        &["podTypes.rayWorkerType.GPU"],
    );
    assert_both_fail(
        "wrong type",
        &["--set", "operatorOnly=yes"],
        &["operatorOnly"],
    );
    assert_both_fail(
        "unknown key",
        &["--set", "podTypes.rayWorkerType.maxWorker=3"],
        &["maxWorker"],
    );
    assert_both_fail(
        "bad memory",
        &["--set", "podTypes.rayWorkerType.memory=lots"],
        &["podTypes.rayWorkerType.memory"],
    );
    assert_both_fail(
        "malformed YAML",
        &["-f", "tests/fixtures/malformed.yaml"],
        &["tests/fixtures/malformed.yaml:4:"],
    );
    assert_both_fail(
        "missing file",
        &["-f", "tests/fixtures/absent.yaml"],
        &["tests/fixtures/absent.yaml"],
    );
    assert_both_fail(
        "bad --set syntax",
        &["--set", "podTypes.rayWorkerType"],
        &["--set", "has no value"],
    );
    assert_both_fail(
        "bad --set list",
        &["--set", "imagePullSecrets={a,b"],
        &["--set", "list must terminate"],
    );
}

/// Characters YAML does not allow raw (DEL, the C1 controls but NEL, U+FFFE):
/// helm fails on them in its schema check, render names the key. The other
/// control characters, which both escape, render alike.
#[test]
fn characters_yaml_does_not_allow_fail_in_both() {
    for c in ['\u{7f}', '\u{9f}', '\u{fffe}'] {
        let name = format!("U+{:04X}", c as u32);
        let helm_says = ["control characters are not allowed"];
        assert_both_fail_in(
            &format!("{name} in a key"),
            &[
                "--set",
                &format!("podTypes.rayHeadType.rayResources.C{c}X=1"),
            ],
            &["podTypes.rayHeadType.rayResources: the key", &name],
            &helm_says,
        );
        assert_both_fail_in(
            &format!("{name} in a value"),
            &[
                "--set",
                &format!("podTypes.rayWorkerType.nodeSelector.pool=a{c}b"),
            ],
            &["podTypes.rayWorkerType.nodeSelector.pool: ", &name],
            &helm_says,
        );
    }
    let set = "podTypes.rayWorkerType.nodeSelector.pool=a\u{1}b\u{1b}c\u{85}d";
    assert_parity(
        "C0 controls and NEL in a value",
        "release-name",
        &["--set", set],
    );
}

#[test]
fn bad_release_name_fails_in_both() {
    let (helm, render) = both("Bad_Name", &[]);
    assert!(!helm.status.success() && !render.status.success());
    assert!(render.stdout.is_empty());
    assert!(String::from_utf8_lossy(&render.stderr).contains("invalid release name"));
}

#[test]
fn output_dir_like_helm() {
    let dir = tempfile::tempdir().unwrap();
    let (h, r) = (dir.path().join("helm"), dir.path().join("render"));
    let args = |d: &std::path::Path| {
        vec![
            "-f".to_string(),
            "tests/fixtures/three-worker-types.yaml".into(),
            "--output-dir".into(),
            d.display().to_string(),
        ]
    };
    let (helm, render) = (
        Command::new(helm())
            .current_dir(ROOT)
            .args(["template", "x", "charts/ray"])
            .args(args(&h))
            .output()
            .unwrap(),
        Command::new(RENDER)
            .current_dir(ROOT)
            .args(["render", "x"])
            .args(args(&r))
            .output()
            .unwrap(),
    );
    assert!(
        helm.status.success() && render.status.success(),
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
    for file in ["operator_cluster_scoped.yaml", "raycluster.yaml"] {
        let read = |d: &std::path::Path| std::fs::read(d.join("ray/templates").join(file)).unwrap();
        assert_eq!(
            objects(&read(&h), "helm"),
            objects(&read(&r), "render"),
            "{file}"
        );
    }
    assert!(!r.join("ray/templates/operator_namespaced.yaml").exists());
}
