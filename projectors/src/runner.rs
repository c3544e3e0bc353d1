//! Running one projector: follow the log from its checkpoint and apply each batch in one
//! transaction together with the new checkpoint.
//!
//! # Guarantees
//!
//! - **Exactly-once effects.** A batch's rows and the checkpoint after it commit together or
//!   not at all, so after any crash the projector restarts exactly where its rows end.
//! - **Never skips.** When applying fails, the transaction rolls back, the failure is logged and
//!   put in the status, and the same batch is retried from the committed checkpoint after a
//!   backoff that doubles up to `retry_max`. A poison event stops the projector (visibly, in
//!   `/readyz` and the logs) rather than being silently dropped.
//! - **One writer.** Each batch first locks the checkpoint row and checks it is where this
//!   runner left it, so two runners of the same projector (two processes, say) take turns and
//!   never both apply a batch.
//! - **Nothing written for nothing.** A batch with no event of the projector's categories
//!   changes no row, so it opens no transaction: the runner moves past it in memory and saves the
//!   checkpoint at most `checkpoint_delay` later (or with the next applied batch), in one
//!   compare-and-set statement. Otherwise every event would cost every projector a transaction
//!   (nine per command), which was most of a command's cost. A crash before that save only
//!   means reading the skipped events again and skipping them again.
//!
//! # Shutdown
//!
//! [`ProjectorRunner::run`] stops when its [`Shutdown`] is triggered. That interrupts only the
//! waits (for new events, for a backoff); a batch being applied is finished and committed first,
//! so a graceful shutdown loses no work.

use crate::checkpoint;
use crate::projector::{ProjectionError, Projector};
use crate::shutdown::Shutdown;
use crate::status::{FailedEvent, ProjectionFailure, ProjectorStatus, RunnerState, lag_between};
use chrono::Utc;
use event_store::{CheckpointDelay, EventStore, LogPosition, RecordedEvent, Subscription};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a runner reads and retries. The defaults suit production.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// At most this many events per batch, and so per transaction.
    pub batch_size: u32,
    /// How often to look for events appended by other processes (appends made in this process
    /// wake the runner at once).
    pub idle_poll: Duration,
    /// The first wait after a failure.
    pub retry_initial: Duration,
    /// The longest wait between retries.
    pub retry_max: Duration,
    /// How long the checkpoint may stay behind batches that had nothing for the projector.
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

/// Runs one projector. Create it, take its [`status`](Self::status) handle, then
/// [`run`](Self::run) it (usually in a spawned task).
#[derive(Debug)]
pub struct ProjectorRunner {
    store: EventStore,
    projector: Arc<dyn Projector>,
    config: RunnerConfig,
    status: ProjectorStatus,
}

/// What one step of the loop did.
enum Step {
    /// Applied a batch, skipped one, or saved the checkpoint past skipped ones.
    Applied,
    /// Saw the shutdown signal while waiting.
    ShutDown,
}

/// The checkpoint as stored, and whether (since when) the runner has been past it unsaved.
struct Saved {
    position: LogPosition,
    pending: CheckpointDelay,
}

/// A failed attempt, and the event it failed on if it was in applying one.
struct Attempt {
    event: Option<FailedEvent>,
    error: ProjectionError,
}

impl From<ProjectionError> for Attempt {
    fn from(error: ProjectionError) -> Self {
        Self { event: None, error }
    }
}

impl From<sqlx::Error> for Attempt {
    fn from(error: sqlx::Error) -> Self {
        ProjectionError::from(error).into()
    }
}

impl ProjectorRunner {
    /// A runner for `projector` over `store`.
    pub fn new(store: EventStore, projector: Arc<dyn Projector>, config: RunnerConfig) -> Self {
        let status = ProjectorStatus::new(projector.name());
        Self {
            store,
            projector,
            config,
            status,
        }
    }

    /// The status handle; clones stay valid after the runner stops.
    pub fn status(&self) -> ProjectorStatus {
        self.status.clone()
    }

