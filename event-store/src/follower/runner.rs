//! The batch loop every follower runs: from the stored checkpoint, each batch of the log either
//! skipped (nothing of the follower's), or applied with its checkpoint; on failure, back off and
//! start again from the checkpoint.
//!
//! # Guarantees
//!
//! - **Never skips.** A failure (the log, the effect, the commit, a checkpoint moved by someone
//!   else) drops everything held in memory and starts again from the stored checkpoint after a
//!   backoff that doubles up to `retry_max`. A poison event stops the follower where it is,
//!   visibly (status, logs, `last_error`), rather than being passed over.
//! - **Exactly-once effects** for an [`InTransaction`] follower: the batch's effect and the new
//!   checkpoint commit together or not at all. An [`AfterEffect`] follower's effect is made
//!   before its checkpoint moves: at least once, and at most one batch again after a crash.
//! - **One writer.** Each write is a compare-and-set from where this runner left the checkpoint
//!   (an in-transaction batch makes it first, which locks the row until its commit, so two
//!   runners take turns instead of both doing the work): a runner that was overtaken finds out
//!   and starts again from what is stored.
//! - **Nothing written for nothing.** A batch with nothing of the follower's categories opens no
//!   transaction: the runner moves past it in memory and saves the checkpoint at most
//!   `checkpoint_delay` later (or with the next applied batch), in one statement. Otherwise every
//!   event would cost every projector and saga a transaction. A crash before that save only
//!   means reading the skipped events again and skipping them again.
//!
//! # Stopping
//!
//! [`Runner::run_in_transaction`] and [`Runner::run_after_effect`] return when their stop future
//! resolves. That interrupts only the waits (for new events, for a backoff); a batch in hand is
//! finished and committed first, and a checkpoint left behind skipped batches is saved.

use super::checkpoint::{self, Checkpoint, FollowerId, Segment};
use super::delay::CheckpointDelay;
use super::error::{FollowerError, error_chain};
use super::metrics::Metrics;
use super::status::{Failure, FollowerStatus, RunnerState, lag_between};
use super::{AfterEffect, Applied, Batch, Follower, InTransaction};
use crate::{EventStore, Subscription};
use chrono::Utc;
use futures::future::BoxFuture;
use sqlx::PgPool;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

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
    /// How long the stored checkpoint may stay behind batches that had nothing for the follower.
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

/// Runs one follower over the log. Create it, take its [`status`](Self::status), then run it
/// (usually in a spawned task) with the method of the follower's kind of effect.
#[derive(Debug)]
pub struct Runner<F> {
    store: EventStore,
    follower: F,
    config: RunnerConfig,
    status: FollowerStatus,
}

/// Where the loop is between steps; dropped on a failure, so the next step starts again from
/// the stored checkpoint.
struct Following {
    subscription: Subscription,
    /// The checkpoint as stored.
    saved: Checkpoint,
    /// How far the runner is (past `saved` by skipped batches, at most `checkpoint_delay`).
    at: crate::LogPosition,
    /// Since when `at` has been ahead of `saved`.
    delay: CheckpointDelay,
    /// The token of the lease it runs under, which its writes carry (`None`: unowned).
    fence: Option<i64>,
}

/// What one step did.
enum Step {
    /// Applied or skipped a batch, saved the checkpoint, or ticked.
    Moved,
    /// The stop signal came while waiting.
    Stopped,
}

/// How a batch's effect and its checkpoint are committed: the one difference between the two
/// kinds of follower.
trait Commit {
    type Follower: Follower;

    fn follower(&self) -> &Self::Follower;

    fn commit<'a>(
        &'a self,
        store: &'a EventStore,
        saved: &'a Checkpoint,
        batch: &'a Batch<'a>,
        fence: Option<i64>,
    ) -> BoxFuture<'a, Result<(Checkpoint, Applied), FollowerError>>;
}

/// An in-transaction follower's commit (see [`commit_in_transaction`]).
struct Transactional<'f, F>(&'f F);

