//! What the operator remembers of a cluster's failures, by cluster key
//! (UID): how often a transient failure repeated (for the backoff), and
//! what the API server rejected as invalid (so it is not sent again until
//! the spec changes, or after [`REJECTED_BACKOFF`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::{REJECTED_BACKOFF, backoff};

/// What the API server rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The head Service.
    Service,
    /// The pods of this pod type.
    PodType(String),
}

/// A rejection, for the generation of the spec it came from.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub generation: Option<i64>,
    pub at: Instant,
    pub target: Target,
    pub message: String,
}

#[derive(Default)]
pub struct Backoffs {
    transient: Mutex<HashMap<String, u32>>,
    rejected: Mutex<HashMap<String, Rejection>>,
}

impl Backoffs {
    /// A transient failure of the cluster's reconcile: the wait before the next.
    pub fn failed(&self, key: &str) -> Duration {
        let mut transient = self.transient.lock().expect("backoff lock");
        let retries = transient.entry(key.to_string()).or_default();
        let wait = backoff(*retries);
        *retries = retries.saturating_add(1);
        wait
    }

    /// A reconcile that succeeded: the next failure waits 1 s again.
    pub fn succeeded(&self, key: &str) {
        self.transient.lock().expect("backoff lock").remove(key);
    }

    pub fn rejected(&self, key: &str, rejection: Rejection) {
        self.rejected
            .lock()
            .expect("backoff lock")
            .insert(key.to_string(), rejection);
    }

    /// The rejection still in force for this generation of the spec, if any
    /// (a new generation or [`REJECTED_BACKOFF`] lifts it).
    pub fn rejection(&self, key: &str, generation: Option<i64>) -> Option<Rejection> {
        let mut rejected = self.rejected.lock().expect("backoff lock");
        let current = rejected
            .get(key)
            .is_some_and(|r| r.generation == generation && r.at.elapsed() < REJECTED_BACKOFF);
        if !current {
            rejected.remove(key);
        }
        rejected.get(key).cloned()
    }

    pub fn forget(&self, key: &str) {
        self.transient.lock().expect("backoff lock").remove(key);
        self.rejected.lock().expect("backoff lock").remove(key);
    }

    /// Forgets every cluster whose key `keep` refuses.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        (self.transient.lock().expect("backoff lock")).retain(|k, _| keep(k));
        (self.rejected.lock().expect("backoff lock")).retain(|k, _| keep(k));
    }

    /// Clusters backing off a transient failure, and with a rejection.
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.transient.lock().expect("backoff lock").len(),
            self.rejected.lock().expect("backoff lock").len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_double_until_a_success() {
        let b = Backoffs::default();
        let waits: Vec<u64> = (0..4).map(|_| b.failed("u").as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(b.failed("other").as_secs(), 1, "counted per cluster");
        b.succeeded("u");
        assert_eq!(b.failed("u").as_secs(), 1);
    }

    #[test]
    fn a_rejection_holds_until_the_generation_changes() {
        let b = Backoffs::default();
        b.rejected(
            "u",
            Rejection {
                generation: Some(1),
                at: Instant::now(),
                target: Target::PodType("w".into()),
                message: "bad".into(),
            },
        );
        assert_eq!(
            b.rejection("u", Some(1)).map(|r| r.target),
            Some(Target::PodType("w".into()))
        );
        assert!(b.rejection("u", Some(2)).is_none(), "a new spec is tried");
        assert_eq!(b.tracked(), (0, 0));
    }

    #[test]
    fn a_rejection_expires_after_the_long_backoff() {
        let b = Backoffs::default();
        let Some(long_ago) = Instant::now().checked_sub(REJECTED_BACKOFF) else {
            return; // a clock too young to go back that far
        };
        b.rejected(
            "u",
            Rejection {
                generation: Some(1),
                at: long_ago,
                target: Target::Service,
                message: "bad".into(),
            },
        );
        assert!(b.rejection("u", Some(1)).is_none());
    }
}
