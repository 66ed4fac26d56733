//! Kubernetes Events (events.k8s.io/v1) about RayClusters.
//!
//! Like kube's `Recorder` (and client-go's), an event that repeats within
//! six minutes for the same object, type and reason is folded into the first
//! one's `series` (its count goes up) instead of making a new Event. kube's
//! `Recorder` remembers every Event it sent in full for those six minutes,
//! about 2 KiB each: 4 MiB after a burst of 1,000 new clusters. This one
//! remembers what a repeat needs, the Event's name and count: under 100
//! bytes.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// How long an Event may be repeated as a series of itself.
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// An Event sent, as much as a repeat of it needs.
struct Sent {
    name: Box<str>,
    count: i32,
    last: Timestamp,
}

/// Sends Events as the operator (`reportingController`, `reportingInstance`).
pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    sent: Mutex<HashMap<u64, Sent>>,
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Recorder {
            client,
            controller: controller.to_string(),
            instance: instance.to_string(),
            sent: Mutex::default(),
        }
    }

    /// Records an Event about `regarding`, in its namespace; a repeat within
    /// six minutes (same object, type and reason) counts up the first one.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = key(regarding, warning, reason);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let repeat = {
            let mut sent = self.sent.lock().expect("events lock");
            sent.retain(|_, s| s.last + SERIES_WINDOW > now);
            sent.get_mut(&key).map(|s| {
                s.count += 1;
                s.last = now;
                (s.name.to_string(), s.count)
            })
        };
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
            action: Some(action.to_string()),
            note: Some(note),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        api.create(&PostParams::default(), &event).await?;
        self.sent.lock().expect("events lock").insert(
            key,
            Sent {
                name: name.into_boxed_str(),
                count: 1,
                last: now,
            },
        );
        Ok(())
    }
}

/// Which Events are repeats of each other: same object, type and reason.
fn key(regarding: &ObjectReference, warning: bool, reason: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &regarding.namespace,
        &regarding.name,
        &regarding.uid,
        warning,
        reason,
    )
        .hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_share_a_key_and_other_objects_or_reasons_do_not() {
        let obj = |name: &str, uid: &str| ObjectReference {
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        };
        let a = key(&obj("c", "1"), false, "CreatedHead");
        assert_eq!(a, key(&obj("c", "1"), false, "CreatedHead"));
        assert_ne!(
            a,
            key(&obj("c", "2"), false, "CreatedHead"),
            "a new cluster of the same name"
        );
        assert_ne!(a, key(&obj("c", "1"), true, "CreatedHead"));
        assert_ne!(a, key(&obj("c", "1"), false, "CreatedWorkers"));
    }
}
