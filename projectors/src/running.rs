//! Running several projectors side by side, and asking whether they have caught up with the log
//! (the binary's `/readyz`, and tests that must read what they just wrote).

use crate::projector::Projector;
use crate::runner::{FOLLOWER_KIND as KIND, ProjectorRunner};
use event_store::follower::{
    FollowerStatus, RunnerConfig, RunnerState, Segment, Shutdown, StatusSnapshot, checkpoint,
};
use event_store::{EventStore, LogPosition, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Starts the read models the query API serves ([`crate::read_models`]) with the default
/// [`RunnerConfig`], each in its own task; they stop when `shutdown` is triggered.
pub fn start(store: EventStore, shutdown: Shutdown) -> Projections {
    Projections::spawn(
        store,
        crate::read_models(),
        RunnerConfig::default(),
        &shutdown,
    )
}

/// [`start`], each read model split into as many segments as its checkpoints say (see
/// `velka followers segments`), one runner per segment.
async fn start_segmented(store: EventStore, shutdown: Shutdown) -> Result<Projections, StoreError> {
    let mut projectors = Vec::new();
    for projector in crate::read_models() {
        let count = checkpoint::segments(store.pool(), KIND, projector.name()).await?;
        projectors.push((projector, count));
    }
    Ok(Projections::spawn_segmented(
        store,
        projectors,
        RunnerConfig::default(),
        &shutdown,
    ))
}

/// Starting the projectors on a thread of their own failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The thread or its runtime could not be made.
    #[error("starting the projectors' thread: {0}")]
    Thread(#[from] std::io::Error),
    /// Their connections could not be opened.
    #[error(transparent)]
    Connect(#[from] event_store::database::ConnectError),
    /// How many segments each read model has could not be read.
    #[error("reading the read models' segments: {0}")]
    Store(#[from] StoreError),
    /// The thread ended before it had started them.
    #[error("the projectors' thread ended before starting them")]
    Ended,
}

/// Connections of the projectors' own pool: one per projector at a time, and the log's tail.
const OWN_CONNECTIONS: u32 = 12;

/// [`start`], on the caller's runtime (`own_thread` `None`) or on a thread and single-threaded
/// runtime of their own with their own pool of the database at the URL given — so that under
/// load a batch does not queue behind the requests' tasks: at the peak it cut the worst
/// projector's lag about threefold (BENCHMARKS.md). The log's tail (shared by every follower of
/// `store`) starts there too, as the projectors are the first to follow. The thread ends after
/// they have stopped.
pub async fn start_on(
    store: EventStore,
    shutdown: Shutdown,
    own_thread: Option<&str>,
) -> Result<Projections, StartError> {
    let Some(database_url) = own_thread else {
        return Ok(start_segmented(store, shutdown).await?);
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let url = database_url.to_owned();
    std::thread::Builder::new()
        .name("velka-projectors".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let pool = match event_store::database::connect(&url, OWN_CONNECTIONS).await {
                    Ok(pool) => pool,
                    Err(error) => {
                        let _ = sender.send(Err(StartError::from(error)));
                        return;
                    }
                };
                let projections =
                    match start_segmented(store.with_pool(pool.clone()), shutdown.clone()).await {
                        Ok(projections) => projections,
                        Err(error) => {
                            let _ = sender.send(Err(StartError::Store(error)));
                            return;
                        }
                    };
                let _ = sender.send(Ok(projections.clone()));
                shutdown.triggered().await;
                projections.stopped().await;
                pool.close().await;
            });
        })?;
    receiver.await.map_err(|_| StartError::Ended)?
}

/// Handles on running projectors: their statuses, whether they are caught up, and a way to wait
/// for them to stop. Cheap to clone. Stopping is by the [`Shutdown`] they were started with;
/// dropping this handle does not stop them.
#[derive(Clone, Debug)]
pub struct Projections {
    statuses: Arc<[FollowerStatus]>,
}

/// The projectors did not catch up in time, or the log's head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// At least one projector was still behind `head` when the time ran out.
    #[error("projectors did not reach {head:?} within {timeout_ms} ms: {behind}")]
    Timeout {
        head: LogPosition,
        timeout_ms: u128,
        /// Each lagging projector's status, for the failure message.
        behind: String,
    },
    /// Reading the head failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Projections {
    /// No projectors in this process (an API-only process: the workers run them).
    pub fn none() -> Self {
        Self {
            statuses: Vec::new().into(),
        }
    }

    /// Starts one runner per projector, each in its own task of the current tokio runtime.
    pub fn spawn(
        store: EventStore,
        projectors: Vec<Arc<dyn Projector>>,
        config: RunnerConfig,
        shutdown: &Shutdown,
    ) -> Self {
        let whole = projectors.into_iter().map(|p| (p, 1)).collect();
        Self::spawn_segmented(store, whole, config, shutdown)
    }

    /// [`spawn`](Self::spawn), each projector split into the number of segments given with it:
    /// one runner per segment.
    pub fn spawn_segmented(
        store: EventStore,
        projectors: Vec<(Arc<dyn Projector>, u32)>,
        config: RunnerConfig,
        shutdown: &Shutdown,
    ) -> Self {
        let mut statuses = Vec::with_capacity(projectors.len());
        for (projector, count) in projectors {
            for segment in Segment::all(count) {
                let runner = ProjectorRunner::in_segment(
                    store.clone(),
                    projector.clone(),
                    config.clone(),
                    segment,
                );
                statuses.push(runner.status());
                tokio::spawn(runner.run(shutdown.clone()));
            }
        }
        Self {
            statuses: statuses.into(),
        }
    }

    /// Each runner's status handle, in the order the projectors were given.
    pub fn statuses(&self) -> &[FollowerStatus] {
        &self.statuses
    }

    /// Each runner's status now.
    pub fn snapshots(&self) -> Vec<StatusSnapshot> {
        self.statuses.iter().map(FollowerStatus::snapshot).collect()
    }

    /// Per projector, by name, whether it has reached the log's head (see [`caught_up`]); one
    /// standing by (another process holds its lease and runs it) is not this process's to wait
    /// for.
    pub async fn caught_up(&self, store: &EventStore) -> Result<Vec<(String, bool)>, StoreError> {
        let head = store.head().await?;
        Ok(self
            .statuses
            .iter()
            .map(|status| {
                let standby = status.snapshot().state == RunnerState::Standby;
                (
                    status.name().to_string(),
                    standby || status.position() >= head,
                )
            })
            .collect())
    }

    /// Waits until every projector has applied every event committed before the call, or
    /// `timeout` passes (see [`wait_caught_up`]).
    pub async fn wait_caught_up(
        &self,
        store: &EventStore,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        wait_caught_up(store, &self.statuses, timeout).await
    }

    /// Resolves once every runner has stopped (after its [`Shutdown`] was triggered; a runner
    /// finishes the batch in hand first).
    pub async fn stopped(&self) {
        for status in self.statuses.iter() {
            let mut watch = status.watch();
            // The sender lives in `status`, so this ends only when the runner has stopped.
            let _ = watch.wait_for(|s| s.state == RunnerState::Stopped).await;
        }
    }
}

