//! A JSON value kept as its compact text.
//!
//! The operator caches every RayCluster. Parsed, a pod config is a tree of
//! `BTreeMap` nodes of about 600 bytes each however few keys they hold, and
//! was most of the operator's memory per cluster (about 18 KiB for the
//! chart's two pod types). As text it is a tenth of that; the operator
//! parses it when it reconciles, which costs microseconds.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// JSON text with sorted object keys (what `serde_json::Value` prints), so
/// equal values have equal text.
#[derive(Clone, PartialEq, Eq)]
pub struct CompactJson(Box<str>);

impl CompactJson {
    /// The value, parsed.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).expect("CompactJson holds text printed from a Value")
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Value> for CompactJson {
    fn from(value: Value) -> Self {
        CompactJson(value.to_string().into_boxed_str())
    }
}

impl Default for CompactJson {
    fn default() -> Self {
        Value::Null.into()
    }
}

impl std::fmt::Debug for CompactJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CompactJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CompactJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(CompactJson::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_sorts_keys() {
        let c: CompactJson =
            serde_json::from_str(r#"{"b": [1, {"d": 2, "c": null}], "a": "x"}"#).unwrap();
        assert_eq!(c.as_str(), r#"{"a":"x","b":[1,{"c":null,"d":2}]}"#);
        assert_eq!(c.value(), json!({"a": "x", "b": [1, {"c": null, "d": 2}]}));
        assert_eq!(serde_json::to_value(&c).unwrap(), c.value());
        let from_value: CompactJson = serde_json::from_value(c.value()).unwrap();
        assert_eq!(from_value, c);
    }
}