    /// Applies the log to the read model until `shutdown` is triggered.
    pub async fn run(self, shutdown: Shutdown) {
        let name = self.projector.name();
        tracing::info!(projector = name, "projector starting");
        // Marks the status stopped however `run` ends, a panic included, so that whoever waits
        // for the runner to stop is not left waiting.
        let _stopped = StoppedOnDrop(self.status.clone());
        let mut backoff = self.config.retry_initial;
        // `None` after a failure: reload the checkpoint and subscribe again from it.
        let mut subscription: Option<Subscription> = None;
        let mut saved = Saved {
            position: LogPosition::START,
            pending: CheckpointDelay::new(self.config.checkpoint_delay),
        };
        let mut caught_up_at = Instant::now();
        loop {
            let attempt = self.step(&mut subscription, &mut saved, &shutdown).await;
            match attempt {
                Ok(Step::Applied) => {
                    backoff = self.config.retry_initial;
                    self.record_lag(&mut caught_up_at).await;
                }
                Ok(Step::ShutDown) => break,
                Err(attempt) => {
                    subscription = None;
                    self.record_failure(attempt, backoff);
                    let lag_ms = caught_up_at.elapsed().as_millis();
                    metrics::gauge!("velka_projector_lag_ms", "projector" => name)
                        .set(lag_ms as f64);
                    tokio::select! {
                        () = shutdown.triggered() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.config.retry_max);
                }
            }
        }
        tracing::info!(projector = name, position = ?self.status.position(), "projector stopped");
    }

    /// Waits for the next batch and applies it (or skips it, or saves the checkpoint past
    /// skipped ones when it is due).
    async fn step(
        &self,
        subscription: &mut Option<Subscription>,
        saved: &mut Saved,
        shutdown: &Shutdown,
    ) -> Result<Step, Attempt> {
        let subscription = match subscription {
            Some(subscription) => subscription,
            None => {
                let position = checkpoint::load(self.store.pool(), self.projector.name()).await?;
                saved.position = position;
                saved.pending.caught_up();
                self.status.update(|s| {
                    s.position = position;
                    if s.state == RunnerState::Starting {
                        s.state = RunnerState::Running;
                    }
                });
                metrics::gauge!("velka_projector_position", "projector" => self.projector.name())
                    .set(position.position as f64);
                subscription.insert(
                    self.store
                        .subscribe(position)
                        .with_batch_size(self.config.batch_size)
                        .with_idle_poll(self.config.idle_poll),
                )
            }
        };
        let pending = saved.pending;
        let batch = tokio::select! {
            biased;
            () = shutdown.triggered() => {
                // Leave the stored checkpoint where the runner is; failing that, the skipped
                // events are only read again next time.
                if saved.pending.is_behind() {
                    let _ = self.save_skipped(saved).await;
                }
                return Ok(Step::ShutDown);
            }
            batch = subscription.next_batch() => batch.map_err(ProjectionError::from)?,
            () = pending.due() => {
                self.save_skipped(saved).await?;
                return Ok(Step::Applied);
            }
        };
        let Some(last) = batch.last() else {
            return Ok(Step::Applied);
        };
        let categories = self.projector.categories();
        if batch
            .iter()
            .all(|event| !categories.contains(&event.category()))
        {
            self.status.update(|s| {
                s.state = RunnerState::Running;
                s.position = last.log_position;
                s.consecutive_failures = 0;
            });
            if saved.pending.skipped() {
                self.save_skipped(saved).await?;
            }
            return Ok(Step::Applied);
        }
        self.apply_batch(&batch, saved).await?;
        Ok(Step::Applied)
    }

    /// Saves the checkpoint at the runner's position, past batches it skipped, in one
    /// compare-and-set statement (no lock: nothing else is written with it).
    async fn save_skipped(&self, saved: &mut Saved) -> Result<(), Attempt> {
        let name = self.projector.name();
        let position = self.status.position();
        let moved = checkpoint::advance(self.store.pool(), name, saved.position, position).await?;
        if !moved {
            let found = checkpoint::load(self.store.pool(), name).await?;
            return Err(ProjectionError::CheckpointMoved {
                name,
                expected: saved.position,
                found,
            }
            .into());
        }
        saved.position = position;
        saved.pending.caught_up();
        Ok(())
    }

