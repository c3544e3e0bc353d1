//! The saga runtime against a real PostgreSQL: a probe saga counts `probe` events per stream,
//! sets a timer on the first and sends a command on the third; its timer sends another. The
//! sink records every command it receives in a table, counting repeats, so "exactly once" is
//! checked on what actually arrived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use event_store::clock::{Clock, ManualClock};
use event_store::follower::{
    FollowerId, FollowerStatus, RunnerState, StoredCheckpoint, checkpoint,
};
use event_store::testing::TestDatabase;
use event_store::{
    AppendRequest, Claims, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
    StreamWrite,
};
use futures::future::BoxFuture;
use sagas::{
    CommandSink, Dispatcher, DispatcherConfig, FiredTimer, OutboxCommand, Reaction, ReactionError,
    RunnerConfig, Saga, SagaRunner, SinkError, TimerWorker, derived_id,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

const SAGA: &str = "probe-counter";

fn t0() -> DateTime<Utc> {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

#[derive(Debug, Default)]
struct ProbeSaga {
    /// While set, a `Poison` event makes the reaction fail.
    refuse_poison: AtomicBool,
    /// While set, every timer's reaction fails.
    refuse_timers: AtomicBool,
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct Count {
    count: u32,
    reminded: u32,
}

impl Saga for ProbeSaga {
    type State = Count;

    fn name(&self) -> &'static str {
        SAGA
    }

    fn categories(&self) -> &'static [&'static str] {
        &["probe"]
    }

    fn instance_of(&self, event: &RecordedEvent) -> Option<String> {
        Some(event.stream_id.clone())
    }

    fn react(
        &self,
        state: Option<Count>,
        event: &RecordedEvent,
    ) -> Result<Reaction<Count>, ReactionError> {
        if event.event_type == "Poison" && self.refuse_poison.load(Ordering::SeqCst) {
            return Err(ReactionError::new("poison refused"));
        }
        let mut state = state.unwrap_or_default();
        match event.event_type.as_str() {
            "Snooze" => return Ok(Reaction::new(state).cancelling("remind")),
            "Done" => return Ok(Reaction::new(state).completed()),
            _ => {}
        }
        state.count += 1;
        let count = state.count;
        let mut reaction = Reaction::new(state);
        if count == 1 {
            reaction = reaction.with_timer(
                "remind",
                event.occurred_at + ChronoDuration::minutes(10),
                json!({"stream": event.stream_id}),
            );
        }
        if count == 3 {
            reaction = reaction.with_command("probe-third", json!({"stream": event.stream_id}));
        }
        Ok(reaction)
    }

    fn on_timer(
        &self,
        mut state: Count,
        timer: &FiredTimer,
    ) -> Result<Reaction<Count>, ReactionError> {
        if self.refuse_timers.load(Ordering::SeqCst) {
            return Err(ReactionError::new("timer refused"));
        }
        state.reminded += 1;
        Ok(Reaction::new(state).with_command("probe-reminded", timer.payload.clone()))
    }
}

/// A real sink: records each command id it receives in PostgreSQL, counting repeats.
#[derive(Debug)]
struct TableSink {
    pool: PgPool,
}

impl TableSink {
    async fn new(pool: &PgPool) -> Arc<Self> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS sink_received (
                 command_id uuid PRIMARY KEY, name text NOT NULL, times integer NOT NULL)",
        )
        .execute(pool)
        .await
        .unwrap();
        Arc::new(Self { pool: pool.clone() })
    }
}

impl CommandSink for TableSink {
    fn send<'a>(&'a self, command: &'a OutboxCommand) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO sink_received (command_id, name, times) VALUES ($1, $2, 1)
                 ON CONFLICT (command_id) DO UPDATE SET times = sink_received.times + 1",
            )
            .bind(command.command_id)
            .bind(&command.name)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| SinkError::Transient(e.to_string()))
        })
    }
}

