//! The values of the Helm chart `charts/ray`, as a Rust type.
//!
//! This type is the single source of `charts/ray/values.schema.json` (doc
//! comments become descriptions; `ray-operator values-schema` prints it), and
//! `ray-operator render` deserializes the merged values into it before
//! rendering, so a bad value is reported with its key, as `helm` reports it
//! from the schema. What the schema cannot say (headPodType must be a key of
//! podTypes, minWorkers <= maxWorkers) the templates check with `fail`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{LocalObjectReference, Toleration};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::api::{pod_type_name, quantity};

/// The values of the `ray` Helm chart.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Values of the ray Helm chart")]
pub struct Values {
    /// Image of every Ray head and worker pod, e.g. `rayproject/ray:2.47.1`.
    #[schemars(length(min = 1))]
    pub image: String,

    /// Image of the operator.
    #[schemars(length(min = 1))]
    pub operator_image: String,

    /// Pull policy of the Ray pods' and the operator's images.
    pub image_pull_policy: PullPolicy,

    /// Secrets (in the pods' namespace) used to pull the images, e.g. `[{name: regcred}]`.
    #[serde(default)]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Which key of `podTypes` runs the Ray head node.
    #[schemars(length(min = 1))]
    pub head_pod_type: String,

    /// The pod types of the cluster, by name. The key is the pod type's name;
    /// pods are named `<release>-<kebab-cased key>-<random>`.
    #[schemars(extend("propertyNames" = {
        "pattern": pod_type_name::PATTERN,
        "maxLength": pod_type_name::MAX_LEN
    }))]
    pub pod_types: BTreeMap<String, PodTypeValues>,

    /// Extra ports of the head Service `<release>-ray-head`. An entry named like
    /// a default port (client, dashboard, ray-serve, gcs) replaces it; other
    /// names are added.
    #[serde(default)]
    pub head_service_ports: Vec<HeadServicePort>,

    /// Each autoscaling round may launch up to max(5, upscalingSpeed x running
    /// workers) workers of a pod type.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub upscaling_speed: Decimal,

    /// Workers idle this many minutes are removed (never below minWorkers).
    #[schemars(extend("maximum" = 2147483647))]
    pub idle_timeout_minutes: Whole,

    /// Install only the operator, no RayCluster.
    pub operator_only: bool,

    /// Install only a RayCluster, no operator (one must already run).
    pub cluster_only: bool,

    /// Run an operator that manages only the release namespace (Role instead
    /// of ClusterRole; the operator runs in the release namespace).
    pub namespaced_operator: bool,

    /// Namespace of the cluster-scoped operator (ignored when namespacedOperator).
    #[schemars(length(min = 1, max = 63))]
    pub operator_namespace: String,

    /// Resource requests and limits of the operator container.
    pub operator_resources: OperatorResources,

    /// Log line format of the operator: `text` or `json`.
    pub log_format: LogFormat,

    /// Log filter of the operator (`RUST_LOG` syntax), e.g. `info` or
    /// `info,ray_operator=debug`.
    #[schemars(length(min = 1))]
    pub log_level: String,

    /// Let a RayCluster's `spec.gcsAddress` choose where the operator dials
    /// (the operator's `--allow-gcs-address`). For tests whose Ray runs
    /// outside Kubernetes only: whoever may create a RayCluster could point
    /// the operator, and the cluster's Ray token, anywhere.
    pub allow_gcs_address: bool,

    /// Set by Helm for charts used as subcharts; not used by this chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One pod type: the pods of a Ray node kind, and how many may run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("anyOf" = [{"required": ["numCPU"]}, {"required": ["CPU"]}]))]
pub struct PodTypeValues {
    /// The fewest workers of this type (0 for the head's type).
    #[serde(default)]
    #[schemars(extend("maximum" = 2147483647))]
    pub min_workers: Whole,