/// An after-effect follower's commit: the effect, then the checkpoint by compare-and-set.
struct Outside<'f, F>(&'f F);

impl<F: InTransaction> Commit for Transactional<'_, F> {
    type Follower = F;

    fn follower(&self) -> &F {
        self.0
    }

    fn commit<'a>(
        &'a self,
        store: &'a EventStore,
        saved: &'a Checkpoint,
        batch: &'a Batch<'a>,
        fence: Option<i64>,
    ) -> BoxFuture<'a, Result<(Checkpoint, Applied), FollowerError>> {
        Box::pin(commit_batch(
            store.pool(),
            Some(store),
            self.0,
            saved,
            batch,
            fence,
        ))
    }
}

impl<F: AfterEffect> Commit for Outside<'_, F> {
    type Follower = F;

    fn follower(&self) -> &F {
        self.0
    }

    fn commit<'a>(
        &'a self,
        store: &'a EventStore,
        saved: &'a Checkpoint,
        batch: &'a Batch<'a>,
        fence: Option<i64>,
    ) -> BoxFuture<'a, Result<(Checkpoint, Applied), FollowerError>> {
        Box::pin(async move {
            let applied = self.0.apply(batch).await?;
            let to = Checkpoint {
                position: batch.last(),
                state: applied.state.clone(),
            };
            advance(store.pool(), self.0.id(), saved.position, &to, fence).await?;
            Ok((to, applied))
        })
    }
}

/// Applies `batch` (right after `saved`) to an in-transaction follower and moves its checkpoint
/// past it, in one transaction: move the checkpoint from `saved` (a compare-and-set that also
/// locks the row), apply, write the follower's new state if it has one, commit. Returns the new
/// checkpoint. What the runner does for each batch (there also marking the transaction quiet,
/// see [`EventStore::quiet`]); for tools that drive a follower by hand (a benchmark sealing a
/// bulk-loaded log).
pub async fn commit_in_transaction<F: InTransaction + ?Sized>(
    pool: &PgPool,
    follower: &F,
    saved: &Checkpoint,
    batch: &Batch<'_>,
) -> Result<(Checkpoint, Applied), FollowerError> {
    commit_batch(pool, None, follower, saved, batch, None).await
}

/// [`commit_in_transaction`], quiet towards the readers of `quiet_in` when given: a batch
/// appends no events, so the log need not wait for it; and fenced by `fence`, the token of the
/// lease this process holds on the follower, when it has one.
async fn commit_batch<F: InTransaction + ?Sized>(
    pool: &PgPool,
    quiet_in: Option<&EventStore>,
    follower: &F,
    saved: &Checkpoint,
    batch: &Batch<'_>,
    fence: Option<i64>,
) -> Result<(Checkpoint, Applied), FollowerError> {
    let id = follower.id();
    crate::crash::pause_point("follower-batch");
    // The transaction's settings ride on its BEGIN: no round trip of their own, which under load
    // is a scheduling wait for both the process and the database.
    let mut tx = match (quiet_in.is_some(), follower.commits_durably()) {
        (false, true) => pool.begin().await?,
        (false, false) => {
            pool.begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                .await?
        }
        (true, true) => pool.begin_with(crate::quiet::BEGIN).await?,
        (true, false) => pool.begin_with(crate::quiet::BEGIN_LAZY).await?,
    };
    // The checkpoint moves first, by compare-and-set with the state it had: one statement
    // that checks it, locks it until the commit (a second runner waits, then finds it moved)
    // and names the transaction. A follower whose state changed writes it again after.
    let last = batch.last();
    let early = Checkpoint {
        position: last,
        state: saved.state.clone(),
    };
    let Some(transaction) =
        checkpoint::write_naming(&mut *tx, id, saved.position, &early, fence).await?
    else {
        return Err(refused(&mut tx, id, saved.position, fence).await);
    };
    // Dropped before `tx` on every path: at worst the log waits for the rollback, as it did
    // for every transaction before there were quiet ones.
    let _quiet = quiet_in.map(|store| crate::quiet::register(&store.quiet, transaction));
    let applied = follower.apply(&mut tx, batch).await?;
    let to = Checkpoint {
        position: last,
        state: applied.state.clone(),
    };
    // Under the row lock, so it holds; checked all the same, as every write is.
    if to.state != early.state && !checkpoint::write_fenced(&mut *tx, id, last, &to, fence).await? {
        return Err(FollowerError::CheckpointMoved {
            follower: id.to_string(),
            expected: last,
            found: None,
        });
    }
    tx.commit().await?;
    Ok((to, applied))
}