async fn append(store: &EventStore, stream_id: &str, event_type: &str) -> Uuid {
    let event_id = Uuid::now_v7();
    store
        .append(&AppendRequest {
            writes: vec![StreamWrite {
                stream_id: stream_id.to_owned(),
                expected: ExpectedVersion::Any,
                events: vec![NewEvent {
                    event_id,
                    event_type: event_type.to_owned(),
                    schema_version: 1,
                    data: json!({}),
                    occurred_at: t0(),
                }],
            }],
            metadata: Metadata {
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                actor: "system".to_owned(),
                command_id: None,
            },
            recorded_at: t0(),
            claims: Claims::default(),
            result: None,
        })
        .await
        .unwrap();
    event_id
}

/// Polls `check` until it holds, failing after 30 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn count_of(pool: &PgPool, instance: &str) -> Option<Count> {
    let state: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT state FROM saga_instances WHERE saga = $1 AND instance_id = $2")
            .bind(SAGA)
            .bind(instance)
            .fetch_optional(pool)
            .await
            .unwrap();
    state.map(|s| serde_json::from_value(s).unwrap())
}

/// The saga's checkpoint as stored.
async fn stored_checkpoint(pool: &PgPool) -> StoredCheckpoint {
    checkpoint::read(pool, &FollowerId::new("saga", SAGA))
        .await
        .unwrap()
        .expect("the saga has a checkpoint")
}

/// The position of the saga's stored checkpoint.
async fn saga_checkpoint(pool: &PgPool) -> i64 {
    stored_checkpoint(pool).await.checkpoint.position.position
}

/// Starts a runner; the sender stops it.
fn start_runner(
    store: &EventStore,
    saga: &Arc<ProbeSaga>,
    batch_size: u32,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    FollowerStatus,
) {
    start_runner_with(store, saga, batch_size, Duration::from_millis(20))
}

/// Starts a runner whose checkpoint may trail skipped batches by `checkpoint_delay`.
fn start_runner_with(
    store: &EventStore,
    saga: &Arc<ProbeSaga>,
    batch_size: u32,
    checkpoint_delay: Duration,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    FollowerStatus,
) {
    let runner = SagaRunner::new(
        store.clone(),
        saga.clone(),
        RunnerConfig {
            batch_size,
            idle_poll: Duration::from_millis(10),
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(100),
            checkpoint_delay,
        },
    );
    let status = runner.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(runner.run(async move {
        let _ = stopped.await;
    }));
    (stop, handle, status)
}

/// Whether the runner has passed the last event appended so far. (Not `EventStore::head`: its
/// horizon is cluster-wide, so a transaction of a concurrent test can hold it back.)
async fn caught_up(store: &EventStore, status: &FollowerStatus) -> bool {
    let last = scalar(
        store.pool(),
        "SELECT coalesce(max(position), 0) FROM events",
    )
    .await;
    status.position().position == last
}

async fn stop(stop: oneshot::Sender<()>, handle: tokio::task::JoinHandle<()>) {
    let _ = stop.send(());
    handle.await.unwrap();
}

