//! What a running projector reports: where it is, how much it applied, and the last thing that
//! went wrong. Cheap to read (the binary's `/readyz` and `/metrics` read it on every request) and
//! possible to await (tests wait for a position instead of sleeping).

use chrono::{DateTime, Utc};
use event_store::{EventStore, LogPosition, RecordedEvent, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Where a runner is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RunnerState {
    /// Created or loading its checkpoint.
    Starting,
    /// Applying batches or waiting for new events.
    Running,
    /// The last attempt failed; it waits out its backoff and retries from its checkpoint.
    Retrying,
    /// Stopped by the shutdown signal.
    Stopped,
}

/// The event a failed batch stopped at.
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
    pub(crate) fn of(event: &RecordedEvent) -> Self {
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
pub struct ProjectionFailure {
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
    /// The projector's name.
    pub name: &'static str,
    /// Where the runner is in its life.
    pub state: RunnerState,
    /// How far the runner is: every event up to here is in the read model. The stored
    /// checkpoint may trail it, by batches that had nothing for the projector, for at most the
    /// runner's `checkpoint_delay`.
    pub position: LogPosition,
    /// Events this runner applied and committed since it started (events of other categories,
    /// skipped, are not counted).
    pub events_applied: u64,
    /// Batches this runner committed since it started.
    pub batches_committed: u64,
    /// The most recent failure, kept after recovery for diagnosis; `state` says whether the
    /// runner is failing now.
    pub last_error: Option<ProjectionFailure>,
    /// Failures since the last committed batch (0 when healthy).
    pub consecutive_failures: u32,
}

/// How far a projector is behind the log.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProjectorLag {
    /// The projector's committed checkpoint.
    pub position: LogPosition,
    /// The last committed event of the log.
    pub head: LogPosition,
    /// Roughly how many events it has still to read: the difference of positions, at least 1
    /// while behind. Positions follow insertion, not delivery order, so this is an estimate.
    pub behind_events: u64,
}

impl ProjectorLag {
    /// Whether the projector has read every event committed when the lag was measured.
    pub fn caught_up(&self) -> bool {
        self.position >= self.head
    }
}

/// A running projector's status, shared between the runner (which writes it) and whoever
/// watches it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ProjectorStatus {
    cell: Arc<watch::Sender<StatusSnapshot>>,
}

impl ProjectorStatus {
    pub(crate) fn new(name: &'static str) -> Self {
        let (cell, _) = watch::channel(StatusSnapshot {
            name,
            state: RunnerState::Starting,
            position: LogPosition::START,
            events_applied: 0,
            batches_committed: 0,
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

    /// The projector's name.
    pub fn name(&self) -> &'static str {
        self.cell.borrow().name
    }

    /// The status now.
    pub fn snapshot(&self) -> StatusSnapshot {
        self.cell.borrow().clone()
    }

    /// The committed checkpoint.
    pub fn position(&self) -> LogPosition {
        self.cell.borrow().position
    }

    /// A receiver that sees every change, to await a condition.
    pub fn watch(&self) -> watch::Receiver<StatusSnapshot> {
        self.cell.subscribe()
    }

    /// How far the projector is behind the log's head now.
    pub async fn lag(&self, store: &EventStore) -> Result<ProjectorLag, StoreError> {
        let head = store.head().await?;
        Ok(lag_between(self.position(), head))
    }

    /// Whether the projector has applied every event committed so far.
    pub async fn caught_up(&self, store: &EventStore) -> Result<bool, StoreError> {
        Ok(self.lag(store).await?.caught_up())
    }

    /// Waits until the checkpoint reaches `target`; `false` if `timeout` passed first.
    pub async fn wait_for_position(&self, target: LogPosition, timeout: Duration) -> bool {
        let mut watch = self.watch();
        let reached = watch.wait_for(|status| status.position >= target);
        // The sender lives in `self`, so the wait ends only by reaching the target or timing out.
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }
}

/// How far `position` is behind `head`.
pub fn lag_between(position: LogPosition, head: LogPosition) -> ProjectorLag {
    let behind_events = if position >= head {
        0
    } else {
        u64::try_from(head.position.saturating_sub(position.position))
            .unwrap_or(0)
            .max(1)
    };
    ProjectorLag {
        position,
        head,
        behind_events,
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
