//! The chart, compiled into the binary: the handlebars templates of
//! `templates/` (twins of `charts/ray/templates/`, parsed at build time), the
//! chart's `values.yaml`, `Chart.yaml` and CRD.

use handlebars::Handlebars;
use serde::Deserialize;

/// The chart's templates that produce manifests, in Helm's (file name)
/// order; `compiled` holds their parsed form.
pub const TEMPLATES: &[&str] = &[
    "operator_cluster_scoped.yaml",
    "operator_namespaced.yaml",
    "raycluster.yaml",
];

/// The chart's default values (`values.yaml`), as JSON made at build time.
pub const VALUES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/values.json"));

/// `Chart.yaml`, as JSON made at build time.
const CHART_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/chart.json"));

/// The CRD file Helm installs from `crds/` (`--include-crds`).
pub const CRD: (&str, &str) = (
    "cluster_crd.yaml",
    include_str!("../../../charts/ray/crds/cluster_crd.yaml"),
);

/// The chart's name and versions, as `.Chart` holds them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMeta {
    pub name: String,
    pub version: String,
    pub app_version: String,
}

pub fn chart() -> ChartMeta {
    serde_json::from_str(CHART_JSON).expect("the build checked charts/ray/Chart.yaml")
}

/// A registry with every template and define, compiled at build time, and
/// the helpers.
pub fn registry() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.register_escape_fn(handlebars::no_escape);
    super::helpers::register(&mut hb);
    for (name, template) in super::compiled::compiled() {
        hb.register_template(name, template);
    }
    hb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_crd_is_current() {
        assert!(
            CRD.1 == crate::api::crd_yaml(),
            "charts/ray/crds/cluster_crd.yaml is stale: run `cargo run -- crd > charts/ray/crds/cluster_crd.yaml`"
        );
    }

    #[test]
    fn chart_json_is_the_chart_yaml() {
        let yaml = |text| serde_yaml_ng::from_str::<serde_json::Value>(text).unwrap();
        let json = |text| serde_json::from_str::<serde_json::Value>(text).unwrap();
        let values = include_str!("../../../charts/ray/values.yaml");
        assert_eq!(json(VALUES_JSON), yaml(values));
        let chart = include_str!("../../../charts/ray/Chart.yaml");
        assert_eq!(json(CHART_JSON), yaml(chart));
    }

    #[test]
    fn every_go_template_has_a_twin() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/ray/templates");
        let mut go: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        go.sort();
        let hbs: Vec<&str> = TEMPLATES.to_vec();
        assert_eq!(go, hbs);
    }

    #[test]
    fn every_go_define_has_a_twin() {
        let go = include_str!("../../../charts/ray/templates/_helpers.tpl");
        let go_names: Vec<&str> = go
            .split("{{- define \"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        let helpers = include_str!("../../../templates/_helpers.tpl");
        let hbs_names: Vec<&str> = super::super::defines::defines(helpers)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(go_names, hbs_names);
    }
}