#[tokio::test]
async fn state_outbox_and_checkpoint_commit_together_and_a_replay_sends_no_second_command() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let pool = db.pool();
    let sink = TableSink::new(pool).await;
    let saga = Arc::new(ProbeSaga::default());

    append(&store, "probe-a", "Seen").await;
    append(&store, "other-x", "Ignored").await;
    append(&store, "probe-a", "Seen").await;
    append(&store, "probe-b", "Seen").await;
    let third = append(&store, "probe-a", "Seen").await;

    let (stopper, handle, status) = start_runner(&store, &saga, 500);
    eventually("the runner reaches the head", || caught_up(&store, &status)).await;
    stop(stopper, handle).await;

    assert_eq!(
        count_of(pool, "probe-a").await,
        Some(Count {
            count: 3,
            reminded: 0
        })
    );
    assert_eq!(
        count_of(pool, "probe-b").await,
        Some(Count {
            count: 1,
            reminded: 0
        })
    );
    assert_eq!(count_of(pool, "other-x").await, None);
    let command_id: Uuid = sqlx::query_scalar("SELECT command_id FROM saga_commands")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(command_id, derived_id(SAGA, "probe-a", third, "command", 0));
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM saga_timers WHERE fired_at IS NULL"
        )
        .await,
        2,
        "one reminder per instance"
    );
    let stored = saga_checkpoint(pool).await;
    assert_eq!(
        stored,
        scalar(pool, "SELECT max(position) FROM events").await
    );

    // Send the outbox: the sink receives the command once.
    let dispatcher = Dispatcher::new(pool.clone(), sink.clone(), DispatcherConfig::default());
    assert_eq!(dispatcher.pass().await.unwrap().sent, 1);
    assert_eq!(
        scalar(pool, "SELECT sum(times) FROM sink_received").await,
        1
    );

    // Replay 1: the checkpoint goes back to the start; each instance knows what it has seen.
    sqlx::query(
        "UPDATE follower_checkpoints SET transaction_id = '0', position = 0 WHERE kind = 'saga'",
    )
    .execute(pool)
    .await
    .unwrap();
    let (stopper, handle, status) = start_runner(&store, &saga, 2);
    eventually("the replay reaches the head", || caught_up(&store, &status)).await;
    stop(stopper, handle).await;
    assert_eq!(
        count_of(pool, "probe-a").await,
        Some(Count {
            count: 3,
            reminded: 0
        })
    );
    assert_eq!(status.snapshot().events_applied, 0);
    assert_eq!(
        status.snapshot().duplicates,
        4,
        "every event was already seen"
    );

    // Replay 2: the instances and timers are gone too, so the saga decides everything again;
    // the outbox already holds the derived command id and adds nothing.
    sqlx::query("DELETE FROM saga_timers")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM saga_instances")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE follower_checkpoints SET transaction_id = '0', position = 0 WHERE kind = 'saga'",
    )
    .execute(pool)
    .await
    .unwrap();
    let (stopper, handle, status) = start_runner(&store, &saga, 500);
    eventually("the second replay reaches the head", || {
        caught_up(&store, &status)
    })
    .await;
    stop(stopper, handle).await;
    assert_eq!(status.snapshot().events_applied, 4);
    assert_eq!(
        count_of(pool, "probe-a").await,
        Some(Count {
            count: 3,
            reminded: 0
        })
    );
    assert_eq!(scalar(pool, "SELECT count(*) FROM saga_commands").await, 1);
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM saga_commands WHERE status = 'sent'"
        )
        .await,
        1
    );
    assert_eq!(dispatcher.pass().await.unwrap().sent, 0);
    assert_eq!(
        scalar(pool, "SELECT sum(times) FROM sink_received").await,
        1
    );
}

