//! The bodies of the fuzz targets, written once: `fuzz_targets/` hands them
//! libFuzzer's inputs (`make fuzz`), and `tests/fuzz_regressions.rs` includes
//! this file to run them over every kept input (`make test`). Each panics only
//! on a bug: bad input must get an error, never a panic.

use std::sync::LazyLock;

use arbitrary::{Result as Arbitrary, Unstructured};
use ray_operator::api::ClusterObject;
use ray_operator::chart::render::{self, ValuesFile, set};
use ray_operator::naming::NodeKind;
use ray_operator::operator::reconcile::{build, validate};
use serde_json::{Map, Value, json};

/// Each line as one `--set` and, separately, as one `--set-string` argument.
pub fn set_parser(data: &[u8]) {
    // clap hands the parser only UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for strings in [false, true] {
        // Each line goes into what the lines before it left, as repeated
        // flags do; a failed line may leave a half-set map for the next.
        let mut values = Map::new();
        for line in text.lines() {
            let _ = set::parse_into(line, &mut values, strings);
        }
        if strings {
            assert_untyped(&Value::Object(values), text);
        }
    }
}

/// `--set-string` types nothing: every value it sets is a string, and the only
/// nulls are the gaps of lists set past their end (`a[2]=x`).
fn assert_untyped(v: &Value, input: &str) {
    match v {
        Value::Object(m) => m.values().for_each(|v| {
            assert!(!v.is_null(), "--set-string set a null from {input:?}");
            assert_untyped(v, input)
        }),
        Value::Array(a) => a.iter().for_each(|v| assert_untyped(v, input)),
        Value::Bool(_) | Value::Number(_) => panic!("--set-string set {v} from {input:?}"),
        Value::Null | Value::String(_) => {}
    }
}

/// A values file in which lines `--set <arg>` and `--set-string <arg>` are
/// those flags instead, merged over the chart's values.yaml and checked. Values
/// that pass are rendered, and a RayCluster the chart renders from checked
/// values must be one the operator accepts.
pub fn values(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (mut file, mut set, mut set_string) = (String::new(), Vec::new(), Vec::new());
    for line in text.split_inclusive('\n') {
        let arg = |flag: &str| Some(line.strip_prefix(flag)?.trim_end_matches('\n').to_string());
        if let Some(arg) = arg("--set-string ") {
            set_string.push(arg);
        } else if let Some(arg) = arg("--set ") {
            set.push(arg);
        } else {
            file.push_str(line);
        }
    }
    let file = ValuesFile {
        name: "values.yaml".into(),
        text: file,
    };
    let Ok(values) = render::merged_values([Ok(file)], &set, &set_string) else {
        return;
    };
    let Ok(docs) = render::documents("release-name", "default", values) else {
        return;
    };
    for doc in docs
        .iter()
        .filter(|d| d.source.ends_with("/raycluster.yaml"))
    {
        let object = serde_yaml_ng::from_str(&doc.content);
        let object = object.unwrap_or_else(|e| panic!("the chart rendered bad YAML: {e}"));
        if let Err(e) = watched_cluster(object) {
            panic!("the chart rendered a RayCluster the operator rejects: {e}");
        }
    }
}

/// A RayCluster object as YAML or JSON, as the watch would deliver it.
pub fn raycluster(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(object) = serde_yaml_ng::from_str(text) {
        let _ = watched_cluster(object);
    }
}

/// A real RayCluster, edited by the input: fields replaced, removed, added,
/// list items removed or repeated, or one field (or every number) set alike
/// everywhere, with values chosen to hit the edges (int32 limits, odd
/// quantities, wrong types).
pub fn raycluster_edits(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(seed) = u.choose(&CLUSTERS[..]) else {
        return;
    };
    let mut object = seed.clone();
    while !u.is_empty() {
        let edited = match u.ratio(1, 4) {
            Ok(true) => set_everywhere(&mut object, &mut u),
            Ok(false) => edit(&mut object, &mut u),
            Err(e) => Err(e),
        };
        if edited.is_err() {
            break;
        }
    }
    let _ = watched_cluster(object);
}

/// The example clusters the repository ships and tests with.
static CLUSTERS: LazyLock<[Value; 2]> = LazyLock::new(|| {
    [
        include_str!("../../tests/fixtures/legacy_example_cluster.yaml"),
        include_str!("../../components/example_cluster.yaml"),
    ]
    .map(|text| serde_yaml_ng::from_str(text).expect("the example clusters are YAML"))
});