/// Moves the checkpoint of `id` from `from` to `to` alone (no transaction); an error naming
/// where it is when someone else moved it.
async fn advance(
    pool: &PgPool,
    id: &FollowerId,
    from: crate::LogPosition,
    to: &Checkpoint,
    fence: Option<i64>,
) -> Result<(), FollowerError> {
    if checkpoint::write_fenced(pool, id, from, to, fence).await? {
        return Ok(());
    }
    let mut connection = pool.acquire().await?;
    Err(refused(&mut connection, id, from, fence).await)
}

/// Why a compare-and-set from `expected` by the owner of token `fence` changed nothing: a newer
/// owner's fence, or a checkpoint moved by someone else.
async fn refused(
    executor: &mut sqlx::PgConnection,
    id: &FollowerId,
    expected: crate::LogPosition,
    fence: Option<i64>,
) -> FollowerError {
    if let Some(token) = fence {
        match checkpoint::fence(&mut *executor, id).await {
            Ok(Some(found)) if found != token => {
                return FollowerError::Fenced {
                    follower: id.to_string(),
                    token,
                    fence: found,
                };
            }
            Ok(_) => {}
            Err(error) => return error.into(),
        }
    }
    match checkpoint::read(&mut *executor, id).await {
        Ok(stored) => FollowerError::CheckpointMoved {
            follower: id.to_string(),
            expected,
            found: stored.map(|stored| stored.checkpoint.position),
        },
        Err(error) => error.into(),
    }
}

impl<F: Follower> Runner<F> {
    /// A runner of `follower` over `store`.
    pub fn new(store: EventStore, follower: F, config: RunnerConfig) -> Self {
        let id = follower.id();
        let status = if id.segment == Segment::WHOLE {
            FollowerStatus::new(&id.name)
        } else {
            FollowerStatus::new(&format!(
                "{}#{}/{}",
                id.name,
                id.segment.index(),
                id.segment.count()
            ))
        };
        Self {
            store,
            follower,
            config,
            status,
        }
    }

    /// The status handle; clones stay valid after the runner stops.
    pub fn status(&self) -> FollowerStatus {
        self.status.clone()
    }

    /// The follower it runs.
    pub fn follower(&self) -> &F {
        &self.follower
    }

    /// The follower it runs, to finish setting it up before it runs.
    pub fn follower_mut(&mut self) -> &mut F {
        &mut self.follower
    }
}

impl<F: InTransaction> Runner<F> {
    /// Applies the log to an in-transaction follower until `stop` resolves.
    pub async fn run_in_transaction(self, stop: impl Future<Output = ()>) {
        let commit = Transactional(&self.follower);
        follow(&self.store, &commit, &self.config, &self.status, stop).await;
    }
}

impl<F: AfterEffect> Runner<F> {
    /// Applies the log to an after-effect follower until `stop` resolves.
    pub async fn run_after_effect(self, stop: impl Future<Output = ()>) {
        let commit = Outside(&self.follower);
        follow(&self.store, &commit, &self.config, &self.status, stop).await;
    }
}

