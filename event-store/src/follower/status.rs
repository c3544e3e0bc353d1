//! What a running follower reports: where it is, how much it applied, how far behind the log it
//! is, and the last thing that went wrong. Cheap to read (`/readyz`, `/metrics` and the admin
//! routes read it on every request) and possible to await (tests wait for a position instead of
//! sleeping).

use crate::EventStore;
use crate::error::StoreError;
use crate::model::{LogPosition, RecordedEvent};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Where a runner is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RunnerState {
    /// Created, or loading its checkpoint.
    Starting,
    /// Applying batches or waiting for new events.
    Running,
    /// The last attempt failed; it waits out its backoff and retries from its checkpoint.
    Retrying,
    /// Stopped by its stop signal (or never started).
    Stopped,
    /// Another process holds its lease and runs it; this one waits to take over.
    Standby,
}

/// The event a failed attempt stopped at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedEvent {
    /// Its place in the log.
    pub log_position: LogPosition,
    /// Its stream.
    pub stream_id: String,
    /// Its version within the stream.
    pub stream_version: u64,
    /// Its type name.
    pub event_type: String,
    /// Its id.
    pub event_id: Uuid,
}

impl FailedEvent {
    /// The event `event`.
    pub fn of(event: &RecordedEvent) -> Self {
        Self {
            log_position: event.log_position,
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            event_type: event.event_type.clone(),
            event_id: event.event_id,
        }
    }
}

/// A failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The event being applied, when the failure was in applying one (not in reading the log
    /// or committing).
    pub event: Option<FailedEvent>,
    /// What went wrong, with its causes.
    pub error: String,
    /// When (wall clock).
    pub failed_at: DateTime<Utc>,
}

/// A copy of a runner's status at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// The follower's name (within its kind).
    pub name: Arc<str>,
    /// Where the runner is in its life.
    pub state: RunnerState,
    /// How far the runner is: every event up to here has had the follower's effect. The stored
    /// checkpoint may trail it, by batches that had nothing for the follower, for at most the
    /// runner's `checkpoint_delay`.
    pub position: LogPosition,
    /// Events whose effect this runner made and committed since it started (events of other
    /// categories, skipped, are not counted).
    pub events_applied: u64,
    /// Events whose effect was already there (see [`Applied::duplicates`](super::Applied)).
    pub duplicates: u64,
    /// Batches this runner committed since it started.
    pub batches_committed: u64,
    /// Roughly how many events it has still to read, measured after each step (0: caught up).
    pub lag_events: u64,
    /// The most recent failure, kept after recovery for diagnosis; `state` says whether the
    /// runner is failing now.
    pub last_error: Option<Failure>,
    /// Failures since the last committed batch (0 when healthy).
    pub consecutive_failures: u32,
}

/// How far a follower is behind the log.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Lag {
    /// The follower's position.
    pub position: LogPosition,
    /// The last committed event of the log.
    pub head: LogPosition,
    /// Roughly how many events it has still to read: the difference of positions, at least 1
    /// while behind. Positions follow insertion, not delivery order, so this is an estimate.
    pub behind_events: u64,
}

impl Lag {
    /// Whether the follower has read every event committed when the lag was measured.
    pub fn caught_up(&self) -> bool {
        self.position >= self.head
    }
}

/// How far `position` is behind `head`.
pub fn lag_between(position: LogPosition, head: LogPosition) -> Lag {
    let behind_events = if position >= head {
        0
    } else {
        u64::try_from(head.position.saturating_sub(position.position))
            .unwrap_or(0)
            .max(1)
    };
    Lag {
        position,
        head,
        behind_events,
    }
}

/// A running follower's status, shared between its runner (which writes it) and whoever watches
/// it. Cheap to clone; clones stay valid after the runner stops.
#[derive(Clone, Debug)]
pub struct FollowerStatus {
    cell: Arc<watch::Sender<StatusSnapshot>>,
}

impl FollowerStatus {
    pub(crate) fn new(name: &str) -> Self {
        let (cell, _) = watch::channel(StatusSnapshot {
            name: name.into(),
            state: RunnerState::Starting,
            position: LogPosition::START,
            events_applied: 0,
            duplicates: 0,
            batches_committed: 0,
            lag_events: 0,
            last_error: None,
            consecutive_failures: 0,
        });
        Self {
            cell: Arc::new(cell),
        }
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut StatusSnapshot)) {
        self.cell.send_modify(change);
    }

    /// Sets the lag, telling watchers only when it changed (it is measured after every step).
    pub(crate) fn set_lag(&self, lag_events: u64) {
        self.cell.send_if_modified(|s| {
            let changed = s.lag_events != lag_events;
            s.lag_events = lag_events;
            changed
        });
    }

    /// The follower's name.
    pub fn name(&self) -> Arc<str> {
        self.cell.borrow().name.clone()
    }

    /// The status now.
    pub fn snapshot(&self) -> StatusSnapshot {
        self.cell.borrow().clone()
    }

    /// How far the runner is (see [`StatusSnapshot::position`]).
    pub fn position(&self) -> LogPosition {
        self.cell.borrow().position
    }

    /// Where the runner is in its life.
    pub fn state(&self) -> RunnerState {
        self.cell.borrow().state
    }

    /// A receiver that sees every change, to await a condition.
    pub fn watch(&self) -> watch::Receiver<StatusSnapshot> {
        self.cell.subscribe()
    }

    /// How far the follower is behind the log's head now.
    pub async fn lag(&self, store: &EventStore) -> Result<Lag, StoreError> {
        let head = store.head().await?;
        Ok(lag_between(self.position(), head))
    }

    /// Whether the follower has had every event committed so far.
    pub async fn caught_up(&self, store: &EventStore) -> Result<bool, StoreError> {
        Ok(self.lag(store).await?.caught_up())
    }

    /// Waits until the runner reaches `target`; `false` if `timeout` passed first.
    pub async fn wait_for_position(&self, target: LogPosition, timeout: Duration) -> bool {
        let mut watch = self.watch();
        let reached = watch.wait_for(|status| status.position >= target);
        // The sender lives in `self`, so the wait ends only by reaching the target or timing out.
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }

    /// Marks a runner that will not run at all (its configuration cannot work) as stopped, with
    /// why.
    pub fn not_started(&self, error: &dyn std::error::Error) {
        self.update(|s| {
            s.state = RunnerState::Stopped;
            s.consecutive_failures += 1;
            s.last_error = Some(Failure {
                event: None,
                error: super::error_chain(error),
                failed_at: Utc::now(),
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(transaction_id: u64, position: i64) -> LogPosition {
        LogPosition {
            transaction_id,
            position,
        }
    }

    #[test]
    fn lag_is_zero_at_the_head_and_at_least_one_behind_it() {
        assert_eq!(lag_between(at(10, 5), at(10, 5)).behind_events, 0);
        assert!(lag_between(at(10, 5), at(10, 5)).caught_up());
        assert_eq!(lag_between(at(10, 5), at(12, 9)).behind_events, 4);
        // A later transaction with a lower position (it took its position first, committed
        // last): still behind.
        let lag = lag_between(at(10, 5), at(11, 3));
        assert!(!lag.caught_up());
        assert_eq!(lag.behind_events, 1);
        assert_eq!(
            lag_between(LogPosition::START, LogPosition::START).behind_events,
            0
        );
    }
}
