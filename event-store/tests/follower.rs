//! The follower module on its own, against a real PostgreSQL: checkpoint writes are
//! compare-and-set and carry the follower's state; an after-effect follower whose effect fails
//! is handed the same events again from its checkpoint and misses none; two runners of one
//! in-transaction follower never both apply an event.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::follower::{
    AfterEffect, Applied, Batch, Categories, Checkpoint, EffectError, Follower, FollowerId,
    InTransaction, Runner, RunnerConfig, Shutdown, checkpoint,
};
use event_store::testing::TestDatabase;
use event_store::{EventStore, ExpectedVersion, LogPosition, RecordedEvent};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const DEADLINE: Duration = Duration::from_secs(20);

fn fast() -> RunnerConfig {
    RunnerConfig {
        batch_size: 7,
        idle_poll: Duration::from_millis(10),
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(50),
        checkpoint_delay: Duration::from_millis(10),
    }
}

async fn append(store: &EventStore, stream: &str, count: u64) {
    for n in 0..count {
        store
            .append(&request(vec![write(
                stream,
                ExpectedVersion::Any,
                vec![event("Happened", n)],
            )]))
            .await
            .unwrap();
    }
}

/// The whole log, once every committed event is deliverable.
async fn whole_log(store: &EventStore) -> Vec<RecordedEvent> {
    let committed = usize::try_from(store.count().await.unwrap()).unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let events = store.read_log(LogPosition::START, 10_000).await.unwrap();
        if events.len() == committed {
            return events;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn checkpoint_writes_are_compare_and_set_and_carry_the_state() {
    let db = TestDatabase::new().await;
    let pool = db.pool();
    let id = FollowerId::new("probe", "one");
    let other_kind = FollowerId::new("other", "one");
    assert_eq!(checkpoint::read(pool, &id).await.unwrap(), None);
    assert_eq!(
        checkpoint::load(pool, &id).await.unwrap(),
        Checkpoint::START
    );
    checkpoint::load(pool, &other_kind).await.unwrap();

    let at = |position| LogPosition {
        transaction_id: 100,
        position,
    };
    let first = Checkpoint {
        position: at(5),
        state: Some(serde_json::json!({"seq": 5})),
    };
    assert!(
        checkpoint::write(pool, &id, LogPosition::START, &first)
            .await
            .unwrap()
    );
    // A writer that last saw the start has been overtaken: nothing changes.
    let stale = Checkpoint {
        position: at(9),
        state: None,
    };
    assert!(
        !checkpoint::write(pool, &id, LogPosition::START, &stale)
            .await
            .unwrap()
    );
    let stored = checkpoint::read(pool, &id).await.unwrap().unwrap();
    assert_eq!(stored.checkpoint, first);
    assert_eq!(checkpoint::load(pool, &id).await.unwrap(), first);
    assert_eq!(checkpoint::position(pool, &id).await.unwrap(), at(5));
    // Kinds keep their names apart.
    assert_eq!(
        checkpoint::position(pool, &other_kind).await.unwrap(),
        LogPosition::START
    );
    let listed = checkpoint::list(pool, "probe").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "one");
}

/// Records every event it is handed; refuses one event (and so its whole batch) while `refuse`
/// is set.
struct Recorder {
    id: FollowerId,
    handed: Arc<Mutex<Vec<i64>>>,
    refuse: AtomicBool,
    refused_at: i64,
}

impl Follower for Recorder {
    fn id(&self) -> &FollowerId {
        &self.id
    }

    fn categories(&self) -> Categories {
        Categories::All
    }
}

impl AfterEffect for Recorder {
    fn apply<'a>(&'a self, batch: &'a Batch<'a>) -> BoxFuture<'a, Result<Applied, EffectError>> {
        Box::pin(async move {
            let mut handed = self.handed.lock().unwrap();
            for event in batch.events() {
                if event.position == self.refused_at && self.refuse.swap(false, Ordering::SeqCst) {
                    return Err(EffectError::on(event, "refused once"));
                }
                handed.push(event.position);
            }
            Ok(Applied {
                events: batch.page().len() as u64,
                ..Applied::default()
            })
        })
    }
}

