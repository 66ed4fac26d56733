//! Kubernetes Events (events.k8s.io/v1) about RayClusters.
//!
//! Like kube's `Recorder` (and client-go's), an event that repeats within
//! six minutes for the same object, type and reason is folded into the first
//! one's `series` (its count goes up) instead of making a new Event. kube's
//! `Recorder` remembers every Event it sent in full for those six minutes,
//! about 2 KiB each: 4 MiB after a burst of 1,000 new clusters. This one
//! remembers what a repeat needs, the Event's name and count: under 100
//! bytes, by cluster key (UID), forgotten with the cluster.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};

use super::cache::cluster_key;
use super::writer::{Write, Writer};

/// How long an Event may be repeated as a series of itself.
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// An Event sent, as much as a repeat of it needs.
struct SentEvent {
    /// Its type and reason (see [`kind`]).
    kind: u64,
    name: Box<str>,
    count: i32,
    last: Timestamp,
}

/// The Events sent in the last six minutes, by the key of the cluster they
/// are about. Pure: the time is passed in.
#[derive(Default)]
struct Sent(HashMap<String, Vec<SentEvent>>);

impl Sent {
    /// The name and count of the Event of `kind` sent about `cluster`
    /// within six minutes of `now`, counted up, if there is one.
    fn repeat(&mut self, cluster: &str, kind: u64, now: Timestamp) -> Option<(String, i32)> {
        self.0.retain(|_, events| {
            events.retain(|s| s.last + SERIES_WINDOW > now);
            !events.is_empty()
        });
        let first = self
            .0
            .get_mut(cluster)?
            .iter_mut()
            .find(|s| s.kind == kind)?;
        first.count += 1;
        first.last = now;
        Some((first.name.to_string(), first.count))
    }

    /// A new Event (not a repeat) was sent.
    fn sent(&mut self, cluster: &str, kind: u64, name: String, now: Timestamp) {
        let events = self.0.entry(cluster.to_string()).or_default();
        events.retain(|s| s.kind != kind);
        events.push(SentEvent {
            kind,
            name: name.into_boxed_str(),
            count: 1,
            last: now,
        });
    }
}

/// Longest note an Event carries; longer ones are cut (the API server
/// refuses notes over 1 KiB).
const MAX_NOTE: usize = 1000;

/// Sends Events as the operator (`reportingController`, `reportingInstance`).
pub struct Recorder {
    writer: Arc<Writer>,
    controller: String,
    instance: String,
    sent: Mutex<Sent>,
}

impl Recorder {
    pub fn new(writer: Arc<Writer>, controller: &str, instance: &str) -> Self {
        Recorder {
            writer,
            controller: controller.to_string(),
            instance: instance.to_string(),
            sent: Mutex::default(),
        }
    }

    /// Publishes an Event about the cluster (`Warning` when `warning`), its
    /// note cut to 1,000 bytes; failing to is only logged, as an Event is
    /// never worth failing a reconcile for.
    pub async fn publish(
        &self,
        cluster: &impl Resource<DynamicType = ()>,
        reason: &str,
        note: String,
        warning: bool,
    ) {
        let regarding = cluster.object_ref(&());
        let note = truncate(note, MAX_NOTE);
        let _permit = self.writer.permit(Write::Event).await;
        if let Err(e) = self
            .send(&cluster_key(cluster), &regarding, warning, reason, note)
            .await
        {
            tracing::warn!(cluster = %cluster.name_any(), namespace = %cluster.namespace().unwrap_or_default(), "could not publish event {reason}: {e}");
        }
    }

    /// Records an Event about `regarding` (the cluster of key `cluster`), in
    /// its namespace; a repeat within six minutes (same object, type and
    /// reason) counts up the first one.
    async fn send(
        &self,
        cluster: &str,
        regarding: &ObjectReference,
        warning: bool,
        reason: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let kind = kind(warning, reason);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.writer.client(), namespace);
        let repeat = (self.sent.lock().expect("events lock")).repeat(cluster, kind, now);
        if let Some((name, count)) = repeat {
            let series = serde_json::json!({
                "series": EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                },
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                Err(kube::Error::Api(s)) if s.code == 404 => {} // expired: send anew
                other => return other.map(|_| ()),
            }
        }
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        let name = format!("{object}.{:x}", now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if warning { "Warning" } else { "Normal" }.to_string()),
            reason: Some(reason.to_string()),
            action: Some("Reconcile".to_string()),
            note: Some(note),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        api.create(&PostParams::default(), &event).await?;
        (self.sent.lock().expect("events lock")).sent(cluster, kind, name, now);
        Ok(())
    }

    /// Forgets the Events about a cluster that is gone.
    pub fn forget(&self, cluster: &str) {
        (self.sent.lock().expect("events lock")).0.remove(cluster);
    }

    /// Forgets the Events about every cluster whose key `keep` refuses.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        (self.sent.lock().expect("events lock"))
            .0
            .retain(|k, _| keep(k));
    }

    /// Clusters with Events that a repeat would count up.
    pub fn tracked(&self) -> usize {
        self.sent.lock().expect("events lock").0.len()
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Which Events about one cluster are repeats of each other: same type and reason.
fn kind(warning: bool, reason: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (warning, reason).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_share_a_kind_and_other_types_or_reasons_do_not() {
        let a = kind(false, "CreatedHead");
        assert_eq!(a, kind(false, "CreatedHead"));
        assert_ne!(a, kind(true, "CreatedHead"));
        assert_ne!(a, kind(false, "CreatedWorkers"));
    }

    #[test]
    fn a_repeat_within_six_minutes_counts_up_the_first_event_of_its_cluster() {
        let t0 = Timestamp::UNIX_EPOCH;
        let at = |mins: i64| t0 + SignedDuration::from_mins(mins);
        let head = kind(false, "CreatedHead");
        let mut sent = Sent::default();
        assert_eq!(sent.repeat("uid-a", head, t0), None);
        sent.sent("uid-a", head, "a.1".into(), t0);
        assert_eq!(sent.repeat("uid-a", head, at(5)), Some(("a.1".into(), 2)));
        assert_eq!(sent.repeat("uid-a", head, at(10)), Some(("a.1".into(), 3)));
        assert_eq!(
            sent.repeat("uid-a2", head, at(10)),
            None,
            "a new cluster of the name"
        );
        assert_eq!(
            sent.repeat("uid-a", kind(true, "CreatedHead"), at(10)),
            None
        );
        assert_eq!(
            sent.repeat("uid-a", head, at(17)),
            None,
            "six minutes after the last"
        );
        assert!(sent.0.is_empty(), "expired Events are dropped");
    }
}