/// The loop.
async fn follow<C: Commit>(
    store: &EventStore,
    commit: &C,
    config: &RunnerConfig,
    status: &FollowerStatus,
    stop: impl Future<Output = ()>,
) {
    let follower = commit.follower();
    let id = follower.id();
    tracing::info!(follower = %id, "follower starting");
    // Marks the status stopped however the loop ends, a panic included, so that whoever waits
    // for the runner to stop is not left waiting.
    let _stopped = StoppedOnDrop { status, id };
    let metrics = Metrics::register(id, follower.metrics());
    metrics.owned(true);
    tokio::pin!(stop);
    // When processes share the followers, this one runs only while it holds the lease.
    let mut lease = store.leases().map(|leases| leases.want(id.lease_name()));
    let mut backoff = config.retry_initial;
    let mut following: Option<Following> = None;
    let mut caught_up_at = Instant::now();
    loop {
        let fence = match lease.as_mut() {
            None => None,
            Some(lease) => match lease.token() {
                Some(token) => Some(token),
                None => {
                    if following.take().is_some() {
                        tracing::info!(follower = %id, "follower lost its lease; standing by");
                    }
                    status.update(|s| s.state = RunnerState::Standby);
                    metrics.owned(false);
                    tokio::select! {
                        () = &mut stop => break,
                        token = lease.acquired() => {
                            tracing::info!(follower = %id, token, holder = lease.holder(),
                                "follower took its lease");
                            metrics.owned(true);
                            continue;
                        }
                    }
                }
            },
        };
        if following.as_ref().is_some_and(|f| f.fence != fence) {
            following = None;
        }
        let lost = async {
            match (lease.as_mut(), fence) {
                (Some(lease), Some(token)) => lease.lost(token).await,
                _ => std::future::pending().await,
            }
        };
        let step = step(
            store,
            commit,
            config,
            status,
            &metrics,
            &mut following,
            &mut stop,
            Owner { fence, lost },
        );
        match step.await {
            Ok(Step::Moved) => {
                backoff = config.retry_initial;
                record_lag(store, id, status, &metrics, &mut caught_up_at).await;
            }
            Ok(Step::Stopped) => break,
            Err(error @ FollowerError::Fenced { .. }) => {
                // Not a failure to retry: another process owns the follower now. Say so once
                // and stand by until this process sees the lease gone.
                following = None;
                metrics.fenced();
                tracing::warn!(follower = %id, error = %error,
                    "follower's late write refused by a newer owner's fence; standing by");
                // (Or, should this process still hold the lease — another process under the
                // same worker id, a checkpoint reset by hand — until a retry's wait is over:
                // slowly, never silently.)
                if let (Some(lease), Some(token)) = (lease.as_mut(), fence) {
                    tokio::select! {
                        () = &mut stop => break,
                        () = lease.lost(token) => {}
                        () = tokio::time::sleep(config.retry_max) => {}
                    }
                }
            }
            Err(error) => {
                following = None;
                record_failure(store.pool(), id, status, &metrics, &error, backoff).await;
                // Keep the lag honest while failing: the log grows, the follower does not.
                let head = store.recent_head().await.ok();
                let behind = head.map(|head| lag_between(status.position(), head).behind_events);
                metrics.lag(behind, caught_up_at.elapsed());
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(config.retry_max);
            }
        }
    }
    if let Some(lease) = lease {
        lease.release();
    }
    tracing::info!(follower = %id, position = ?status.position(), "follower stopped");
}

/// What the runner knows of its ownership for one step: the token its writes carry (`None`:
/// unowned), and a future that resolves when the lease is lost.
struct Owner<L> {
    fence: Option<i64>,
    lost: L,
}

