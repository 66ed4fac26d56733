//! Prometheus metrics, kept as atomics and written in the text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the reconcile duration histogram's buckets.
const BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// What a write to the API server is, for `ray_operator_api_writes_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    PodCreation,
    PodDeletion,
    Service,
    Status,
    Event,
}

impl Write {
    const ALL: [Write; 5] = [
        Write::PodCreation,
        Write::PodDeletion,
        Write::Service,
        Write::Status,
        Write::Event,
    ];

    /// The metric's `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Write::PodCreation => "pod_creation",
            Write::PodDeletion => "pod_deletion",
            Write::Service => "service",
            Write::Status => "status",
            Write::Event => "event",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    reconciles: AtomicU64,
    /// Watch events applied to the caches (clusters, pods, Services).
    watch_events: AtomicU64,
    /// Failed reconciles by (stage, reason).
    errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    pods_created: AtomicU64,
    pods_deleted: AtomicU64,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_micros: AtomicU64,
    /// Requests that write to the API server, by [`Write`] (its index in `Write::ALL`).
    writes: [AtomicU64; Write::ALL.len()],
}

impl Metrics {
    pub fn reconciled(&self, took: Duration) {
        self.reconciles.fetch_add(1, Relaxed);
        self.duration_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
        for (bound, bucket) in BUCKETS.iter().zip(&self.duration_buckets) {
            if took.as_secs_f64() <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
    }

    /// Reconciles run so far.
    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Relaxed)
    }

    pub fn watch_event(&self) {
        self.watch_events.fetch_add(1, Relaxed);
    }

    /// Watch events applied to the caches so far.
    pub fn watch_events(&self) -> u64 {
        self.watch_events.load(Relaxed)
    }

    /// A failure of a reconcile `stage`, for `reason` (see `reconcile::error`).
    pub fn failed(&self, stage: &'static str, reason: &'static str) {
        *self
            .errors
            .lock()
            .expect("metrics lock")
            .entry((stage, reason))
            .or_default() += 1;
    }

    pub fn pods_created(&self, n: u64) {
        self.pods_created.fetch_add(n, Relaxed);
    }

    pub fn pods_deleted(&self, n: u64) {
        self.pods_deleted.fetch_add(n, Relaxed);
    }

    /// One request that writes to the API server, sent (whatever its answer).
    pub fn wrote(&self, kind: Write) {
        self.writes[kind as usize].fetch_add(1, Relaxed);
    }

    /// Writes of `kind` sent so far.
    pub fn writes(&self, kind: Write) -> u64 {
        self.writes[kind as usize].load(Relaxed)
    }

    /// The metrics in Prometheus' text format; the gauges are passed in
    /// (`tracked`: clusters per per-cluster map, by map name).
    pub fn render(&self, clusters: usize, pods: usize, tracked: &[(&str, usize)]) -> String {
        let mut out = String::new();
        let count = self.reconciles.load(Relaxed);
        let one = |out: &mut String, name: &str, help: &str, kind: &str, value: f64| {
            header(out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        };
        one(
            &mut out,
            "ray_operator_reconciles_total",
            "Reconciles run.",
            "counter",
            count as f64,
        );
        one(
            &mut out,
            "ray_operator_watch_events_total",
            "Watch events applied to the caches of clusters, pods and Services.",
            "counter",
            self.watch_events.load(Relaxed) as f64,
        );
        header(
            &mut out,
            "ray_operator_reconcile_errors_total",
            "Reconciles that failed, by stage and reason.",
            "counter",
        );
        for ((stage, reason), n) in self.errors.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "ray_operator_reconcile_errors_total{{stage=\"{stage}\",reason=\"{reason}\"}} {n}"
            );
        }
        header(
            &mut out,
            "ray_operator_reconcile_duration_seconds",
            "Time per reconcile.",
            "histogram",
        );
        for (bound, bucket) in BUCKETS.iter().zip(&self.duration_buckets) {
            let _ = writeln!(
                out,
                "ray_operator_reconcile_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "ray_operator_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "ray_operator_reconcile_duration_seconds_sum {}",
            self.duration_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "ray_operator_reconcile_duration_seconds_count {count}");
        one(
            &mut out,
            "ray_operator_pods_created_total",
            "Pods created.",
            "counter",
            self.pods_created.load(Relaxed) as f64,
        );
        one(
            &mut out,
            "ray_operator_pods_deleted_total",
            "Pods deleted.",
            "counter",
            self.pods_deleted.load(Relaxed) as f64,
        );
        header(
            &mut out,
            "ray_operator_api_writes_total",
            "Requests that write to the API server, by what they write.",
            "counter",
        );
        for kind in Write::ALL {
            let _ = writeln!(
                out,
                "ray_operator_api_writes_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                self.writes(kind)
            );
        }
        one(
            &mut out,
            "ray_operator_managed_clusters",
            "RayClusters in the operator's cache.",
            "gauge",
            clusters as f64,
        );
        one(
            &mut out,
            "ray_operator_managed_pods",
            "Ray pods in the operator's cache.",
            "gauge",
            pods as f64,
        );
        header(
            &mut out,
            "ray_operator_tracked_clusters",
            "Clusters each per-cluster map of the operator holds.",
            "gauge",
        );
        for (map, n) in tracked {
            let _ = writeln!(out, "ray_operator_tracked_clusters{{map=\"{map}\"}} {n}");
        }
        out
    }
}

/// A metric's `# HELP` and `# TYPE` lines.
fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_follows_the_help_and_type_of_its_metric() {
        let metrics = Metrics::default();
        metrics.reconciled(Duration::from_millis(3));
        metrics.failed("pod", "conflict");
        metrics.pods_created(2);
        metrics.wrote(Write::Status);
        metrics.wrote(Write::Status);
        let text = metrics.render(3, 12, &[("board", 1)]);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let sample = line.split(['{', ' ']).next().unwrap();
            let metric = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| sample.strip_suffix(suffix))
                .filter(|m| m.ends_with("_seconds"))
                .unwrap_or(sample);
            assert!(text.contains(&format!("# HELP {metric} ")), "{line}");
            assert!(text.contains(&format!("# TYPE {metric} ")), "{line}");
        }
        for sample in [
            "ray_operator_reconciles_total 1\n",
            "ray_operator_managed_clusters 3\n",
            "ray_operator_managed_pods 12\n",
            "ray_operator_pods_created_total 2\n",
            "ray_operator_reconcile_errors_total{stage=\"pod\",reason=\"conflict\"} 1\n",
            "ray_operator_tracked_clusters{map=\"board\"} 1\n",
            "ray_operator_api_writes_total{kind=\"status\"} 2\n",
            "ray_operator_api_writes_total{kind=\"event\"} 0\n",
        ] {
            assert!(text.contains(sample), "{sample} in:\n{text}");
        }
    }
}
