//! Running one projector: a follower of the log ([`event_store::follower`]) whose effect is its
//! read model's rows, applied in the transaction that moves its checkpoint.
//!
//! The loop, the checkpoint (`projector:<name>` in the one checkpoint table), the skip delay,
//! retry, status and stopping are the follower module's; its guarantees are the projector's:
//! rows and checkpoint commit together (exactly-once effects), a failing event rolls its batch
//! back and is retried until it applies (never skipped), two runners of one projector take turns,
//! and a batch with nothing of the projector's categories opens no transaction.
//!
//! [`ProjectorRunner::run`] stops when its [`Shutdown`] is triggered, after finishing and
//! committing the batch in hand, so a graceful shutdown loses no work.

use crate::projector::Projector;
use event_store::follower::{
    Applied, Batch, Categories, EffectError, Follower, FollowerId, FollowerStatus, InTransaction,
    MetricNames, Runner, RunnerConfig, Segment, Shutdown,
};
use event_store::{EventStore, LogPosition, RecordedEvent, StoreError};
use futures::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;

/// The kind of follower a projector is: its checkpoint is `projector:<name>`.
const KIND: &str = "projector";

/// The kind of follower a projector is, for tools that list or split them.
pub const FOLLOWER_KIND: &str = KIND;

/// The follower a projector named `name` runs as.
pub(crate) fn follower_id(name: &str) -> FollowerId {
    FollowerId::new(KIND, name)
}

/// How far the projector `name` has certainly got: its stored checkpoint (the start if it never
/// ran). Every event up to it is in its read model.
pub async fn checkpoint(pool: &PgPool, name: &str) -> Result<LogPosition, StoreError> {
    event_store::follower::checkpoint::position(pool, &follower_id(name)).await
}

/// The `/metrics` series of projectors, as they have always been named.
const METRICS: MetricNames = MetricNames {
    label: Some("projector"),
    position: Some("velka_projector_position"),
    applied_total: Some("velka_projector_events_applied_total"),
    duplicates_total: None,
    batch_seconds: Some("velka_projector_batch_seconds"),
    failures_total: Some("velka_projector_failures_total"),
    lag_events: Some("velka_projector_lag_events"),
    lag_ms: Some("velka_projector_lag_ms"),
};

/// A projector as a follower: the batch's events of its categories handed to it as one page,
/// through the batch's transaction.
#[derive(Debug)]
pub(crate) struct ProjectorFollower {
    id: FollowerId,
    projector: Arc<dyn Projector>,
}

impl Follower for ProjectorFollower {
    fn id(&self) -> &FollowerId {
        &self.id
    }

    fn categories(&self) -> Categories {
        Categories::Only(self.projector.categories())
    }

    fn metrics(&self) -> MetricNames {
        METRICS
    }
}

impl InTransaction for ProjectorFollower {
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        batch: &'a Batch<'a>,
    ) -> BoxFuture<'a, Result<Applied, EffectError>> {
        Box::pin(async move {
            let events: Vec<&RecordedEvent> = batch.events().collect();
            if let Err(error) = self.projector.apply(tx, &events).await {
                let event = error.position().and_then(|position| {
                    events
                        .iter()
                        .find(|event| event.log_position.position == position)
                });
                return Err(match event {
                    Some(event) => EffectError::on(event, error),
                    None => EffectError::new(error),
                });
            }
            Ok(Applied {
                events: events.len() as u64,
                ..Applied::default()
            })
        })
    }

    /// Rows and checkpoint commit together: a crash loses both or neither, so the commit need
    /// not wait for the disk (never so for the event append).
    fn commits_durably(&self) -> bool {
        false
    }
}

/// Runs one projector. Create it, take its [`status`](Self::status) handle, then
/// [`run`](Self::run) it (usually in a spawned task).
#[derive(Debug)]
pub struct ProjectorRunner {
    runner: Runner<ProjectorFollower>,
}

impl ProjectorRunner {
    /// A runner for `projector` over `store`.
    pub fn new(store: EventStore, projector: Arc<dyn Projector>, config: RunnerConfig) -> Self {
        Self::in_segment(store, projector, config, Segment::WHOLE)
    }

    /// A runner for one segment of `projector`'s streams (see [`Segment`]); only for a
    /// projector whose every row comes from one stream ([`Projector::segmentable`]).
    pub fn in_segment(
        store: EventStore,
        projector: Arc<dyn Projector>,
        config: RunnerConfig,
        segment: Segment,
    ) -> Self {
        let follower = ProjectorFollower {
            id: FollowerId::segment(KIND, projector.name(), segment),
            projector,
        };
        Self {
            runner: Runner::new(store, follower, config),
        }
    }

    /// The status handle; clones stay valid after the runner stops.
    pub fn status(&self) -> FollowerStatus {
        self.runner.status()
    }

    /// Applies the log to the read model until `shutdown` is triggered.
    pub async fn run(self, shutdown: Shutdown) {
        self.runner
            .run_in_transaction(async move { shutdown.triggered().await })
            .await;
    }
}
