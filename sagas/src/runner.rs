//! Running one saga over the log: each batch's reactions, states, timers, outbox commands and
//! the checkpoint after it commit in one transaction.
//!
//! # Guarantees
//!
//! - **All or nothing.** A batch's effects and its checkpoint commit together, so after a crash
//!   the saga restarts exactly where its state ends.
//! - **Never skips.** A failing reaction (or database) rolls the batch back; the failure is put
//!   in the [`SagaStatus`], in `saga_checkpoints.last_error` and in the logs, and the batch is
//!   retried from the checkpoint after a backoff that doubles up to `retry_max`.
//! - **Never twice.** Each instance remembers the last event it reacted to and ignores events
//!   at or before it, so replaying the log from an older checkpoint changes nothing; and the
//!   outbox ignores commands whose derived id it already holds.
//! - **One writer.** Each batch locks the checkpoint row and checks it is where this runner left
//!   it, so two runners of the same saga take turns and never both apply a batch.
//! - **Nothing written for nothing.** A batch with no event of the saga's categories opens no
//!   transaction: the runner moves past it in memory and saves the checkpoint at most
//!   `checkpoint_delay` later (or with the next applied batch) by one compare-and-set. A crash
//!   before that only means reading those events again and ignoring them again.

use crate::error::SagaError;
use crate::saga::Saga;
use crate::store;
use chrono::{DateTime, Utc};
use event_store::{CheckpointDelay, EventStore, LogPosition, RecordedEvent, Subscription};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// How a runner reads and retries. The defaults suit production.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// At most this many events per batch, and so per transaction.
    pub batch_size: u32,
    /// How often to look for events appended by other processes.
    pub idle_poll: Duration,
    /// The first wait after a failure.
    pub retry_initial: Duration,
    /// The longest wait between retries.
    pub retry_max: Duration,
    /// How long the checkpoint may stay behind batches that had nothing for the saga.
    pub checkpoint_delay: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_poll: Duration::from_millis(100),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
            checkpoint_delay: Duration::from_millis(100),
        }
    }
}

/// What a runner is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunnerState {
    /// Not yet at its checkpoint.
    Starting,
    /// Following the log.
    Running,
    /// The last attempt failed; waiting to retry from the checkpoint.
    Retrying,
    /// `run` returned.
    Stopped,
}

/// The event a failure happened on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedEvent {
    /// Its id.
    pub event_id: Uuid,
    /// Its stream.
    pub stream_id: String,
    /// Its version in the stream.
    pub stream_version: u64,
    /// Where it is in the log.
    pub log_position: LogPosition,
}

/// The last failure of a runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SagaFailure {
    /// The event it failed on, if it failed in reacting to one.
    pub event: Option<FailedEvent>,
    /// The error, with its causes.
    pub error: String,
    /// When (wall-clock time).
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
struct StatusInner {
    saga: &'static str,
    state: RunnerState,
    position: LogPosition,
    reactions: u64,
    consecutive_failures: u32,
    last_error: Option<SagaFailure>,
}

/// A runner's live status; clones share it and stay valid after the runner stops.
#[derive(Clone, Debug)]
pub struct SagaStatus(Arc<Mutex<StatusInner>>);

impl SagaStatus {
    fn new(saga: &'static str) -> Self {
        Self(Arc::new(Mutex::new(StatusInner {
            saga,
            state: RunnerState::Starting,
            position: LogPosition::START,
            reactions: 0,
            consecutive_failures: 0,
            last_error: None,
        })))
    }