#[tokio::test]
async fn an_after_effect_that_fails_is_retried_from_the_checkpoint_and_misses_nothing() {
    let db = TestDatabase::new().await;
    let store = db.store();
    append(&store, "probe-1", 30).await;
    let log = whole_log(&store).await;
    let handed = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        id: FollowerId::new("probe", "recorder"),
        handed: handed.clone(),
        refuse: AtomicBool::new(true),
        refused_at: log[17].position,
    };
    let runner = Runner::new(store.clone(), recorder, fast());
    let status = runner.status();
    let shutdown = Shutdown::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        runner.run_after_effect(async move { shutdown.triggered().await })
    });
    let last = log.last().unwrap().log_position;
    assert!(
        status.wait_for_position(last, DEADLINE).await,
        "{:?}",
        status.snapshot()
    );
    shutdown.trigger();
    task.await.unwrap();

    // Every event was handed over, in log order; the refused batch's events before the refusal
    // a second time, and nothing else.
    let handed = handed.lock().unwrap().clone();
    let mut first_times = handed.clone();
    let mut seen = std::collections::HashSet::new();
    first_times.retain(|position| seen.insert(*position));
    let in_order: Vec<i64> = log.iter().map(|e| e.position).collect();
    assert_eq!(first_times, in_order);
    let twice: Vec<i64> = in_order
        .iter()
        .copied()
        .filter(|p| handed.iter().filter(|h| *h == p).count() == 2)
        .collect();
    assert_eq!(handed.len(), log.len() + twice.len(), "{handed:?}");
    assert!(twice.len() < fast().batch_size as usize, "{twice:?}");
    assert_eq!(twice, in_order[17 - twice.len()..17], "{handed:?}");

    let snapshot = status.snapshot();
    let failure = snapshot.last_error.unwrap();
    assert_eq!(
        failure.event.map(|e| e.log_position),
        Some(log[17].log_position)
    );
    assert!(failure.error.contains("refused once"), "{}", failure.error);
    assert_eq!(snapshot.events_applied, log.len() as u64);
    assert_eq!(
        checkpoint::position(db.pool(), &FollowerId::new("probe", "recorder"))
            .await
            .unwrap(),
        last
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_of_one_in_transaction_follower_never_both_apply_an_event() {
    let db = TestDatabase::new().await;
    let store = db.store();
    sqlx::query("CREATE TABLE probe_applied (position bigint NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let shutdown = Shutdown::new();
    let mut statuses = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let runner = Runner::new(
            store.clone(),
            Counter {
                id: FollowerId::new("probe", "counter"),
            },
            fast(),
        );
        statuses.push(runner.status());
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(
            runner.run_in_transaction(async move { shutdown.triggered().await }),
        ));
    }
    // Written while both run, with other categories between (skipped, then saved by
    // compare-and-set, which the other runner may have overtaken).
    for round in 0..20 {
        append(&store, "probe-1", 3).await;
        append(&store, &format!("other-{round}"), 2).await;
    }
    let log = whole_log(&store).await;
    let last = log.last().unwrap().log_position;
    for status in &statuses {
        assert!(
            status.wait_for_position(last, DEADLINE).await,
            "{:?}",
            status.snapshot()
        );
    }
    shutdown.trigger();
    for task in tasks {
        task.await.unwrap();
    }
    let mut applied: Vec<i64> = sqlx::query_scalar("SELECT position FROM probe_applied")
        .fetch_all(db.pool())
        .await
        .unwrap();
    applied.sort_unstable();
    let mut expected: Vec<i64> = log
        .iter()
        .filter(|e| e.category() == "probe")
        .map(|e| e.position)
        .collect();
    expected.sort_unstable();
    assert_eq!(
        applied, expected,
        "each event applied once by the two runners together"
    );
    let together: u64 = statuses.iter().map(|s| s.snapshot().events_applied).sum();
    assert_eq!(together, expected.len() as u64);
}

/// Stops in the middle of its first batch's transaction until released.
struct Stalling {
    id: FollowerId,
    entered: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl Follower for Stalling {
    fn id(&self) -> &FollowerId {
        &self.id
    }

    fn categories(&self) -> Categories {
        Categories::Only(&["probe"])
    }
}

impl InTransaction for Stalling {
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        _batch: &'a Batch<'a>,
    ) -> BoxFuture<'a, Result<Applied, EffectError>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO probe_applied (position) VALUES (0)")
                .execute(&mut *tx)
                .await
                .map_err(EffectError::new)?;
            self.entered.notify_one();
            self.release.notified().await;
            Ok(Applied::default())
        })
    }
}

/// A follower's batch is a quiet transaction: while one is open, events committed after it
/// started reach the readers of its own process (the tail that feeds every follower there),
/// not only once it commits; a reader in another process still waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_in_the_middle_of_a_batch_holds_back_no_reader_of_its_process() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let elsewhere = EventStore::new(db.pool().clone());
    sqlx::query("CREATE TABLE probe_applied (position bigint NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let (entered, release) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let runner = Runner::new(
        store.clone(),
        Stalling {
            id: FollowerId::new("probe", "stalling"),
            entered: entered.clone(),
            release: release.clone(),
        },
        fast(),
    );
    let status = runner.status();
    let shutdown = Shutdown::new();
    let task = {
        let shutdown = shutdown.clone();
        tokio::spawn(runner.run_in_transaction(async move { shutdown.triggered().await }))
    };
    append(&store, "probe-1", 1).await;
    tokio::time::timeout(DEADLINE, entered.notified())
        .await
        .expect("the follower started its batch");

    append(&store, "later-1", 1).await;
    let shows = |store: EventStore, within: Duration| async move {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let log = store.read_log(LogPosition::START, 100).await.unwrap();
            if log.iter().any(|e| e.stream_id == "later-1") {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    assert!(
        shows(store.clone(), DEADLINE).await,
        "this process's readers do not wait for its follower's batch"
    );
    assert!(
        !shows(elsewhere.clone(), Duration::from_millis(300)).await,
        "another process does not know the batch is quiet, and waits"
    );

    release.notify_one();
    let head = whole_log(&store).await.last().unwrap().log_position;
    assert!(status.wait_for_position(head, DEADLINE).await);
    assert!(shows(elsewhere, DEADLINE).await);
    shutdown.trigger();
    task.await.unwrap();
}
