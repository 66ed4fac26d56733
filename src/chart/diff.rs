//! `ray-operator diff`: what `render` makes against what the cluster holds,
//! as a unified diff per object, like `kubectl diff`.
//!
//! Each rendered object is applied server-side with `dryRun=All`, so the
//! "after" side is what the API server would store (defaults, admission and
//! other managers' fields included), and compared with the live object.

use std::process::ExitCode;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use serde_json::Value;
use similar::TextDiff;

use crate::chart::render::{self, RenderArgs};

/// The field manager of the dry-run apply; nothing is stored under it.
const DIFF_MANAGER: &str = concat!(crate::naming::operator_name!(), "-diff");

/// Fields the server writes on every object; they would only add noise.
const NOISE: [&str; 5] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
];

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[error("{source_file}: not a Kubernetes object: {message}")]
    Object {
        source_file: String,
        message: String,
    },
    #[error("connecting to Kubernetes: {0}")]
    Connect(#[source] kube::Error),
    #[error("{object}: {source}")]
    Api { object: String, source: kube::Error },
}

/// Runs `ray-operator diff`: exit 0 when the cluster matches, 1 when it
/// differs (the diff is on stdout), 2 on errors.
pub fn run(args: &RenderArgs) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(diff(args)) {
        Ok(text) if text.is_empty() => ExitCode::SUCCESS,
        Ok(text) => {
            print!("{text}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The diff of every rendered object against the cluster; empty when none differs.
pub async fn diff(args: &RenderArgs) -> Result<String, DiffError> {
    let rendered = render::render(args)?;
    let client = kube::Client::try_default()
        .await
        .map_err(DiffError::Connect)?;
    let mut out = String::new();
    for doc in &rendered {
        let object: DynamicObject =
            serde_yaml_ng::from_str(&doc.content).map_err(|e| DiffError::Object {
                source_file: doc.source.clone(),
                message: e.to_string(),
            })?;
        let (label, live, after) = compare(&client, object, &args.namespace).await?;
        out.push_str(&unified(&label, &live, &after));
    }
    Ok(out)
}

/// The live object and the dry-run result, both as YAML without noise.
async fn compare(
    client: &kube::Client,
    object: DynamicObject,
    default_ns: &str,
) -> Result<(String, String, String), DiffError> {
    let types = object.types.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    let label = format!("{}/{}", types.kind, name);
    let api_error = |source| DiffError::Api {
        object: label.clone(),
        source,
    };
    let gvk = GroupVersionKind::try_from(&types).map_err(|e| DiffError::Object {
        source_file: label.clone(),
        message: e.to_string(),
    })?;
    let (resource, caps) = discovery::pinned_kind(client, &gvk)
        .await
        .map_err(api_error)?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns = object
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| default_ns.to_string());
            Api::namespaced_with(client.clone(), &ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let live = api.get_opt(&name).await.map_err(api_error)?;
    let params = PatchParams::apply(DIFF_MANAGER).force().dry_run();
    let after = api
        .patch(&name, &params, &Patch::Apply(&object))
        .await
        .map_err(api_error)?;
    let label = match &object.metadata.namespace {
        Some(ns) => format!("{}/{ns}/{name}", types.kind),
        None => label,
    };
    Ok((
        label,
        live.map(|l| to_yaml(&l)).unwrap_or_default(),
        to_yaml(&after),
    ))
}

/// YAML of an object without the fields the server changes on every write,
/// and without its status (the operator's, not the manifest's).
fn to_yaml(object: &DynamicObject) -> String {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in NOISE {
                meta.remove(field);
            }
        }
    }
    serde_yaml_ng::to_string(&value).unwrap_or_default()
}

/// A unified diff with `kubectl diff`-like headers; empty when equal.
fn unified(label: &str, live: &str, after: &str) -> String {
    if live == after {
        return String::new();
    }
    TextDiff::from_lines(live, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{label}"), &format!("rendered/{label}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_objects_give_no_diff() {
        assert_eq!(unified("Service/ns/x", "a: 1\n", "a: 1\n"), "");
    }

    #[test]
    fn a_difference_is_a_unified_diff_with_headers() {
        let text = unified("Service/ns/x", "a: 1\nb: 2\n", "a: 1\nb: 3\n");
        assert!(
            text.starts_with("--- live/Service/ns/x\n+++ rendered/Service/ns/x\n"),
            "{text}"
        );
        assert!(text.contains("-b: 2\n+b: 3\n"), "{text}");
    }

    #[test]
    fn noise_and_status_are_dropped() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "x", "uid": "u", "resourceVersion": "7", "managedFields": [], "labels": {"a": "b"}},
            "status": {"loadBalancer": {}}
        }))
        .unwrap();
        let yaml = to_yaml(&object);
        assert!(
            !yaml.contains("uid") && !yaml.contains("resourceVersion") && !yaml.contains("status"),
            "{yaml}"
        );
        assert!(yaml.contains("a: b"));
    }
}
