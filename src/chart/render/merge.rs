//! Merging values the way Helm does (`pkg/cli/values` and `pkg/chartutil/coalesce.go`).
//!
//! 1. The `-f` files are deep-merged in order (`mergeMaps`: maps merge,
//!    anything else replaces; `null` is kept for now).
//! 2. Every `--set` is parsed into that map in command-line order, then every
//!    `--set-string` (Helm applies all `--set` before all `--set-string`).
//! 3. The result is coalesced over the chart's defaults: user values win, maps
//!    merge, and a user `null` deletes the key where the defaults have that
//!    key (elsewhere the null stays, and the schema check rejects it).
//!
//! Numbers read from YAML become floats, as Helm reads YAML through JSON into
//! `float64`; `--set` integers stay integers. Templates print both alike.

use serde_json::{Map, Number, Value};

/// `mergeMaps(a, b)`: b wins; maps present in both merge recursively.
pub fn merge_maps(a: &mut Map<String, Value>, b: Map<String, Value>) {
    for (k, v) in b {
        match (a.get_mut(&k), v) {
            (Some(Value::Object(dst)), Value::Object(src)) => merge_maps(dst, src),
            (_, v) => {
                a.insert(k, v);
            }
        }
    }
}

/// Coalesces the user's values over a copy of the chart defaults (Helm's
/// `coalesceValues` at the top level, `coalesceTablesFullKey` below).
pub fn coalesce(defaults: &Map<String, Value>, mut user: Map<String, Value>) -> Map<String, Value> {
    for (key, default) in defaults {
        match user.get_mut(key) {
            Some(Value::Null) => {
                user.remove(key);
            }
            Some(Value::Object(dst)) => {
                if let Value::Object(src) = default {
                    coalesce_tables(dst, src);
                }
            }
            Some(_) => {}
            None => {
                user.insert(key.clone(), default.clone());
            }
        }
    }
    user
}

fn coalesce_tables(dst: &mut Map<String, Value>, src: &Map<String, Value>) {
    for (key, val) in src {
        match dst.get_mut(key) {
            // A user null deletes a key the defaults have (and only such a key).
            Some(Value::Null) => {
                dst.remove(key);
            }
            None => {
                dst.insert(key.clone(), val.clone());
            }
            Some(Value::Object(dv)) => {
                if let Value::Object(sv) = val {
                    coalesce_tables(dv, sv);
                }
            }
            Some(_) => {}
        }
    }
}

/// Every number becomes a float, as Helm reads a YAML file.
pub fn floats(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().and_then(Number::from_f64) {
                *n = f;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(floats),
        Value::Object(m) => m.values_mut().for_each(floats),
        _ => {}
    }
}

/// Whole floats become integers, so that `2.0` (as Helm holds the `2` of a
/// YAML file) deserializes into an integer field, as JSON schema's `integer` accepts it.
pub fn integers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if f >= 0.0 && f < u64::MAX as f64 {
                    *n = Number::from(f as u64);
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    *n = Number::from(f as i64);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integers),
        Value::Object(m) => m.values_mut().for_each(integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn files_merge_deeply_in_order() {
        let mut base = Map::new();
        merge_maps(&mut base, obj(json!({"a": {"b": 1, "c": 2}, "l": [1, 2]})));
        merge_maps(&mut base, obj(json!({"a": {"b": 3, "d": null}, "l": [3]})));
        assert_eq!(
            Value::Object(base),
            json!({"a": {"b": 3, "c": 2, "d": null}, "l": [3]})
        );
    }

    #[test]
    fn coalesce_user_wins_and_null_deletes() {
        let defaults = obj(json!({
            "image": "ray",
            "podTypes": {"head": {"numCPU": 1, "memory": "1Gi"}, "worker": {"numCPU": 1}},
            "list": [1],
            "keep": {"x": 1}
        }));
        let user = obj(json!({
            "image": "mine",
            "podTypes": {"worker": null, "head": {"memory": null, "CPU": 2, "GPU": null}, "new": {"GPU": null}},
            "list": null,
            "extra": null
        }));
        let got = coalesce(&defaults, user);
        assert_eq!(
            Value::Object(got),
            json!({
                "image": "mine",
                // A user null deletes only keys the defaults have; Helm keeps
                // the others, and its schema check then rejects them.
                "podTypes": {"head": {"numCPU": 1, "CPU": 2, "GPU": null}, "new": {"GPU": null}},
                "keep": {"x": 1},
                "extra": null
            })
        );
    }

    #[test]
    fn numbers() {
        let mut v = json!({"a": 1, "b": [2, -3], "c": 1.5});
        floats(&mut v);
        assert!(v["a"].is_f64() && v["b"][1].is_f64());
        integers(&mut v);
        assert_eq!(v, json!({"a": 1, "b": [2, -3], "c": 1.5}));
        assert!(v["a"].is_u64() && v["b"][1].is_i64());
    }
}
