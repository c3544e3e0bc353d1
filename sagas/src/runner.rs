//! Running one saga over the log: a follower ([`event_store::follower`]) whose effect, in the
//! transaction that moves its checkpoint, is each batch's reactions — the instances' states,
//! their timers and the outbox's commands.
//!
//! The loop, the checkpoint (`saga:<name>` in the one checkpoint table), the skip delay, retry,
//! status and stopping are the follower module's. What is the saga's own:
//!
//! - **Never twice.** Each instance remembers the last event it reacted to and ignores events
//!   at or before it, so replaying the log from an older checkpoint changes nothing (such
//!   events are counted as `duplicates` in the status); and the outbox ignores commands whose
//!   derived id it already holds.
//! - **Locks in one order.** The batch's instances are locked in instance id order after the
//!   checkpoint row, the order every transaction of the runtime takes them in.
//! - A failing reaction rolls the batch back; the follower module records it (status, logs,
//!   the checkpoint row's `last_error`, which the admin view shows) and retries from the
//!   checkpoint, never skipping the event.

use crate::error::SagaError;
use crate::saga::Saga;
use crate::store;
use event_store::EventStore;
use event_store::RecordedEvent;
use event_store::follower::{
    Applied, Batch, Categories, EffectError, Follower, FollowerId, FollowerStatus, InTransaction,
    MetricNames, Runner, RunnerConfig, Segment,
};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use std::future::Future;
use std::sync::Arc;

/// The kind of follower a saga is: its checkpoint is `saga:<name>`.
pub const KIND: &str = "saga";

/// The `/metrics` series of sagas, one of each per saga (`saga="<name>"`).
const METRICS: MetricNames = MetricNames {
    label: Some("saga"),
    position: Some("velka_saga_position"),
    applied_total: Some("velka_saga_reactions_total"),
    duplicates_total: None,
    batch_seconds: Some("velka_saga_batch_seconds"),
    failures_total: Some("velka_saga_failures_total"),
    lag_events: Some("velka_saga_lag_events"),
    lag_ms: Some("velka_saga_lag_ms"),
};

/// A saga as a follower.
#[derive(Debug)]
pub(crate) struct SagaFollower<S> {
    id: FollowerId,
    saga: Arc<S>,
}

impl<S: Saga> Follower for SagaFollower<S> {
    fn id(&self) -> &FollowerId {
        &self.id
    }

    fn categories(&self) -> Categories {
        Categories::Only(self.saga.categories())
    }

    /// Its instance: an instance's events come from several streams (an account's and its
    /// trips'), and must all reach the one segment that keeps its state.
    fn partition_key<'e>(&self, event: &'e RecordedEvent) -> Option<std::borrow::Cow<'e, str>> {
        self.saga.instance_of(event).map(std::borrow::Cow::Owned)
    }

    fn metrics(&self) -> MetricNames {
        METRICS
    }
}

impl<S: Saga> InTransaction for SagaFollower<S> {
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        batch: &'a Batch<'a>,
    ) -> BoxFuture<'a, Result<Applied, EffectError>> {
        Box::pin(react(&*self.saga, tx, batch))
    }
}

/// Reacts to the saga's events in `batch` through `tx`.
async fn react<S: Saga>(
    saga: &S,
    tx: &mut PgConnection,
    batch: &Batch<'_>,
) -> Result<Applied, EffectError> {
    let name = saga.name();
    let relevant: Vec<(&RecordedEvent, String)> = batch
        .events()
        .filter_map(|event| saga.instance_of(event).map(|id| (event, id)))
        .collect();
    let mut ids: Vec<String> = relevant.iter().map(|(_, id)| id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();

    let mut instances = store::lock_instances(tx, name, &ids, false)
        .await
        .map_err(EffectError::new)?;
    let mut applied = Applied::default();
    for (event, instance_id) in relevant {
        let failed = |error: SagaError| EffectError::on(event, error);
        let instance = instances.get(&instance_id);
        if let Some(instance) = instance {
            if instance.last.is_some_and(|last| last >= event.log_position) {
                applied.duplicates += 1;
                continue;
            }
            if instance.completed {
                continue;
            }
        }
        let state = match instance {
            Some(instance) => Some(
                serde_json::from_value::<S::State>(instance.state.clone())
                    .map_err(|e| failed(e.into()))?,
            ),
            None => None,
        };
        let reaction = saga
            .react(state, event)
            .map_err(|e| failed(e.into()))
            .and_then(|r| store::encode(r).map_err(failed))?;
        store::store_reaction(
            tx,
            name,
            &instance_id,
            event.event_id,
            &reaction,
            Some(event.log_position),
        )
        .await
        .map_err(failed)?;
        instances.insert(
            instance_id,
            store::Instance {
                state: reaction.state,
                completed: reaction.completed,
                last: Some(event.log_position),
            },
        );
        applied.events += 1;
    }
    Ok(applied)
}

/// Runs one saga over the log. Create it, take its [`status`](Self::status), then
/// [`run`](Self::run) it (usually in a spawned task).
#[derive(Debug)]
pub struct SagaRunner<S> {
    runner: Runner<SagaFollower<S>>,
}

impl<S: Saga + std::fmt::Debug> SagaRunner<S> {
    /// A runner for `saga` over `store`.
    pub fn new(store: EventStore, saga: Arc<S>, config: RunnerConfig) -> Self {
        Self::in_segment(store, saga, config, Segment::WHOLE)
    }

    /// A runner for one segment of `saga`'s instances (see [`Segment`]).
    pub fn in_segment(
        store: EventStore,
        saga: Arc<S>,
        config: RunnerConfig,
        segment: Segment,
    ) -> Self {
        let follower = SagaFollower {
            id: FollowerId::segment(KIND, saga.name(), segment),
            saga,
        };
        Self {
            runner: Runner::new(store, follower, config),
        }
    }

    /// The status handle (`events_applied`: reactions stored); clones stay valid after the
    /// runner stops.
    pub fn status(&self) -> FollowerStatus {
        self.runner.status()
    }

    /// Reacts to the log until `stop` resolves. Only waits are interrupted: a batch being
    /// applied is finished first.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        self.runner.run_in_transaction(stop).await;
    }
}