    /// The most workers of this type; 0 when unset.
    #[serde(default)]
    #[schemars(extend("maximum" = 2147483647))]
    pub max_workers: Whole,

    /// CPUs of each pod (request and limit); may be fractional, e.g. 0.5.
    /// `CPU`, when set, is used instead.
    #[serde(
        rename = "numCPU",
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Decimal", extend("exclusiveMinimum" = 0))]
    pub num_cpu: Option<Decimal>,

    /// Same as numCPU (the later legacy spelling); wins over numCPU when set.
    #[serde(
        rename = "CPU",
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Decimal", extend("exclusiveMinimum" = 0))]
    pub cpu: Option<Decimal>,

    /// GPUs of each pod (limit `nvidia.com/gpu`, set when > 0). `GPU`, when
    /// set, is used instead.
    #[serde(
        rename = "numGPU",
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Whole")]
    pub num_gpu: Option<Whole>,

    /// Same as numGPU (the later legacy spelling); wins over numGPU when set.
    #[serde(
        rename = "GPU",
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Whole")]
    pub gpu: Option<Whole>,

    /// Memory of each pod (request and limit), a Kubernetes quantity like `1Gi`.
    #[schemars(regex(pattern = quantity::PATTERN))]
    pub memory: String,

    /// Resources advertised to Ray, overriding what is detected from the pod
    /// (e.g. `{CPU: 0}` on the head keeps tasks off it), and custom resources.
    #[serde(default)]
    #[schemars(extend("additionalProperties" = {"anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": DECIMAL_PATTERN, "maxLength": 32}
    ]}))]
    pub ray_resources: BTreeMap<String, Decimal>,

    /// Labels a node must carry to run pods of this type.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of pods of this type.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
}

/// A port of the head Service.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeadServicePort {
    /// Port name (a default port of the same name is replaced).
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
    /// Port the Service exposes.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Port number on the head pod; defaults to `port`.
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "u16", range(min = 1, max = 65535))]
    pub target_port: Option<u16>,
}

/// Requests and limits of the operator container.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorResources {
    /// e.g. `{cpu: 100m, memory: 128Mi}`.
    #[serde(default)]
    pub requests: BTreeMap<String, Quantity>,
    /// e.g. `{memory: 256Mi}`.
    #[serde(default)]
    pub limits: BTreeMap<String, Quantity>,
}

/// A Kubernetes quantity: a string like `100m` or `1Gi`, or a number.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Quantity {
    /// A number, e.g. `1` or `0.5`.
    Number(f64),
    /// A quantity string, e.g. `100m`.
    String(String),
}

/// Pull policy of an image.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// Log line format of the operator.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A number, or a string that is one, like `"0.5"`: Helm's `--set` infers
/// only integers and booleans, so `--set numCPU=0.5` gives the chart a string.
/// The templates make it a number again (`float64`). A string is at most 32
/// characters with an exponent of at most two digits, so it is always finite.
/// Numeric bounds (`exclusiveMinimum`) apply to numbers only; for strings the
/// templates check them with `fail`.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(transparent)]
pub struct Decimal(pub f64);

/// A whole number, or a string of at most ten digits without leading zeros,
/// like `"3"` (`--set-string maxWorkers=3`); the templates use `int64`, which
/// would read a leading zero as octal. `maximum` applies to numbers only; for
/// strings the templates check it with `fail`.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct Whole(pub u64);

/// The pattern of a [`Decimal`] string; [`decimal_string`] matches the same.
pub const DECIMAL_PATTERN: &str = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,2})?$";
/// The pattern of a [`Whole`] string; [`whole_string`] matches the same.
pub const WHOLE_PATTERN: &str = "^(0|[1-9][0-9]{0,9})$";

impl JsonSchema for Decimal {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Decimal".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": DECIMAL_PATTERN, "maxLength": 32}
            ]
        })
    }
}