/// Waits for the next batch and applies it, skips it, saves the checkpoint past skipped ones
/// when that is due, or ticks the follower.
#[allow(clippy::too_many_arguments)]
async fn step<C: Commit>(
    store: &EventStore,
    commit: &C,
    config: &RunnerConfig,
    status: &FollowerStatus,
    metrics: &Metrics,
    following: &mut Option<Following>,
    stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    owner: Owner<impl Future<Output = ()>>,
) -> Result<Step, FollowerError> {
    let follower = commit.follower();
    let id = follower.id();
    let fence = owner.fence;
    let state = match following {
        Some(state) => state,
        None => {
            let saved = match fence {
                None => checkpoint::load(store.pool(), id).await?,
                Some(token) => match checkpoint::claim(store.pool(), id, token).await? {
                    Some(saved) => saved,
                    None => {
                        return Err(FollowerError::Fenced {
                            follower: id.to_string(),
                            token,
                            fence: checkpoint::fence(store.pool(), id)
                                .await?
                                .unwrap_or_default(),
                        });
                    }
                },
            };
            // Split into another number of segments than this runner's (changed while it was
            // stopped, by another process's command): running on would share streams.
            let stored = checkpoint::segments(store.pool(), id.kind, &id.name).await?;
            if stored != id.segment.count() {
                return Err(FollowerError::Segments {
                    follower: id.to_string(),
                    stored,
                    running: id.segment.count(),
                });
            }
            follower.resume(&saved).await?;
            let at = saved.position;
            status.update(|s| {
                s.position = at;
                if matches!(s.state, RunnerState::Starting | RunnerState::Standby) {
                    s.state = RunnerState::Running;
                }
            });
            metrics.position(at.position);
            following.insert(Following {
                subscription: store
                    .subscribe(at)
                    .with_batch_size(config.batch_size)
                    .with_idle_poll(config.idle_poll),
                saved,
                at,
                delay: CheckpointDelay::new(config.checkpoint_delay),
                fence,
            })
        }
    };
    let tick_at = follower.tick_at();
    if tick_at.is_some_and(|at| at <= Instant::now()) {
        follower.tick().await?;
        return Ok(Step::Moved);
    }
    let delay = state.delay;
    let lost = owner.lost;
    let events = tokio::select! {
        biased;
        () = stop.as_mut() => {
            // Leave the stored checkpoint where the runner is; failing that, the skipped events
            // are only read again next time.
            if state.delay.is_behind() {
                let _ = save_skipped(store.pool(), id, state).await;
            }
            return Ok(Step::Stopped);
        }
        events = state.subscription.next_batch() => events?,
        () = delay.due() => {
            save_skipped(store.pool(), id, state).await?;
            return Ok(Step::Moved);
        }
        () = sleep_until(tick_at) => return Ok(Step::Moved),
        // After the batch: a batch already at hand is tried, and the fence, not this process's
        // view of its lease, decides whether it lands.
        () = lost => return Ok(Step::Moved),
    };
    let Some(batch) = Batch::new(&events, follower.categories()) else {
        return Ok(Step::Moved);
    };
    // A follower split into segments acts only on its segment's events.
    let in_segment: Vec<bool> = if id.segment == Segment::WHOLE {
        Vec::new()
    } else {
        events
            .iter()
            .map(|event| {
                follower.categories().contains(event.category())
                    && follower
                        .partition_key(event)
                        .is_some_and(|key| id.segment.contains(&key))
            })
            .collect()
    };
    let batch = if id.segment == Segment::WHOLE {
        batch
    } else {
        batch.within(&in_segment)
    };
    let last = batch.last();
    if batch.is_empty() {
        state.at = last;
        status.update(|s| {
            s.state = RunnerState::Running;
            s.position = last;
            s.consecutive_failures = 0;
        });
        if state.delay.skipped() {
            save_skipped(store.pool(), id, state).await?;
        }
        return Ok(Step::Moved);
    }
    let started = std::time::Instant::now();
    let (saved, applied) = commit
        .commit(store, &state.saved, &batch, state.fence)
        .await?;
    state.saved = saved;
    state.at = last;
    state.delay.caught_up();
    follower.committed(&batch, &applied);
    status.update(|s| {
        s.state = RunnerState::Running;
        s.position = last;
        s.events_applied += applied.events;
        s.duplicates += applied.duplicates;
        s.batches_committed += 1;
        s.consecutive_failures = 0;
    });
    metrics.committed(applied.events, applied.duplicates, started.elapsed());
    metrics.position(last.position);
    Ok(Step::Moved)
}

