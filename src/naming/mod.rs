//! Label keys and values on the objects the operator makes, and the names it gives them.
//!
//! The `ray-*` keys are the legacy operator's, so tooling written for it
//! (selectors, dashboards) keeps working.

use std::collections::BTreeMap;

mod kebab_case;

pub use kebab_case::kebab_case;

/// The RayCluster an object belongs to.
pub const CLUSTER_NAME: &str = "ray-cluster-name";
/// `head` or `worker`.
pub const NODE_KIND: &str = "ray-node-type";
/// The podType a pod was made from.
pub const POD_TYPE: &str = "ray-user-node-type";
/// Hash of the pod config a pod was made from; a mismatch makes the pod outdated.
pub const LAUNCH_CONFIG: &str = "ray-launch-config";

/// [`OPERATOR`] as a literal, for `concat!` to build the names derived from it.
macro_rules! operator_name {
    () => {
        "ray-operator"
    };
}
pub(crate) use operator_name;

/// The operator's name: its field manager, the `managed-by` label of what it
/// makes, the prefix of its Leases and annotations. The chart carries it
/// literally (the operator's Deployment and container); a render test checks
/// that they agree.
pub const OPERATOR: &str = operator_name!();

/// Annotation with the hash of the spec an object was applied with; an object
/// that carries the wanted hash is not applied again.
pub const SPEC_HASH: &str = concat!(operator_name!(), "/spec-hash");

/// The one field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = OPERATOR;

/// Whether a pod runs the Ray head or a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    Head,
    Worker,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Head => "head",
            NodeKind::Worker => "worker",
        }
    }
}

/// Labels that every object of a cluster carries.
pub fn cluster_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (CLUSTER_NAME.to_string(), cluster.to_string()),
        ("app.kubernetes.io/name".to_string(), "ray".to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            cluster.to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            OPERATOR.to_string(),
        ),
    ])
}

/// The labels a Service uses to select the cluster's head pod.
pub fn head_selector(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (CLUSTER_NAME.to_string(), cluster.to_string()),
        (NODE_KIND.to_string(), NodeKind::Head.as_str().to_string()),
    ])
}

/// Name of the head Service of a cluster.
pub fn head_service_name(cluster: &str) -> String {
    format!("{cluster}-ray-head")
}

/// FNV-1a: a hash that stays the same across Rust releases and platforms, so a
/// launch-config label written by one operator build matches the next one's.
pub fn stable_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Five random characters for a new pod's name, from the alphabet Kubernetes
/// uses for `generateName` (no vowels, so no words).
pub fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // Each RandomState is freshly keyed from the OS's randomness.
    let mut bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char;
            bits /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash(b""), "cbf29ce484222325");
        assert_eq!(stable_hash(b"a"), "af63dc4c8601ec8c");
    }

    #[test]
    fn names_derived_from_the_operators() {
        assert_eq!(OPERATOR, "ray-operator");
        assert_eq!(SPEC_HASH, "ray-operator/spec-hash");
    }
}