impl JsonSchema for Whole {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Whole".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": WHOLE_PATTERN}
            ]
        })
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or a string that is one like \"0.5\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
                Ok(Decimal(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
                Ok(Decimal(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(Decimal(v as f64))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Decimal, E> {
                from_pattern_string(s, decimal_string, &self).map(Decimal)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Whole;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number >= 0, or a string of at most 10 digits without a leading 0, like \"3\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Whole, E> {
                Ok(Whole(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Whole, E> {
                u64::try_from(v)
                    .map(Whole)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Whole, E> {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Whole, E> {
                from_pattern_string(s, whole_string, &self).map(Whole)
            }
        }
        d.deserialize_any(V)
    }
}

/// The number a string holds when `matches` (its schema pattern) accepts it.
fn from_pattern_string<T: std::str::FromStr, E: de::Error>(
    s: &str,
    matches: fn(&str) -> bool,
    expected: &dyn de::Expected,
) -> Result<T, E> {
    match s.parse() {
        Ok(v) if matches(s) => Ok(v),
        _ => Err(E::invalid_value(Unexpected::Str(s), expected)),
    }
}

/// Present-but-null is an error (as in the schema); absent is `None`.
fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The checks the JSON schema makes that serde cannot: ranges and patterns.
/// Each error names the key, like `podTypes.rayWorkerType.CPU`.
pub fn check(values: &Values) -> Result<(), String> {
    let not_positive = |v: Decimal| v.0.is_nan() || v.0 <= 0.0;
    if not_positive(values.upscaling_speed) {
        return Err("upscalingSpeed: must be > 0".into());
    }
    // The RayCluster's counts are int32.
    let too_big = |v: Whole| v.0 > i32::MAX as u64;
    if too_big(values.idle_timeout_minutes) {
        return Err("idleTimeoutMinutes: must be <= 2147483647".into());
    }
    for (name, pt) in &values.pod_types {
        let key = format!("podTypes.{name}");
        if !pod_type_name::is_valid(name) {
            return Err(format!("{key}: the name must be {}", pod_type_name::RULE));
        }
        for (field, v) in [
            ("minWorkers", pt.min_workers),
            ("maxWorkers", pt.max_workers),
        ] {
            if too_big(v) {
                return Err(format!("{key}.{field}: must be <= 2147483647"));
            }
        }
        if pt.cpu.is_none() && pt.num_cpu.is_none() {
            return Err(format!("{key}: one of numCPU or CPU is required"));
        }
        for (field, v) in [("numCPU", pt.num_cpu), ("CPU", pt.cpu)] {
            if v.is_some_and(not_positive) {
                return Err(format!("{key}.{field}: must be > 0"));
            }
        }
        if !quantity::is_valid(&pt.memory) {
            return Err(format!(
                "{key}.memory: {:?} is not a Kubernetes quantity like 1Gi or 512Mi",
                pt.memory
            ));
        }
        if let Some((r, v)) = pt
            .ray_resources
            .iter()
            .find(|(_, v)| v.0.is_nan() || v.0 < 0.0)
        {
            return Err(format!("{key}.rayResources.{r}: must be >= 0, not {}", v.0));
        }
    }
    for (i, p) in values.head_service_ports.iter().enumerate() {
        let key = format!("headServicePorts[{i}]");
        if p.name.is_empty() || p.name.len() > 15 {
            return Err(format!("{key}.name: must be 1 to 15 characters"));
        }
        if p.port == 0 || p.target_port == Some(0) {
            return Err(format!("{key}: ports must be between 1 and 65535"));
        }
    }
    for (key, s) in [
        ("image", &values.image),
        ("operatorImage", &values.operator_image),
        ("headPodType", &values.head_pod_type),
        ("operatorNamespace", &values.operator_namespace),
        ("logLevel", &values.log_level),
    ] {
        if s.is_empty() {
            return Err(format!("{key}: must not be empty"));
        }
    }
    if values.operator_namespace.len() > 63 {
        return Err("operatorNamespace: must be at most 63 characters".into());
    }
    Ok(())
}

/// [`DECIMAL_PATTERN`], at most 32 characters.
fn decimal_string(s: &str) -> bool {
    let Some(mut rest) = quantity::after_mantissa(s) else {
        return false;
    };
    if let Some(exp) = quantity::after_exponent_sign(rest) {
        let n = quantity::digits(exp);
        if !(1..=2).contains(&n) {
            return false;
        }
        rest = &exp[n..];
    }
    rest.is_empty() && s.len() <= 32
}

/// [`WHOLE_PATTERN`].
fn whole_string(s: &str) -> bool {
    let b = s.as_bytes();
    s == "0" || (!b.is_empty() && b.len() <= 10 && b[0] != b'0' && b.iter().all(u8::is_ascii_digit))
}

/// The JSON schema of the values (draft-07, which Helm's validator reads), as
/// `charts/ray/values.schema.json` holds it.
pub fn schema_json() -> String {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Values>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_is_current() {
        let committed = include_str!("../../charts/ray/values.schema.json");
        assert!(
            committed == schema_json(),
            "charts/ray/values.schema.json is stale: run `make values-schema`"
        );
    }

    #[test]
    fn chart_defaults_are_valid() {
        let v: serde_json::Value =
            serde_yaml_ng::from_str(include_str!("../../charts/ray/values.yaml")).unwrap();
        let values: Values = serde_path_to_error::deserialize(v).unwrap();
        check(&values).unwrap();
    }

    #[test]
    fn numeric_strings() {
        for ok in [
            "0", "0.5", "2.5", "1", "1.", ".5", "1e3", "1E+02", "2.5e-7", "007",
        ] {
            assert!(decimal_string(ok), "{ok}");
        }
        let long = "1".repeat(33);
        for bad in [
            "", ".", "fast", "-1", "+1", "1e", "1e100", "1e-100", "0x1", "1_0", " 1", "inf", "NaN",
            "1.2.3", &long,
        ] {
            assert!(!decimal_string(bad), "{bad}");
        }
        for ok in ["0", "3", "2147483648", "9999999999"] {
            assert!(whole_string(ok), "{ok}");
        }
        for bad in [
            "",
            "03",
            "00",
            "-1",
            "+1",
            "1.0",
            "1e3",
            "10000000000",
            " 1",
            "x",
        ] {
            assert!(!whole_string(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_or_strings_that_are_numbers() {
        let de = |v: serde_json::Value| serde_json::from_value::<PodTypeValues>(v);
        let pt = de(serde_json::json!({
            "minWorkers": "1", "maxWorkers": 3, "numCPU": "0.5", "CPU": 2, "GPU": "1",
            "memory": "1Gi", "rayResources": {"a": "1.5", "b": 0.25}
        }))
        .unwrap();
        assert_eq!((pt.min_workers, pt.max_workers), (Whole(1), Whole(3)));
        assert_eq!(
            (pt.num_cpu, pt.cpu),
            (Some(Decimal(0.5)), Some(Decimal(2.0)))
        );
        assert_eq!(pt.gpu, Some(Whole(1)));
        assert_eq!(pt.ray_resources["a"], Decimal(1.5));
        for bad in [
            serde_json::json!({"numCPU": "fast", "memory": "1Gi"}),
            serde_json::json!({"numCPU": 1, "maxWorkers": "03", "memory": "1Gi"}),
            serde_json::json!({"numCPU": 1, "maxWorkers": 1.5, "memory": "1Gi"}),
            serde_json::json!({"numCPU": 1, "maxWorkers": -1, "memory": "1Gi"}),
            serde_json::json!({"numCPU": 1, "GPU": "1.0", "memory": "1Gi"}),
        ] {
            assert!(de(bad.clone()).is_err(), "{bad}");
        }
    }
}
