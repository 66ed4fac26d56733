//! A JSON value kept as its compact text.
//!
//! The operator caches every RayCluster. Parsed, a pod config is a tree of
//! `BTreeMap` nodes of about 600 bytes each however few keys they hold, and
//! was most of the operator's memory per cluster (about 18 KiB for the
//! chart's two pod types). As text it is a tenth of that; the operator
//! parses it when it reconciles, which costs microseconds.
//!
//! Equal texts are kept once: clusters made from one chart have the same
//! pod configs (the cluster's name is not in them), so 10,000 of them share
//! two texts instead of holding 20,000 (`make bench-memory`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// JSON text with sorted object keys (what `serde_json::Value` prints), so
/// equal values have equal text.
#[derive(Clone, PartialEq, Eq)]
pub struct CompactJson(Arc<str>);

/// The texts in use, each once. Texts no `CompactJson` holds any more are
/// dropped whenever the set has doubled since it was last pruned, so it
/// stays within twice what is in use.
#[derive(Default)]
struct Texts {
    set: HashSet<Arc<str>>,
    prune_at: usize,
}

impl Texts {
    fn intern(&mut self, text: String) -> Arc<str> {
        if let Some(shared) = self.set.get(text.as_str()) {
            return shared.clone();
        }
        if self.set.len() >= self.prune_at {
            self.set.retain(|t| Arc::strong_count(t) > 1);
            self.prune_at = 2 * self.set.len() + 64;
        }
        let shared: Arc<str> = text.into();
        self.set.insert(shared.clone());
        shared
    }
}

static TEXTS: Mutex<Option<Texts>> = Mutex::new(None);

fn intern(text: String) -> Arc<str> {
    // A poisoned lock only means another thread panicked mid-insert; the set is still sound.
    let mut texts = TEXTS.lock().unwrap_or_else(|e| e.into_inner());
    texts.get_or_insert_with(Texts::default).intern(text)
}

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
        CompactJson(intern(value.to_string()))
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

    #[test]
    fn equal_texts_are_kept_once() {
        let a = CompactJson::from(json!({"spec": {"containers": [{"name": "shared-once"}]}}));
        let b: CompactJson =
            serde_json::from_str(r#"{"spec":{"containers":[{"name":"shared-once"}]}}"#).unwrap();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        let other = CompactJson::from(json!({"spec": {"containers": [{"name": "not-shared"}]}}));
        assert!(!Arc::ptr_eq(&a.0, &other.0));
    }

    #[test]
    fn texts_no_one_holds_are_dropped() {
        let mut texts = Texts::default();
        for i in 0..1_000 {
            drop(texts.intern(format!("{{\"n\":{i}}}")));
        }
        let kept = texts.intern("{\"kept\":1}".to_string());
        for i in 0..1_000 {
            drop(texts.intern(format!("{{\"m\":{i}}}")));
        }
        assert!(texts.set.len() <= 67, "{} texts", texts.set.len());
        assert!(texts.set.contains(&kept));
    }
}
