//! The `/metrics` series a runner reports. Each kind of follower keeps the names it has always
//! had (dashboards and alerts are built on them); the runner reports them all alike.

use super::FollowerId;
use metrics::{Counter, Gauge, Histogram, Label};
use std::time::Duration;

/// Under which names a follower's runner reports; `None`: not reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricNames {
    /// The label carrying the follower's name, when several of its kind run
    /// (`projector="trips_view"`); `None` for a kind that runs once.
    pub label: Option<&'static str>,
    /// Gauge: the runner's position in the log.
    pub position: Option<&'static str>,
    /// Counter: events applied.
    pub applied_total: Option<&'static str>,
    /// Counter: events whose effect was already there.
    pub duplicates_total: Option<&'static str>,
    /// Histogram: seconds to apply and commit a batch.
    pub batch_seconds: Option<&'static str>,
    /// Counter: failed attempts.
    pub failures_total: Option<&'static str>,
    /// Gauge: roughly how many events are still to read.
    pub lag_events: Option<&'static str>,
    /// Gauge: milliseconds since the runner was last caught up.
    pub lag_ms: Option<&'static str>,
}

impl MetricNames {
    /// Reports nothing.
    pub const NONE: MetricNames = MetricNames {
        label: None,
        position: None,
        applied_total: None,
        duplicates_total: None,
        batch_seconds: None,
        failures_total: None,
        lag_events: None,
        lag_ms: None,
    };
}

/// The handles of a runner's series, registered once when it starts (so a batch costs no
/// lookup and no label allocation).
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) position: Option<Gauge>,
    pub(crate) applied_total: Option<Counter>,
    pub(crate) duplicates_total: Option<Counter>,
    pub(crate) batch_seconds: Option<Histogram>,
    pub(crate) failures_total: Option<Counter>,
    pub(crate) lag_events: Option<Gauge>,
    pub(crate) lag_ms: Option<Gauge>,
    /// Every follower, whatever its kind: writes refused by a newer owner's fence
    /// (`velka_follower_fenced_writes_total{follower="kind:name"}`).
    fenced: Counter,
    /// Whether this process runs the follower now (1) or stands by (0)
    /// (`velka_follower_owned{follower="kind:name"}`).
    owned: Gauge,
}

impl Metrics {
    pub(crate) fn register(id: &FollowerId, names: MetricNames) -> Self {
        let labels: Vec<Label> = names
            .label
            .map(|key| Label::new(key, id.name.clone()))
            .into_iter()
            .collect();
        let gauge = |name: Option<&'static str>| name.map(|n| metrics::gauge!(n, labels.clone()));
        let counter =
            |name: Option<&'static str>| name.map(|n| metrics::counter!(n, labels.clone()));
        Self {
            position: gauge(names.position),
            applied_total: counter(names.applied_total),
            duplicates_total: counter(names.duplicates_total),
            batch_seconds: names
                .batch_seconds
                .map(|n| metrics::histogram!(n, labels.clone())),
            failures_total: counter(names.failures_total),
            lag_events: gauge(names.lag_events),
            lag_ms: gauge(names.lag_ms),
            fenced: metrics::counter!("velka_follower_fenced_writes_total", "follower" => id.to_string()),
            owned: metrics::gauge!("velka_follower_owned", "follower" => id.to_string()),
        }
    }

    pub(crate) fn fenced(&self) {
        self.fenced.increment(1);
    }

    pub(crate) fn owned(&self, owned: bool) {
        self.owned.set(if owned { 1.0 } else { 0.0 });
    }

    pub(crate) fn position(&self, position: i64) {
        if let Some(gauge) = &self.position {
            gauge.set(position as f64);
        }
    }

    pub(crate) fn committed(&self, events: u64, duplicates: u64, took: Duration) {
        if let Some(counter) = &self.applied_total {
            counter.increment(events);
        }
        if let Some(counter) = &self.duplicates_total {
            counter.increment(duplicates);
        }
        if let Some(histogram) = &self.batch_seconds {
            histogram.record(took.as_secs_f64());
        }
    }

    pub(crate) fn failed(&self) {
        if let Some(counter) = &self.failures_total {
            counter.increment(1);
        }
    }

    pub(crate) fn lag(&self, events: Option<u64>, since_caught_up: Duration) {
        if let (Some(gauge), Some(events)) = (&self.lag_events, events) {
            gauge.set(events as f64);
        }
        if let Some(gauge) = &self.lag_ms {
            gauge.set(since_caught_up.as_millis() as f64);
        }
    }
}
