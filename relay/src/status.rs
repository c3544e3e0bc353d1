//! What a running relay reports: where its checkpoint is, how much it published, how far behind
//! the log it is, and the last thing that went wrong. Cheap to read and possible to await.

use chrono::{DateTime, Utc};
use event_store::LogPosition;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where a relay is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RelayState {
    /// Created, not yet at its checkpoint.
    Starting,
    /// Publishing batches or waiting for new events.
    Running,
    /// The last attempt failed; it waits out its backoff and retries from its checkpoint.
    Retrying,
    /// Stopped by its shutdown signal.
    Stopped,
}

/// A failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayFailure {
    /// What went wrong, with its causes.
    pub error: String,
    /// When (wall clock).
    pub failed_at: DateTime<Utc>,
}

/// A copy of a relay's status at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelaySnapshot {
    /// Where the relay is in its life.
    pub state: RelayState,
    /// The committed checkpoint: every event up to here is in the JetStream stream.
    pub position: LogPosition,
    /// Publishes JetStream stored as new since this relay started.
    pub events_published: u64,
    /// Publishes JetStream acknowledged as duplicates (already stored: a batch repeated after a
    /// crash or a failed attempt) since this relay started.
    pub duplicates: u64,
    /// Batches whose checkpoint this relay committed.
    pub batches_committed: u64,
    /// Roughly how many events the relay has still to publish, measured after each batch
    /// (positions follow insertion, not delivery order, so this is an estimate; 0 = caught up).
    pub lag_events: u64,
    /// The most recent failure, kept after recovery for diagnosis.
    pub last_error: Option<RelayFailure>,
    /// Failures since the last committed batch (0 when healthy).
    pub consecutive_failures: u32,
}

/// A relay's status, shared between the relay (which writes it) and whoever watches it.
#[derive(Clone, Debug)]
pub struct RelayStatus {
    cell: Arc<watch::Sender<RelaySnapshot>>,
}

impl RelayStatus {
    pub(crate) fn new() -> Self {
        let (cell, _) = watch::channel(RelaySnapshot {
            state: RelayState::Starting,
            position: LogPosition::START,
            events_published: 0,
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

    pub(crate) fn update(&self, change: impl FnOnce(&mut RelaySnapshot)) {
        self.cell.send_modify(change);
    }

    /// The status now.
    pub fn snapshot(&self) -> RelaySnapshot {
        self.cell.borrow().clone()
    }

    /// The committed checkpoint.
    pub fn position(&self) -> LogPosition {
        self.cell.borrow().position
    }

    /// A receiver that sees every change, to await a condition.
    pub fn watch(&self) -> watch::Receiver<RelaySnapshot> {
        self.cell.subscribe()
    }

    /// Waits until the checkpoint reaches `target`; `false` if `timeout` passed first.
    pub async fn wait_for_position(&self, target: LogPosition, timeout: Duration) -> bool {
        let mut watch = self.watch();
        let reached = watch.wait_for(|status| status.position >= target);
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }
}

/// Roughly how many events lie between `position` and `head`: at least 1 while behind.
pub(crate) fn lag_between(position: LogPosition, head: LogPosition) -> u64 {
    if position >= head {
        0
    } else {
        u64::try_from(head.position.saturating_sub(position.position))
            .unwrap_or(0)
            .max(1)
    }
}
