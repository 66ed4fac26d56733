//! Which namespaces the operator acts in.
//!
//! A namespaced operator acts only in its own namespace. A cluster-scoped one
//! acts everywhere except in namespaces a namespaced operator has claimed
//! (holds a fresh [`NAMESPACED_LEASE`] in), so the two can run side by side.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::operator::lease::{NAMESPACED_LEASE, fresh_holder};

/// How long a looked-up claim is trusted before it is read again.
const CLAIM_CACHE_TTL: Duration = Duration::from_secs(5);

pub enum Scope {
    /// Only this namespace.
    Namespace(String),
    /// All namespaces but those claimed by a namespaced operator.
    AllNamespaces {
        client: kube::Client,
        claims: Mutex<HashMap<String, (Instant, Option<String>)>>,
    },
}

impl Scope {
    pub fn all_namespaces(client: kube::Client) -> Self {
        Scope::AllNamespaces {
            client,
            claims: Mutex::new(HashMap::new()),
        }
    }

    /// The namespaced operator that holds `namespace`, when this operator is
    /// cluster-scoped and must therefore leave it alone. A claim that cannot
    /// be read counts as held (by an unknown holder): acting beside a
    /// namespaced operator is worse than waiting for the next lookup.
    pub async fn claimed_elsewhere(&self, namespace: &str) -> Option<String> {
        let Scope::AllNamespaces { client, claims } = self else {
            return None;
        };
        if let Some((at, holder)) = claims.lock().expect("claims lock").get(namespace)
            && at.elapsed() < CLAIM_CACHE_TTL
        {
            return holder.clone();
        }
        let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
        let lookup = api.get_opt(NAMESPACED_LEASE).await;
        let (holder, cache) = claim_from_lookup(lookup, k8s_openapi::jiff::Timestamp::now());
        if let Err(e) = &cache {
            tracing::warn!(
                "reading the namespace claim in {namespace}: {e}; skipping it until a lookup succeeds"
            );
        }
        if cache.is_ok() {
            claims
                .lock()
                .expect("claims lock")
                .insert(namespace.to_string(), (Instant::now(), holder.clone()));
        }
        holder
    }
}

/// What the reconciler makes of a claim lookup: the holder to yield to, and
/// whether the answer may be cached (`Err` with the failure otherwise). A
/// failed lookup yields to an unknown holder: it fails closed.
fn claim_from_lookup(
    lookup: Result<Option<Lease>, kube::Error>,
    now: k8s_openapi::jiff::Timestamp,
) -> (Option<String>, Result<(), kube::Error>) {
    match lookup {
        Ok(lease) => (lease.and_then(|l| fresh_holder(&l, now)), Ok(())),
        Err(e) => (Some(UNKNOWN_HOLDER.to_string()), Err(e)),
    }
}

/// The holder reported when the claim could not be read.
pub const UNKNOWN_HOLDER: &str = "<unknown: the claim could not be read>";

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden() -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("leases is forbidden", "Forbidden")
                .with_code(403)
                .boxed(),
        )
    }

    #[test]
    fn a_failed_claim_lookup_counts_as_claimed_and_is_not_cached() {
        let now = k8s_openapi::jiff::Timestamp::now();
        let (holder, cache) = claim_from_lookup(Err(forbidden()), now);
        assert_eq!(holder.as_deref(), Some(UNKNOWN_HOLDER), "fails closed");
        assert!(cache.is_err(), "the next reconcile looks again");

        let (holder, cache) = claim_from_lookup(Ok(None), now);
        assert_eq!(holder, None, "no Lease: unclaimed");
        assert!(cache.is_ok());
    }
}
