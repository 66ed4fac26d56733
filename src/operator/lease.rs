//! Leases (coordination.k8s.io): leader election between operator replicas,
//! and the claim a namespaced operator lays on its namespace.
//!
//! Both are the same act: hold a Lease by renewing it before it expires. A
//! namespaced operator's leader Lease is its claim, so a cluster-scoped
//! operator that sees a fresh one in a namespace leaves that namespace alone.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};

/// The leader Lease of a cluster-scoped operator.
pub const CLUSTER_SCOPED_LEASE: &str = concat!(crate::naming::operator_name!(), "-cluster-scoped");
/// The leader Lease of a namespaced operator, and its claim on the namespace.
pub const NAMESPACED_LEASE: &str = concat!(crate::naming::operator_name!(), "-namespaced");

/// How long a Lease lasts without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// The holder of a Lease if it is still fresh.
pub fn fresh_holder(lease: &Lease, now: Timestamp) -> Option<String> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    (renewed + duration > now).then_some(holder)
}

/// Takes or renews the Lease for `identity`. `Ok(false)` when someone else
/// holds it; writes carry the resourceVersion read, so two candidates never
/// both win.
pub async fn try_hold(api: &Api<Lease>, name: &str, identity: &str) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let spec = |acquired: Option<MicroTime>, transitions: i32| LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
        acquire_time: acquired.or(Some(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    };
    let Some(mut lease) = api.get_opt(name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(spec(None, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let current = lease.spec.clone().unwrap_or_default();
    let mine = current.holder_identity.as_deref() == Some(identity);
    if !mine && fresh_holder(&lease, now).is_some() {
        return Ok(false);
    }
    let transitions = current.lease_transitions.unwrap_or(0) + i32::from(!mine);
    lease.spec = Some(spec(
        if mine { current.acquire_time } else { None },
        transitions,
    ));
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Blocks until `identity` holds the Lease, then keeps renewing it in the
/// background. The returned receiver turns `true` if the Lease is lost, after
/// which the operator must stop acting (another replica may have taken over).
pub async fn lead(
    api: Api<Lease>,
    name: &str,
    identity: &str,
) -> tokio::sync::watch::Receiver<bool> {
    let retry = LEASE_DURATION / 5;
    loop {
        match try_hold(&api, name, identity).await {
            Ok(true) => break,
            Ok(false) => tracing::info!("waiting for the leader Lease {name}"),
            Err(e) => tracing::warn!("leader Lease {name}: {e}"),
        }
        tokio::time::sleep(retry).await;
    }
    tracing::info!("holding the leader Lease {name} as {identity}");
    let (lost_tx, lost_rx) = tokio::sync::watch::channel(false);
    let (name, identity) = (name.to_string(), identity.to_string());
    tokio::spawn(async move {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(LEASE_DURATION / 3).await;
            match try_hold(&api, &name, &identity).await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => break,
                Err(e) if last_renewal.elapsed() < LEASE_DURATION => {
                    tracing::warn!("renewing the leader Lease {name}: {e}")
                }
                Err(_) => break,
            }
        }
        tracing::error!("lost the leader Lease {name}");
        let _ = lost_tx.send(true);
    });
    lost_rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: Timestamp, seconds: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn a_lease_is_fresh_until_its_duration_passes() {
        let now = Timestamp::now();
        assert_eq!(
            fresh_holder(&lease("a", now, 15), now).as_deref(),
            Some("a")
        );
        let old = now - SignedDuration::from_secs(16);
        assert_eq!(fresh_holder(&lease("a", old, 15), now), None);
        assert_eq!(fresh_holder(&lease("", now, 15), now), None);
    }
}