#[tokio::test]
async fn a_due_timer_fires_after_a_restart() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let pool = db.pool();
    let sink = TableSink::new(pool).await;
    let saga = Arc::new(ProbeSaga::default());
    let clock = Arc::new(ManualClock::starting_at(t0()));

    append(&store, "probe-a", "Seen").await;
    let (stopper, handle, status) = start_runner(&store, &saga, 500);
    eventually("the runner reaches the head", || caught_up(&store, &status)).await;
    stop(stopper, handle).await;

    // Not due yet.
    let worker = TimerWorker::new(pool.clone(), saga.clone(), clock.clone());
    assert_eq!(worker.pass().await.unwrap().fired, 0);
    // The "process" stops; time passes while nothing runs.
    drop(worker);
    clock.advance(ChronoDuration::minutes(11));
    assert!(clock.now() > t0() + ChronoDuration::minutes(10));

    // A new worker, started after the deadline, fires it.
    let worker = TimerWorker::new(pool.clone(), saga.clone(), clock.clone())
        .with_poll(Duration::from_millis(10));
    let (stop_worker, stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    eventually("the reminder fires", || async {
        count_of(pool, "probe-a").await
            == Some(Count {
                count: 1,
                reminded: 1,
            })
    })
    .await;
    stop(stop_worker, worker).await;
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM saga_timers WHERE fired_at IS NOT NULL AND NOT cancelled"
        )
        .await,
        1
    );

    let dispatcher = Dispatcher::new(pool.clone(), sink, DispatcherConfig::default());
    assert_eq!(dispatcher.pass().await.unwrap().sent, 1);
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM sink_received WHERE name = 'probe-reminded' AND times = 1"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_timer_workers_racing_fire_each_of_200_timers_exactly_once() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let pool = db.pool();
    let sink = TableSink::new(pool).await;
    let saga = Arc::new(ProbeSaga::default());
    let clock = Arc::new(ManualClock::starting_at(t0()));

    for n in 0..200 {
        append(&store, &format!("probe-{n}"), "Seen").await;
    }
    let (stopper, handle, status) = start_runner(&store, &saga, 500);
    eventually("the runner reaches the head", || caught_up(&store, &status)).await;
    stop(stopper, handle).await;
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM saga_timers WHERE fired_at IS NULL"
        )
        .await,
        200
    );
    clock.advance(ChronoDuration::hours(1));

    let mut workers = Vec::new();
    for _ in 0..2 {
        let worker = TimerWorker::new(pool.clone(), saga.clone(), clock.clone())
            .with_poll(Duration::from_millis(5))
            .with_batch(7);
        let (stop_worker, stopped) = oneshot::channel::<()>();
        workers.push((
            stop_worker,
            tokio::spawn(worker.run(async move {
                let _ = stopped.await;
            })),
        ));
    }
    eventually("every timer fired", || async {
        scalar(
            pool,
            "SELECT count(*) FROM saga_timers WHERE fired_at IS NULL",
        )
        .await
            == 0
    })
    .await;
    for (stop_worker, handle) in workers {
        stop(stop_worker, handle).await;
    }

    // Each instance reacted to its timer once, and each reaction's command arrived once.
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM saga_instances WHERE (state->>'reminded')::int = 1"
        )
        .await,
        200
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT coalesce(sum((state->>'reminded')::int), 0) FROM saga_instances"
        )
        .await,
        200
    );
    let dispatcher = Dispatcher::new(pool.clone(), sink, DispatcherConfig::default());
    eventually("the outbox is sent", || async {
        dispatcher.pass().await.unwrap();
        scalar(
            pool,
            "SELECT count(*) FROM saga_commands WHERE status <> 'sent'",
        )
        .await
            == 0
    })
    .await;
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM sink_received").await,
        200
    );
    assert_eq!(
        scalar(pool, "SELECT max(times)::bigint FROM sink_received").await,
        1
    );
}

#[tokio::test]
async fn a_failing_reaction_stops_at_its_event_and_is_retried_without_skipping() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let pool = db.pool();
    let saga = Arc::new(ProbeSaga::default());
    saga.refuse_poison.store(true, Ordering::SeqCst);

    append(&store, "probe-p", "Seen").await;
    let poison = append(&store, "probe-p", "Poison").await;
    append(&store, "probe-p", "Seen").await;
    append(&store, "probe-q", "Seen").await;

    // One event per batch, so the runner commits the first and stops at the poison.
    let (stopper, handle, status) = start_runner(&store, &saga, 1);
    eventually("the runner has retried the poison", || async {
        status.snapshot().consecutive_failures >= 2
    })
    .await;
    let failure = status.snapshot().last_error.expect("a failure is reported");
    assert_eq!(failure.event.as_ref().map(|e| e.event_id), Some(poison));
    assert!(
        failure.error.contains("poison refused"),
        "{}",
        failure.error
    );
    assert_eq!(status.state(), RunnerState::Retrying);
    let recorded = stored_checkpoint(pool).await.last_error;
    assert!(recorded.unwrap_or_default().contains("poison refused"));
    // Nothing after the poison was applied, and nothing of the poison's batch.
    assert_eq!(
        count_of(pool, "probe-p").await,
        Some(Count {
            count: 1,
            reminded: 0
        })
    );
    assert_eq!(count_of(pool, "probe-q").await, None);

    // Fixed: the runner goes on from the poison, skipping nothing.
    saga.refuse_poison.store(false, Ordering::SeqCst);
    eventually("the runner reaches the head", || caught_up(&store, &status)).await;
    stop(stopper, handle).await;
    assert_eq!(
        count_of(pool, "probe-p").await,
        Some(Count {
            count: 3,
            reminded: 0
        })
    );
    assert_eq!(
        count_of(pool, "probe-q").await,
        Some(Count {
            count: 1,
            reminded: 0
        })
    );
    assert_eq!(
        stored_checkpoint(pool).await.last_error,
        None,
        "the next committed batch clears the failure"
    );
    assert_eq!(scalar(pool, "SELECT count(*) FROM saga_commands").await, 1);
}