    fn read<T>(&self, f: impl FnOnce(&StatusInner) -> T) -> T {
        f(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn update(&self, f: impl FnOnce(&mut StatusInner)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The saga's name.
    pub fn saga(&self) -> &'static str {
        self.read(|s| s.saga)
    }

    /// What the runner is doing.
    pub fn state(&self) -> RunnerState {
        self.read(|s| s.state)
    }

    /// The committed checkpoint.
    pub fn position(&self) -> LogPosition {
        self.read(|s| s.position)
    }

    /// Reactions committed since the runner started.
    pub fn reactions(&self) -> u64 {
        self.read(|s| s.reactions)
    }

    /// Failures since the last committed batch.
    pub fn consecutive_failures(&self) -> u32 {
        self.read(|s| s.consecutive_failures)
    }

    /// The last failure, kept after a success for the record.
    pub fn last_error(&self) -> Option<SagaFailure> {
        self.read(|s| s.last_error.clone())
    }
}

/// A failed attempt, and the event it failed on if any.
struct Attempt {
    event: Option<FailedEvent>,
    error: SagaError,
}

impl From<SagaError> for Attempt {
    fn from(error: SagaError) -> Self {
        Self { event: None, error }
    }
}

impl From<sqlx::Error> for Attempt {
    fn from(error: sqlx::Error) -> Self {
        SagaError::from(error).into()
    }
}

impl From<event_store::StoreError> for Attempt {
    fn from(error: event_store::StoreError) -> Self {
        SagaError::from(error).into()
    }
}

/// Runs one saga over the log. Create it, take its [`status`](Self::status), then
/// [`run`](Self::run) it (usually in a spawned task).
#[derive(Debug)]
pub struct SagaRunner<S: Saga> {
    store: EventStore,
    saga: Arc<S>,
    config: RunnerConfig,
    status: SagaStatus,
}

impl<S: Saga + std::fmt::Debug> SagaRunner<S> {
    /// A runner for `saga` over `store`.
    pub fn new(store: EventStore, saga: Arc<S>, config: RunnerConfig) -> Self {
        let status = SagaStatus::new(saga.name());
        Self {
            store,
            saga,
            config,
            status,
        }
    }

    /// The status handle.
    pub fn status(&self) -> SagaStatus {
        self.status.clone()
    }

    /// Reacts to the log until `stop` resolves. Only waits are interrupted: a batch being
    /// applied is finished first.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let name = self.saga.name();
        tracing::info!(saga = name, "saga runner starting");
        tokio::pin!(stop);
        let mut backoff = self.config.retry_initial;
        // `None` after a failure: reload the checkpoint and subscribe again from it.
        let mut subscription: Option<Subscription> = None;
        // The checkpoint as stored, and since when the runner has been past it unsaved.
        let mut saved = LogPosition::START;
        let mut pending = CheckpointDelay::new(self.config.checkpoint_delay);
        loop {
            let next = {
                let subscription = match &mut subscription {
                    Some(subscription) => subscription,
                    None => match store::load_checkpoint(self.store.pool(), name).await {
                        Ok(position) => {
                            saved = position;
                            pending.caught_up();
                            self.status.update(|s| {
                                s.position = position;
                                if s.state == RunnerState::Starting {
                                    s.state = RunnerState::Running;
                                }
                            });
                            subscription.insert(
                                self.store
                                    .subscribe(position)
                                    .with_batch_size(self.config.batch_size)
                                    .with_idle_poll(self.config.idle_poll),
                            )
                        }
                        Err(error) => {
                            self.record_failure(error.into(), backoff).await;
                            tokio::select! {
                                () = &mut stop => break,
                                () = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(self.config.retry_max);
                            continue;
                        }
                    },
                };
                let due = pending;
                tokio::select! {
                    biased;
                    () = &mut stop => {
                        if pending.is_behind() {
                            // Failing that, the skipped events are only read again next time.
                            let _ = self.save_skipped(&mut saved).await;
                        }
                        break;
                    }
                    batch = subscription.next_batch() => Some(batch),
                    () = due.due() => None,
                }
            };
            let outcome = match next {
                // The checkpoint is due to follow the runner past skipped batches.
                None => self.save_skipped(&mut saved).await,
                Some(Err(error)) => Err(error.into()),
                Some(Ok(batch)) => {
                    let categories = self.saga.categories();
                    match batch.last() {
                        Some(last)
                            if batch
                                .iter()
                                .all(|event| !categories.contains(&event.category())) =>
                        {
                            self.status.update(|s| {
                                s.state = RunnerState::Running;
                                s.position = last.log_position;
                                s.consecutive_failures = 0;
                            });
                            if pending.skipped() {
                                self.save_skipped(&mut saved).await
                            } else {
                                Ok(())
                            }
                        }
                        _ => self.apply_batch(&batch, &mut saved).await,
                    }
                }
            };
            if saved == self.status.position() {
                pending.caught_up();
            }
            match outcome {
                Ok(()) => backoff = self.config.retry_initial,
                Err(attempt) => {
                    subscription = None;
                    self.record_failure(attempt, backoff).await;
                    tokio::select! {
                        () = &mut stop => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.config.retry_max);
                }
            }
        }
        self.status.update(|s| s.state = RunnerState::Stopped);
        tracing::info!(saga = name, position = ?self.status.position(), "saga runner stopped");
    }

    /// Saves the checkpoint at the runner's position, past batches it skipped.
    async fn save_skipped(&self, saved: &mut LogPosition) -> Result<(), Attempt> {
        let name = self.saga.name();
        let position = self.status.position();
        if !store::advance_checkpoint(self.store.pool(), name, *saved, position).await? {
            let found = store::load_checkpoint(self.store.pool(), name).await?;
            return Err(SagaError::CheckpointMoved {
                saga: name,
                expected: *saved,
                found,
            }
            .into());
        }
        *saved = position;
        Ok(())
    }

    /// Reacts to `batch` and moves the checkpoint past it, in one transaction.
    async fn apply_batch(
        &self,
        batch: &[RecordedEvent],
        saved: &mut LogPosition,
    ) -> Result<(), Attempt> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let saga = &*self.saga;
        let name = saga.name();
        let categories = saga.categories();
        let relevant: Vec<(&RecordedEvent, String)> = batch
            .iter()
            .filter(|event| categories.contains(&event.category()))
            .filter_map(|event| saga.instance_of(event).map(|id| (event, id)))
            .collect();
        let mut ids: Vec<String> = relevant.iter().map(|(_, id)| id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();

        let expected = *saved;
        let mut tx = self.store.pool().begin().await?;
        let found = store::lock_checkpoint(&mut tx, name).await?;
        if found != expected {
            return Err(SagaError::CheckpointMoved {
                saga: name,
                expected,
                found,
            }
            .into());
        }
        let mut instances = store::lock_instances(&mut tx, name, &ids, false).await?;
        let mut reactions: u64 = 0;
        for (event, instance_id) in relevant {
            let failed = |error: SagaError| Attempt {
                event: Some(FailedEvent {
                    event_id: event.event_id,
                    stream_id: event.stream_id.clone(),
                    stream_version: event.stream_version,
                    log_position: event.log_position,
                }),
                error,
            };
            let instance = instances.get(&instance_id);
            if let Some(instance) = instance {
                let seen = instance.last.is_some_and(|last| last >= event.log_position);
                if instance.completed || seen {
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
                &mut tx,
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
            reactions += 1;
        }
        store::save_checkpoint(&mut tx, name, last.log_position).await?;
        tx.commit().await?;
        *saved = last.log_position;
        self.status.update(|s| {
            s.state = RunnerState::Running;
            s.position = last.log_position;
            s.reactions += reactions;
            s.consecutive_failures = 0;
        });
        Ok(())
    }

    async fn record_failure(&self, attempt: Attempt, backoff: Duration) {
        let name = self.saga.name();
        let Attempt { event, error } = attempt;
        let text = error_chain(&error);
        tracing::error!(
            saga = name,
            event_id = ?event.as_ref().map(|e| e.event_id),
            stream_id = ?event.as_ref().map(|e| e.stream_id.as_str()),
            error = %text,
            retry_in_ms = backoff.as_millis() as u64,
            "saga failed; the batch was rolled back and will be retried from the checkpoint",
        );
        let stored = match &event {
            Some(e) => format!(
                "{} v{} ({}): {text}",
                e.stream_id, e.stream_version, e.event_id
            ),
            None => text.clone(),
        };
        if let Err(error) = store::record_checkpoint_error(self.store.pool(), name, &stored).await {
            tracing::warn!(saga = name, %error, "cannot record the saga's failure");
        }
        self.status.update(|s| {
            s.state = RunnerState::Retrying;
            s.consecutive_failures += 1;
            s.last_error = Some(SagaFailure {
                event,
                error: text,
                at: Utc::now(),
            });
        });
    }
}

/// The error and its sources, `: `-separated, as one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