/// What the operator does with a watched object before it writes anything:
/// parse it, validate it, build the head Service and a pod of every type.
/// Whatever it rejects must be rejected naming the field.
fn watched_cluster(object: Value) -> Result<(), String> {
    let cluster = ClusterObject::from_value(object)
        .0
        .map_err(|e| e.describe())?;
    let cluster = validate::validate(&cluster).map_err(|e| {
        let message = e.to_string();
        assert!(
            message.starts_with("spec.") || message.starts_with("metadata."),
            "the error does not name the field: {message}"
        );
        message
    })?;
    build::head_service(&cluster);
    build::pod(&cluster, &cluster.head, NodeKind::Head, "head");
    for worker in &cluster.workers {
        build::pod(&cluster, worker, NodeKind::Worker, "worker");
    }
    Ok(())
}

/// One edit somewhere in `node`: walks down to a random place, then changes it.
fn edit(node: &mut Value, u: &mut Unstructured) -> Arbitrary<()> {
    match node {
        Value::Object(m) if !m.is_empty() && u.ratio(4, 5)? => {
            let key = m.keys().nth(u.choose_index(m.len())?).cloned();
            let key = key.expect("an index below the length");
            match u.int_in_range(0..=7)? {
                0 => {
                    m.remove(&key);
                }
                1 => {
                    let name = u.choose(&FIELDS)?.to_string();
                    m.insert(name, new_value(u)?);
                }
                _ => edit(&mut m[&key], u)?,
            }
        }
        Value::Array(a) if !a.is_empty() && u.ratio(4, 5)? => {
            let i = u.choose_index(a.len())?;
            match u.int_in_range(0..=7)? {
                0 => {
                    a.remove(i);
                }
                1 => a.push(a[i].clone()),
                _ => edit(&mut a[i], u)?,
            }
        }
        _ => *node = new_value(u)?,
    }
    Ok(())
}

/// Sets one field, or every number, to one value wherever it occurs. Equal
/// numbers pass every `min <= max` check, so they reach the sums and totals.
fn set_everywhere(object: &mut Value, u: &mut Unstructured) -> Arbitrary<()> {
    fn set(node: &mut Value, field: Option<&str>, value: &Value) {
        match node {
            Value::Number(_) if field.is_none() => *node = value.clone(),
            Value::Object(m) => m.iter_mut().for_each(|(k, v)| {
                if field == Some(k.as_str()) {
                    *v = value.clone();
                } else {
                    set(v, field, value);
                }
            }),
            Value::Array(a) => a.iter_mut().for_each(|v| set(v, field, value)),
            _ => {}
        }
    }
    let field = if u.arbitrary()? {
        Some(*u.choose(&FIELDS)?)
    } else {
        None
    };
    set(object, field, &new_value(u)?);
    Ok(())
}

/// Field names of a RayCluster and its pod configs, for edits that add one.
const FIELDS: [&str; 16] = [
    "maxWorkers",
    "minWorkers",
    "headPodType",
    "podTypes",
    "name",
    "rayResources",
    "podConfig",
    "spec",
    "metadata",
    "containers",
    "image",
    "resources",
    "limits",
    "requests",
    "nvidia.com/gpu",
    "headServicePorts",
];

/// Strings that mean something somewhere in a RayCluster.
const WORDS: [&str; 14] = [
    "",
    "0",
    "-1",
    "500m",
    "1.5",
    "1Gi",
    "1e308",
    "1E",
    "NaN",
    "rayHeadType",
    "rayWorkerType",
    "rayproject/ray:2.47.1",
    "cpu",
    "memory",
];

/// Numbers at the edges of the fields' types (int32 counts, f64 amounts).
const NUMBERS: [i64; 8] = [
    0,
    1,
    -1,
    i32::MAX as i64,
    i32::MIN as i64,
    i32::MAX as i64 + 1,
    i64::MAX,
    i64::MIN,
];

fn new_value(u: &mut Unstructured) -> Arbitrary<Value> {
    Ok(match u.int_in_range(0..=7)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.choose(&NUMBERS)?),
        3 => json!(u.arbitrary::<i64>()?),
        4 => json!(u.arbitrary::<f64>()?),
        5 => json!(u.choose(&WORDS)?),
        6 => json!(u.arbitrary::<String>()?),
        _ => {
            if u.arbitrary()? {
                json!([])
            } else {
                json!({})
            }
        }
    })
}
