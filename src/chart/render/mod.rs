//! `ray-operator render`: the chart's manifests, as `helm template` prints them,
//! without Helm.
//!
//! values (`merge`, `set`) -> checked against [`crate::chart::values::Values`] ->
//! handlebars templates (`templates`; `helpers` over `go_format`) -> documents sorted and
//! printed like Helm's. `tests/render_parity.rs` runs both and compares.

mod compiled;
#[cfg(test)]
mod defines;
mod go_format;
mod helpers;
mod merge;
pub mod set;
mod templates;
mod unprintable;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Map, Value, json};

const EXAMPLES: &str = "\
Examples:
  ray-operator render                                   # like `helm template charts/ray`
  ray-operator render example-cluster -n ray -f my-values.yaml
  ray-operator render ray-operator --set operatorOnly=true --include-crds | kubectl apply -f -
  ray-operator render --set podTypes.rayWorkerType.maxWorkers=10 --set-string image=rayproject/ray:2.47.1
  ray-operator render my-ray --output-dir out/          # writes out/ray/templates/<file>.yaml

Values are merged like Helm's: the chart's values.yaml, then each -f in order,
then each --set, then each --set-string; `null` deletes a key.";

/// Flags of `ray-operator render`, a subset of `helm template`'s.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = EXAMPLES)]
pub struct RenderArgs {
    /// Release name: the RayCluster's name, and the prefix of the operator's objects.
    #[arg(default_value = "release-name")]
    pub release_name: String,

    /// Release namespace: of the RayCluster and of a namespaced operator.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,

    /// Values file (YAML); repeat or separate with commas; `-` reads stdin.
    #[arg(
        short = 'f',
        long = "values",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub values: Vec<PathBuf>,

    /// Set values: `a.b=1,c[0]=x,d={p,q}`; escape `,` and `.` with `\`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Set values, always as strings.
    #[arg(long = "set-string", value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,

    /// Also print the CRD (charts/ray/crds), first.
    #[arg(long)]
    pub include_crds: bool,