/// Whether every one of `statuses` has reached the log's head: one query, then a comparison per
/// projector. Cheap enough for every `/readyz`; events held back behind a transaction still in
/// flight are not counted (use [`wait_caught_up`] to wait for everything committed).
pub async fn caught_up(
    store: &EventStore,
    statuses: &[FollowerStatus],
) -> Result<bool, StoreError> {
    let head = store.head().await?;
    Ok(statuses.iter().all(|status| status.position() >= head))
}

/// Waits until every one of `statuses` has applied every event committed before the call, or
/// `timeout` passes. Wakes on each committed batch rather than polling the projectors.
pub async fn wait_caught_up(
    store: &EventStore,
    statuses: &[FollowerStatus],
    timeout: Duration,
) -> Result<(), WaitError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let timed_out = |head: LogPosition| {
        let behind: Vec<String> = statuses
            .iter()
            .map(FollowerStatus::snapshot)
            .filter(|s| s.position < head)
            .map(|s| format!("{s:?}"))
            .collect();
        WaitError::Timeout {
            head,
            timeout_ms: timeout.as_millis(),
            behind: behind.join("; "),
        }
    };
    let head = match tokio::time::timeout_at(deadline, committed_head(store)).await {
        Ok(head) => head?,
        Err(_) => return Err(timed_out(store.head().await?)),
    };
    for status in statuses {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !status.wait_for_position(head, left).await {
            return Err(timed_out(head));
        }
    }
    Ok(())
}

/// How often to look again while events committed before a wait are still held back.
const HELD_BACK_POLL: Duration = Duration::from_millis(2);

/// The head of the log counting every event committed before the call.
///
/// [`EventStore::head`] leaves out committed events that an older transaction still in flight
/// holds back (see event-store's `log` module) — a projector's own batch transaction can be one.
/// So first wait until every transaction that had started by now has ended (the oldest running
/// transaction is at or past the snapshot's `xmax`): they are short, so this polls briefly. From
/// then on `head` includes everything committed before the call.
async fn committed_head(store: &EventStore) -> Result<LogPosition, StoreError> {
    let pool = store.pool();
    let horizon: String =
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
            .fetch_one(pool)
            .await?;
    loop {
        let passed: bool =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8")
                .bind(&horizon)
                .fetch_one(pool)
                .await?;
        if passed {
            return store.head().await;
        }
        tokio::time::sleep(HELD_BACK_POLL).await;
    }
}