/// A sink that fails `transient` times, then records; and refuses for good whatever
/// `probe-bad` decided.
#[derive(Debug)]
struct FlakySink {
    inner: Arc<TableSink>,
    transient: std::sync::atomic::AtomicU32,
}

impl CommandSink for FlakySink {
    fn send<'a>(&'a self, command: &'a OutboxCommand) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if command.instance_id == "probe-bad" {
                return Err(SinkError::Permanent("unknown command".to_owned()));
            }
            let left = self.transient.load(Ordering::SeqCst);
            if left > 0 {
                self.transient.store(left - 1, Ordering::SeqCst);
                return Err(SinkError::Transient("command API unavailable".to_owned()));
            }
            self.inner.send(command).await
        })
    }
}

#[tokio::test]
async fn the_dispatcher_retries_transient_failures_marks_permanent_ones_and_the_overview_shows_them()
 {
    let db = TestDatabase::new().await;
    let store = db.store();
    let pool = db.pool();
    let saga = Arc::new(ProbeSaga::default());
    for stream in ["probe-good", "probe-bad"] {
        for _ in 0..3 {
            append(&store, stream, "Seen").await;
        }
    }
    let (stopper, handle, status) = start_runner(&store, &saga, 500);
    eventually("the runner reaches the head", || caught_up(&store, &status)).await;
    stop(stopper, handle).await;

    let sink = Arc::new(FlakySink {
        inner: TableSink::new(pool).await,
        transient: std::sync::atomic::AtomicU32::new(2),
    });
    let dispatcher = Dispatcher::new(
        pool.clone(),
        sink,
        DispatcherConfig {
            retry_initial: Duration::ZERO,
            retry_max: Duration::ZERO,
            ..DispatcherConfig::default()
        },
    );
    let first = dispatcher.pass().await.unwrap();
    assert_eq!((first.sent, first.failed), (0, 1));
    assert_eq!(first.retrying, 1);

    let summary = sagas::overview(pool, t0() + ChronoDuration::hours(1))
        .await
        .unwrap();
    assert_eq!(summary.len(), 1);
    let summary = &summary[0];
    assert_eq!(summary.saga, SAGA);
    assert_eq!(summary.instances.get("active"), Some(&2));
    assert_eq!(summary.overdue_timers, 2);
    assert_eq!(summary.commands_pending, 1);
    assert_eq!(summary.last_error, None);
    let mut problems: Vec<(String, String)> = summary
        .failed_commands
        .iter()
        .map(|c| (c.instance_id.clone(), c.status.clone()))
        .collect();
    problems.sort();
    assert_eq!(
        problems,
        [
            ("probe-bad".to_owned(), "failed".to_owned()),
            ("probe-good".to_owned(), "pending".to_owned())
        ]
    );

    eventually("the good command is sent", || async {
        dispatcher.pass().await.unwrap();
        scalar(
            pool,
            "SELECT count(*) FROM saga_commands WHERE status = 'sent'",
        )
        .await
            == 1
    })
    .await;
    assert_eq!(
        scalar(
            pool,
            "SELECT attempts::bigint FROM saga_commands WHERE status = 'sent'"
        )
        .await,
        3
    );
    assert_eq!(
        scalar(pool, "SELECT sum(times) FROM sink_received").await,
        1
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM saga_commands WHERE status = 'failed'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn timers_are_cancelled_by_name_and_by_completion_and_a_failing_timer_is_retried() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let pool = db.pool();
    let saga = Arc::new(ProbeSaga::default());
    let clock = Arc::new(ManualClock::starting_at(t0()));

    append(&store, "probe-snoozed", "Seen").await;
    append(&store, "probe-snoozed", "Snooze").await;
    append(&store, "probe-done", "Seen").await;
    append(&store, "probe-done", "Done").await;
    append(&store, "probe-done", "Seen").await;
    append(&store, "probe-late", "Seen").await;
    let (stopper, handle, status) = start_runner(&store, &saga, 500);
    eventually("the runner reaches the head", || caught_up(&store, &status)).await;
    stop(stopper, handle).await;

    assert_eq!(
        scalar(pool, "SELECT count(*) FROM saga_timers WHERE cancelled").await,
        2,
        "snoozed by name, and done by completion"
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM saga_instances WHERE status = 'completed'"
        )
        .await,
        1
    );
    // A completed instance ignores later events.
    assert_eq!(
        count_of(pool, "probe-done").await,
        Some(Count {
            count: 1,
            reminded: 0
        })
    );

    clock.advance(ChronoDuration::hours(1));
    saga.refuse_timers.store(true, Ordering::SeqCst);
    let worker = TimerWorker::new(pool.clone(), saga.clone(), clock.clone());
    let pass = worker.pass().await.unwrap();
    assert_eq!((pass.fired, pass.failed), (0, 1));
    // Backing off: not retried at once, and shown as failing.
    assert_eq!(worker.pass().await.unwrap(), sagas::TimerPass::default());
    let summary = sagas::overview(pool, clock.now()).await.unwrap();
    assert_eq!(summary[0].overdue_timers, 1);
    assert_eq!(summary[0].failing_timers.len(), 1);
    assert_eq!(summary[0].failing_timers[0].instance_id, "probe-late");
    assert_eq!(
        summary[0].failing_timers[0].last_error.as_deref(),
        Some("reaction failed: timer refused")
    );

    // Fixed, and the backoff over: it fires once.
    saga.refuse_timers.store(false, Ordering::SeqCst);
    sqlx::query("UPDATE saga_timers SET retry_after = now() WHERE last_error IS NOT NULL")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(worker.pass().await.unwrap().fired, 1);
    assert_eq!(
        count_of(pool, "probe-late").await,
        Some(Count {
            count: 1,
            reminded: 1
        })
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM saga_timers WHERE fired_at IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM saga_commands WHERE name = 'probe-reminded'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn batches_with_nothing_for_the_saga_commit_nothing_until_the_checkpoint_is_due() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let pool = db.pool();
    let saga = Arc::new(ProbeSaga::default());
    // Long enough that only the stop can save the checkpoint past the skipped batches.
    let (stop_runner, handle, status) =
        start_runner_with(&store, &saga, 100, Duration::from_secs(600));

    append(&store, "probe-a", "Seen").await;
    eventually("the probe event", || caught_up(&store, &status)).await;
    let reacted_at = scalar(pool, "SELECT max(position) FROM events").await;
    assert_eq!(saga_checkpoint(pool).await, reacted_at);

    // Events of another category: the runner passes them, the stored checkpoint does not move.
    for _ in 0..5 {
        append(&store, "other-x", "Ignored").await;
    }
    eventually("past the other events", || caught_up(&store, &status)).await;
    let last = scalar(pool, "SELECT max(position) FROM events").await;
    assert!(last > reacted_at);
    assert_eq!(
        saga_checkpoint(pool).await,
        reacted_at,
        "a batch with nothing for the saga committed its checkpoint"
    );
    assert_eq!(count_of(pool, "other-x").await, None);

    // Stopping saves it where the runner is, so a restart does not read them again.
    stop(stop_runner, handle).await;
    assert_eq!(saga_checkpoint(pool).await, last);
}

#[tokio::test]
async fn the_checkpoint_follows_skipped_batches_within_the_delay() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let pool = db.pool();
    let saga = Arc::new(ProbeSaga::default());
    let (stop_runner, handle, status) =
        start_runner_with(&store, &saga, 100, Duration::from_millis(50));
    append(&store, "probe-a", "Seen").await;
    for _ in 0..5 {
        append(&store, "other-x", "Ignored").await;
    }
    eventually("past the other events", || caught_up(&store, &status)).await;
    let last = scalar(pool, "SELECT max(position) FROM events").await;
    eventually("the stored checkpoint at the last event", || async {
        saga_checkpoint(pool).await == last
    })
    .await;
    stop(stop_runner, handle).await;
}