    /// Write each template's output to DIR/ray/templates/<file> instead of stdout.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

/// Why rendering failed; each names the file, flag or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "release name {0:?}: invalid release name, must match regex ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ and the length must not be longer than 53"
    )]
    ReleaseName(String),
    #[error("{path}: {source}")]
    ReadValues {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: invalid YAML: {message}")]
    Yaml {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: a values file must hold a map, not {kind}")]
    NotAMap { path: String, kind: &'static str },
    #[error("failed parsing --{flag} {arg:?}: {message}")]
    Set {
        flag: &'static str,
        arg: String,
        message: String,
    },
    #[error("values don't meet the chart's schema: {0}")]
    Schema(String),
    #[error("{0}")]
    Fail(String),
    #[error("template {file}: {message}")]
    Template { file: String, message: String },
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// A rendered file: its source path (`ray/templates/x.yaml`) and documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub source: String,
    pub content: String,
}

/// Runs `ray-operator render`; errors go to stderr and nothing to stdout.
pub fn run(args: &RenderArgs) -> ExitCode {
    let result = render(args).and_then(|docs| match &args.output_dir {
        Some(dir) => write_dir(dir, &docs),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(to_stream(&docs).as_bytes())
                .map_err(|source| RenderError::Write {
                    path: "stdout".into(),
                    source,
                })
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Renders the chart as `helm template` would: one entry per document, CRDs
/// first when asked, then Helm's install order by kind.
pub fn render(args: &RenderArgs) -> Result<Vec<Rendered>, RenderError> {
    check_release_name(&args.release_name)?;
    let files = args
        .values
        .iter()
        .map(PathBuf::as_path)
        .map(read_values_file);
    let values = merged_values(files, &args.set, &args.set_string)?;
    let mut docs = documents(&args.release_name, &args.namespace, values)?;
    if args.include_crds {
        let (file, text) = templates::CRD;
        let crd = Rendered {
            source: format!("{}/crds/{file}", templates::chart().name),
            content: text.to_string(),
        };
        docs.insert(0, crd);
    }
    Ok(docs)
}

/// A values file as read: its name as errors show it, and its text.
#[derive(Debug, Clone)]
pub struct ValuesFile {
    pub name: String,
    pub text: String,
}

/// Reads one `-f` file (`-` is stdin).
fn read_values_file(path: &Path) -> Result<ValuesFile, RenderError> {
    let name = path.display().to_string();
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|source| RenderError::ReadValues {
        path: name.clone(),
        source,
    })?;
    Ok(ValuesFile { name, text })
}

/// The values Helm would render with: the files merged in order, then every
/// `--set`, then every `--set-string`, over the chart's defaults, and checked
/// against the chart's values type. Files come as read, in order, so a file
/// is read only after the ones before it parsed and the first error is Helm's.
pub fn merged_values(
    files: impl IntoIterator<Item = Result<ValuesFile, RenderError>>,
    set: &[String],
    set_string: &[String],
) -> Result<Map<String, Value>, RenderError> {
    let defaults = chart_defaults();
    let mut user = Map::new();
    for file in files {
        let file = file?;
        merge::merge_maps(&mut user, read_yaml(&file.name, &file.text)?);
    }
    for (flag, args, strings) in [("set", set, false), ("set-string", set_string, true)] {
        for arg in args {
            set::parse_into(arg, &mut user, strings).map_err(|message| RenderError::Set {
                flag,
                arg: arg.clone(),
                message,
            })?;
        }
    }
    let values = merge::coalesce(&defaults, user);
    check_values(&values)?;
    Ok(values)
}

/// The chart's templates rendered with checked `values`, sorted in Helm's
/// install order (no CRDs).
pub fn documents(
    release_name: &str,
    namespace: &str,
    values: Map<String, Value>,
) -> Result<Vec<Rendered>, RenderError> {
    let chart = templates::chart();
    let root = handlebars::Context::from(json!({
        "Values": values,
        "Release": {
            "Name": release_name,
            "Namespace": namespace,
            "Service": "Helm",
            "IsInstall": true,
            "IsUpgrade": false,
            "Revision": 1,
        },
        "Chart": {"Name": chart.name, "Version": chart.version, "AppVersion": chart.app_version},
    }));
    let hb = templates::registry();
    let mut docs = Vec::new();
    for file in templates::TEMPLATES {
        let text = hb
            .render_with_context(file, &root)
            .map_err(|e| template_error(file, e))?;
        let source = format!("{}/templates/{file}", chart.name);
        docs.extend(split_documents(&text).map(|content| Rendered {
            source: source.clone(),
            content,
        }));
    }
    docs.sort_by_key(|d| kind_order(&d.content));
    Ok(docs)
}

/// The chart's `values.yaml` as Helm reads it: every number a float.
fn chart_defaults() -> Map<String, Value> {
    let mut v: Value =
        serde_json::from_str(templates::VALUES_JSON).expect("the build checked values.yaml");
    merge::floats(&mut v);
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A values file as Helm reads it: a map, every number a float.
fn read_yaml(path: &str, text: &str) -> Result<Map<String, Value>, RenderError> {
    let mut v: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let loc = e.location();
        RenderError::Yaml {
            path: path.to_string(),
            line: loc.as_ref().map_or(0, |l| l.line()),
            column: loc.as_ref().map_or(0, |l| l.column()),
            message: e.to_string(),
        }
    })?;
    merge::floats(&mut v);
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(RenderError::NotAMap {
            path: path.to_string(),
            kind: match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a bool",
            },
        }),
    }
}

fn check_values(values: &Map<String, Value>) -> Result<(), RenderError> {
    unprintable::check(values).map_err(RenderError::Schema)?;
    let mut v = Value::Object(values.clone());
    merge::integers(&mut v);
    let typed: crate::chart::values::Values = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        RenderError::Schema(if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        })
    })?;
    crate::chart::values::check(&typed).map_err(RenderError::Schema)
}

fn template_error(file: &str, e: handlebars::RenderError) -> RenderError {
    let mut message = e.to_string();
    if let handlebars::RenderErrorReason::Other(m) = e.reason() {
        if let Some(m) = m.strip_prefix(helpers::FAIL_PREFIX) {
            return RenderError::Fail(m.to_string());
        }
        message = m.clone();
    }
    RenderError::Template {
        file: file.to_string(),
        message,
    }
}

/// Helm's `ValidateReleaseName`.
fn check_release_name(name: &str) -> Result<(), RenderError> {
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if name.is_empty() || name.len() > 53 || !name.split('.').all(label_ok) {
        return Err(RenderError::ReleaseName(name.to_string()));
    }
    Ok(())
}