    /// Applies `batch` and moves the checkpoint past it, in one transaction.
    async fn apply_batch(&self, batch: &[RecordedEvent], saved: &mut Saved) -> Result<(), Attempt> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let name = self.projector.name();
        let started = Instant::now();
        let expected = saved.position;
        let mut tx = self.store.pool().begin().await?;
        let found = checkpoint::lock(&mut tx, name).await?;
        if found != expected {
            return Err(ProjectionError::CheckpointMoved {
                name,
                expected,
                found,
            }
            .into());
        }
        let categories = self.projector.categories();
        let mut applied: u64 = 0;
        for event in batch {
            if !categories.contains(&event.category()) {
                continue;
            }
            self.projector
                .apply(&mut tx, event)
                .await
                .map_err(|error| Attempt {
                    event: Some(FailedEvent::of(event)),
                    error,
                })?;
            applied += 1;
        }
        checkpoint::save(&mut tx, name, last.log_position).await?;
        tx.commit().await?;
        saved.position = last.log_position;
        saved.pending.caught_up();

        self.status.update(|s| {
            s.state = RunnerState::Running;
            s.position = last.log_position;
            s.events_applied += applied;
            s.batches_committed += 1;
            s.consecutive_failures = 0;
        });
        metrics::counter!("velka_projector_events_applied_total", "projector" => name)
            .increment(applied);
        metrics::gauge!("velka_projector_position", "projector" => name)
            .set(last.log_position.position as f64);
        metrics::histogram!("velka_projector_batch_seconds", "projector" => name)
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn record_failure(&self, attempt: Attempt, backoff: Duration) {
        let name = self.projector.name();
        let Attempt { event, error } = attempt;
        let mut status = self.status.snapshot();
        status.consecutive_failures += 1;
        match &event {
            Some(event) => tracing::error!(
                projector = name,
                position = event.log_position.position,
                transaction_id = event.log_position.transaction_id,
                stream_id = %event.stream_id,
                stream_version = event.stream_version,
                event_type = %event.event_type,
                error = %error,
                attempt = status.consecutive_failures,
                retry_in_ms = backoff.as_millis() as u64,
                "projector failed to apply an event; the batch was rolled back and will be retried",
            ),
            None => tracing::error!(
                projector = name,
                checkpoint = ?status.position,
                error = %error,
                attempt = status.consecutive_failures,
                retry_in_ms = backoff.as_millis() as u64,
                "projector failed; it will retry from its checkpoint",
            ),
        }
        metrics::counter!("velka_projector_failures_total", "projector" => name).increment(1);
        self.status.update(|s| {
            s.state = RunnerState::Retrying;
            s.consecutive_failures += 1;
            s.last_error = Some(ProjectionFailure {
                event,
                error: error_chain(&error),
                failed_at: Utc::now(),
            });
        });
    }

    /// Publishes how far behind the log the projector is after a batch. A failure to measure is
    /// only logged: lag is a gauge, not a reason to stop projecting.
    async fn record_lag(&self, caught_up_at: &mut Instant) {
        let name = self.projector.name();
        match self.store.recent_head().await {
            Ok(head) => {
                let lag = lag_between(self.status.position(), head);
                if lag.caught_up() {
                    *caught_up_at = Instant::now();
                }
                metrics::gauge!("velka_projector_lag_events", "projector" => name)
                    .set(lag.behind_events as f64);
                metrics::gauge!("velka_projector_lag_ms", "projector" => name)
                    .set(caught_up_at.elapsed().as_millis() as f64);
            }
            Err(error) => tracing::warn!(projector = name, %error, "cannot measure projector lag"),
        }
    }
}

/// Sets the runner's state to stopped when dropped.
struct StoppedOnDrop(ProjectorStatus);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(projector = self.0.name(), "projector runner panicked");
        }
        self.0.update(|s| s.state = RunnerState::Stopped);
    }
}

/// The error and its sources, `: `-separated, as one line for the status.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // thiserror's `{0}` messages often repeat the source; don't say it twice.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
