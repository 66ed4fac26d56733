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

use crate::lease::{NAMESPACED_LEASE, fresh_holder};

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
    /// cluster-scoped and must therefore leave it alone.
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
        let holder = match api.get_opt(NAMESPACED_LEASE).await {
            Ok(lease) => lease.and_then(|l| fresh_holder(&l, k8s_openapi::jiff::Timestamp::now())),
            Err(e) => {
                tracing::warn!("reading the namespace claim in {namespace}: {e}");
                None
            }
        };
        claims
            .lock()
            .expect("claims lock")
            .insert(namespace.to_string(), (Instant::now(), holder.clone()));
        holder
    }
}