/// Helm's `SplitManifests`: documents separated by `---` lines, trimmed, empty ones dropped.
fn split_documents(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut docs = vec![String::new()];
    for line in text.trim().split_inclusive('\n') {
        if line.starts_with("---") && line[3..].trim().is_empty() {
            docs.push(String::new());
        } else {
            docs.last_mut().expect("never empty").push_str(line);
        }
    }
    docs.into_iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
}

/// Helm's `InstallOrder` rank of a document's kind; unknown kinds go last, by kind.
fn kind_order(doc: &str) -> (usize, String) {
    const ORDER: &[&str] = &[
        "PriorityClass",
        "Namespace",
        "NetworkPolicy",
        "ResourceQuota",
        "LimitRange",
        "PodSecurityPolicy",
        "PodDisruptionBudget",
        "ServiceAccount",
        "Secret",
        "SecretList",
        "ConfigMap",
        "StorageClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleList",
        "ClusterRoleBinding",
        "ClusterRoleBindingList",
        "Role",
        "RoleList",
        "RoleBinding",
        "RoleBindingList",
        "Service",
        "DaemonSet",
        "Pod",
        "ReplicationController",
        "ReplicaSet",
        "Deployment",
        "HorizontalPodAutoscaler",
        "StatefulSet",
        "Job",
        "CronJob",
        "IngressClass",
        "Ingress",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ];
    let kind = doc
        .lines()
        .find_map(|l| l.strip_prefix("kind:"))
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    match ORDER.iter().position(|k| *k == kind) {
        Some(i) => (i, String::new()),
        None => (ORDER.len(), kind),
    }
}

/// The documents as `helm template` prints them.
pub fn to_stream(docs: &[Rendered]) -> String {
    docs.iter()
        .map(|d| format!("---\n# Source: {}\n{}\n", d.source, d.content))
        .collect()
}

/// Like `helm template --output-dir`: DIR/<source> per file, each written to a
/// temporary file first and renamed, so no file is ever half-written.
fn write_dir(dir: &Path, docs: &[Rendered]) -> Result<(), RenderError> {
    let mut files: Vec<(&str, String)> = Vec::new();
    for d in docs {
        let text = format!("---\n# Source: {}\n{}\n", d.source, d.content);
        match files.iter_mut().find(|(s, _)| *s == d.source) {
            Some((_, t)) => t.push_str(&text),
            None => files.push((&d.source, text)),
        }
    }
    let mut out = std::io::stdout().lock();
    for (source, text) in files {
        let path = dir.join(source);
        let err = |source| RenderError::Write {
            path: path.display().to_string(),
            source,
        };
        let parent = path.parent().expect("a source has a directory");
        std::fs::create_dir_all(parent).map_err(err)?;
        let name = path
            .file_name()
            .expect("a source has a file name")
            .to_string_lossy();
        let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                err(e)
            })?;
        writeln!(out, "wrote {}", path.display()).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DEFAULT_HEAD_START_RAY_COMMANDS, DEFAULT_WORKER_START_RAY_COMMANDS};
    use crate::naming::OPERATOR;

    /// The chart carries the operator's name and the default start commands
    /// literally; they must be the operator's (`naming`, `api`).
    #[test]
    fn chart_literals_are_the_operators() {
        let values = merged_values([], &[], &[]).unwrap();
        let docs = documents("release-name", "default", values).unwrap();
        let objects: Vec<Value> = docs
            .iter()
            .map(|d| serde_yaml_ng::from_str(&d.content).unwrap())
            .collect();
        let find = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap();
        let deployment = find("Deployment");
        assert_eq!(
            deployment["metadata"]["name"],
            format!("release-name-{OPERATOR}")
        );
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["name"], OPERATOR);
        assert_eq!(container["command"][0], OPERATOR);
        let spec = &find("RayCluster")["spec"];
        assert_eq!(
            spec["headStartRayCommands"],
            json!(DEFAULT_HEAD_START_RAY_COMMANDS)
        );
        assert_eq!(
            spec["workerStartRayCommands"],
            json!(DEFAULT_WORKER_START_RAY_COMMANDS)
        );
    }

    #[test]
    fn split_like_helm() {
        let docs: Vec<String> = split_documents("\n\na: 1\n---\n\n---  \nb: 2\n--- \n").collect();
        assert_eq!(docs, ["a: 1", "b: 2"]);
    }

    #[test]
    fn release_names() {
        for ok in ["release-name", "a", "a.b-c", &"x".repeat(53)] {
            assert!(check_release_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", "a_b", &"x".repeat(54)] {
            assert!(check_release_name(bad).is_err(), "{bad}");
        }
    }
}