/// Saves the checkpoint where the runner is, past batches it skipped, in one compare-and-set
/// statement (no lock: nothing else is written with it).
async fn save_skipped(
    pool: &PgPool,
    id: &FollowerId,
    state: &mut Following,
) -> Result<(), FollowerError> {
    let to = Checkpoint {
        position: state.at,
        state: state.saved.state.clone(),
    };
    advance(pool, id, state.saved.position, &to, state.fence).await?;
    state.saved = to;
    state.delay.caught_up();
    Ok(())
}

/// Reports a failed attempt: the logs, the status, the metrics and the checkpoint row.
async fn record_failure(
    pool: &PgPool,
    id: &FollowerId,
    status: &FollowerStatus,
    metrics: &Metrics,
    error: &FollowerError,
    backoff: Duration,
) {
    let text = error_chain(error);
    let event = error.event().cloned();
    let attempt = status.snapshot().consecutive_failures + 1;
    let retry_in_ms = backoff.as_millis() as u64;
    match &event {
        // With leases, no other runner can be active: a moved checkpoint is a rebuild's switch
        // or a reset by hand, which the runner follows.
        _ if matches!(error, FollowerError::CheckpointMoved { .. }) => tracing::warn!(
            follower = %id,
            error = %text,
            retry_in_ms,
            "the follower's checkpoint was moved under it (a rebuild's switch, or a reset); it \
             goes on from where it is now",
        ),
        _ if error.stalled() => tracing::warn!(
            follower = %id,
            checkpoint = ?status.position(),
            error = %text,
            retry_in_ms,
            "the database ended a batch this process left idle too long (it was paused or \
             starved); nothing of it was committed, and it will retry from its checkpoint",
        ),
        Some(event) => tracing::error!(
            follower = %id,
            position = event.log_position.position,
            transaction_id = event.log_position.transaction_id,
            stream_id = %event.stream_id,
            stream_version = event.stream_version,
            event_type = %event.event_type,
            error = %text,
            attempt,
            retry_in_ms,
            "follower failed to apply an event; the batch was rolled back and will be retried",
        ),
        None => tracing::error!(
            follower = %id,
            checkpoint = ?status.position(),
            error = %text,
            attempt,
            retry_in_ms,
            "follower failed; it will retry from its checkpoint",
        ),
    }
    metrics.failed();
    let stored = match &event {
        Some(e) => format!(
            "{} v{} ({}): {text}",
            e.stream_id, e.stream_version, e.event_id
        ),
        None => text.clone(),
    };
    if let Err(error) = checkpoint::record_error(pool, id, &stored).await {
        tracing::warn!(follower = %id, %error, "cannot record the follower's failure");
    }
    status.update(|s| {
        s.state = RunnerState::Retrying;
        s.consecutive_failures += 1;
        s.last_error = Some(Failure {
            event,
            error: text,
            failed_at: Utc::now(),
        });
    });
}

/// Publishes how far behind the log the follower is after a step. A failure to measure is only
/// logged: lag is a gauge, not a reason to stop.
async fn record_lag(
    store: &EventStore,
    id: &FollowerId,
    status: &FollowerStatus,
    metrics: &Metrics,
    caught_up_at: &mut Instant,
) {
    match store.recent_head().await {
        Ok(head) => {
            let lag = lag_between(status.position(), head);
            if lag.caught_up() {
                *caught_up_at = Instant::now();
            }
            status.set_lag(lag.behind_events);
            metrics.lag(Some(lag.behind_events), caught_up_at.elapsed());
        }
        Err(error) => tracing::warn!(follower = %id, %error, "cannot measure the follower's lag"),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sets the runner's state to stopped when dropped.
struct StoppedOnDrop<'a> {
    status: &'a FollowerStatus,
    id: &'a FollowerId,
}

impl Drop for StoppedOnDrop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(follower = %self.id, "follower runner panicked");
        }
        self.status.update(|s| s.state = RunnerState::Stopped);
    }
}
