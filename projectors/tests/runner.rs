//! The runner's guarantees against a real PostgreSQL: a failing batch commits nothing and is
//! retried from the same checkpoint until it succeeds, a restart continues where the last run
//! committed, and two runners of one projector never both apply an event. The probe projector
//! keeps one row per application, so "exactly once" is checked over the whole history.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::testing::TestDatabase;
use projectors::{Projections, RunnerConfig, RunnerState, Shutdown};
use std::collections::BTreeMap;
use std::sync::Arc;
use support::*;

/// Every probe event's position, in delivery order.
async fn probe_positions(store: &event_store::EventStore) -> Vec<i64> {
    log(store)
        .await
        .into_iter()
        .filter(|e| e.category() == "probe")
        .map(|e| e.position)
        .collect()
}

/// Fails the test unless every position was applied exactly once.
fn assert_each_once(applied: &[i64], expected: &[i64]) {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for position in applied {
        *counts.entry(*position).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    let mut sorted_expected = expected.to_vec();
    sorted_expected.sort_unstable();
    let seen: Vec<i64> = counts.into_keys().collect();
    assert_eq!(seen, sorted_expected);
}

#[tokio::test]
async fn a_failing_event_rolls_back_its_whole_batch_and_is_retried_until_it_applies_once() {
    let db = TestDatabase::new().await;
    let store = db.store();
    create_probe_table(db.pool()).await;
    // The fault: the read model refuses one event type until the constraint is dropped.
    sqlx::query(
        "ALTER TABLE probe_applied ADD CONSTRAINT no_poison CHECK (event_type <> 'Poison')",
    )
    .execute(db.pool())
    .await
    .unwrap();

    // Batches of four: [Ok ×4] [Ok, Poison, other-category, Ok] [Ok].
    for n in 0..4 {
        append_raw(&store, "probe-1", &format!("Ok{n}")).await;
    }
    append_raw(&store, "probe-1", "Ok4").await;
    append_raw(&store, "probe-2", "Poison").await;
    append_raw(&store, "other-1", "Ignored").await;
    append_raw(&store, "probe-1", "Ok5").await;
    append_raw(&store, "probe-1", "Ok6").await;
    let log = log(&store).await;
    let first_batch_end = log[3].log_position;
    let poison = log[5].clone();
    assert_eq!(poison.event_type, "Poison");

    let config = RunnerConfig {
        batch_size: 4,
        ..fast()
    };
    let shutdown = Shutdown::new();
    let running = Projections::spawn(
        store.clone(),
        vec![Arc::new(ProbeProjector)],
        config,
        &shutdown,
    );
    let status = running.statuses()[0].clone();

    // It fails on the poison event, more than once, and goes no further.
    let failing = wait_for_status(&status, "two failures", |s| s.consecutive_failures >= 2).await;
    assert_eq!(failing.state, RunnerState::Retrying);
    assert_eq!(failing.position, first_batch_end);
    let failure = failing.last_error.clone().unwrap();
    let failed_event = failure.event.unwrap();
    assert_eq!(failed_event.log_position, poison.log_position);
    assert_eq!(failed_event.event_type, "Poison");
    assert_eq!(failed_event.stream_id, "probe-2");
    assert!(failure.error.contains("no_poison"), "{}", failure.error);

    // Neither the rows of the failing batch (Ok4 came before the poison in it) nor its
    // checkpoint were committed.
    assert_eq!(
        probe_rows(db.pool()).await,
        log[..4].iter().map(|e| e.position).collect::<Vec<_>>()
    );
    assert_eq!(
        projectors::checkpoint(db.pool(), "probe").await.unwrap(),
        first_batch_end
    );

    // Remove the cause: the next retry applies everything, each event once.
    sqlx::query("ALTER TABLE probe_applied DROP CONSTRAINT no_poison")
        .execute(db.pool())
        .await
        .unwrap();
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let expected = probe_positions(&store).await;
    assert_each_once(&probe_rows(db.pool()).await, &expected);

    let healed = status.snapshot();
    assert_eq!(healed.state, RunnerState::Running);
    assert_eq!(healed.consecutive_failures, 0);
    assert_eq!(healed.events_applied, expected.len() as u64);
    assert_eq!(healed.position, log.last().unwrap().log_position);
    assert!(
        healed.last_error.is_some(),
        "the last failure stays visible"
    );
    assert_eq!(
        running.caught_up(&store).await.unwrap(),
        vec![("probe".to_owned(), true)]
    );
    shutdown.trigger();
    running.stopped().await;
    assert_eq!(status.snapshot().state, RunnerState::Stopped);
}

#[tokio::test]
async fn a_restarted_runner_continues_from_its_checkpoint_without_reapplying() {
    let db = TestDatabase::new().await;
    let store = db.store();
    create_probe_table(db.pool()).await;
    for n in 0..5 {
        append_raw(&store, "probe-1", &format!("First{n}")).await;
    }

    let first_run = Shutdown::new();
    let first = Projections::spawn(
        store.clone(),
        vec![Arc::new(ProbeProjector)],
        fast(),
        &first_run,
    );
    first.wait_caught_up(&store, DEADLINE).await.unwrap();
    assert_eq!(first.statuses()[0].snapshot().events_applied, 5);
    first_run.trigger();
    first.stopped().await;
    let stopped_at = projectors::checkpoint(db.pool(), "probe").await.unwrap();
    assert_eq!(stopped_at, store.head().await.unwrap());

    for n in 0..3 {
        append_raw(&store, "probe-2", &format!("Second{n}")).await;
    }
    let second_run = Shutdown::new();
    let second = Projections::spawn(
        store.clone(),
        vec![Arc::new(ProbeProjector)],
        fast(),
        &second_run.child(),
    );
    second.wait_caught_up(&store, DEADLINE).await.unwrap();
    let status = second.statuses()[0].snapshot();
    assert_eq!(status.events_applied, 3, "only the new events: {status:?}");
    assert_each_once(&probe_rows(db.pool()).await, &probe_positions(&store).await);
    assert_eq!(
        projectors::checkpoint(db.pool(), "probe").await.unwrap(),
        store.head().await.unwrap()
    );

    // Triggering the parent of the runners' signal stops them too.
    second_run.trigger();
    second.stopped().await;
    assert_eq!(second.snapshots()[0].state, RunnerState::Stopped);
}

#[tokio::test]
async fn two_runners_of_one_projector_never_apply_an_event_twice() {
    let db = TestDatabase::new().await;
    let store = db.store();
    create_probe_table(db.pool()).await;
    let config = RunnerConfig {
        batch_size: 7,
        ..fast()
    };
    let shutdown = Shutdown::new();
    let a = Projections::spawn(
        store.clone(),
        vec![Arc::new(ProbeProjector)],
        config.clone(),
        &shutdown,
    );
    let b = Projections::spawn(
        store.clone(),
        vec![Arc::new(ProbeProjector)],
        config,
        &shutdown,
    );
    // Appends while both run, so they contend batch after batch.
    for n in 0..120 {
        append_raw(&store, &format!("probe-{}", n % 5), "Tick").await;
    }
    a.wait_caught_up(&store, DEADLINE).await.unwrap();
    b.wait_caught_up(&store, DEADLINE).await.unwrap();
    assert_each_once(&probe_rows(db.pool()).await, &probe_positions(&store).await);
    let applied =
        a.statuses()[0].snapshot().events_applied + b.statuses()[0].snapshot().events_applied;
    assert_eq!(applied, 120);
    shutdown.trigger();
    a.stopped().await;
    b.stopped().await;
}

#[tokio::test]
async fn batches_with_nothing_for_the_projector_commit_nothing_and_the_checkpoint_follows() {
    let db = TestDatabase::new().await;
    let store = db.store();
    create_probe_table(db.pool()).await;
    append_raw(&store, "probe-1", "Ok1").await;
    let shutdown = Shutdown::new();
    let running = Projections::spawn(
        store.clone(),
        vec![Arc::new(ProbeProjector)],
        RunnerConfig {
            checkpoint_delay: std::time::Duration::from_millis(200),
            ..fast()
        },
        &shutdown,
    );
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let status = running.statuses()[0].clone();
    let committed = status.snapshot().batches_committed;

    // Events the probe does not read: the runner moves past them without a transaction.
    for n in 0..20 {
        append_raw(&store, "other-1", &format!("Other{n}")).await;
    }
    // The last event as delivered (`log` waits until every committed event is readable; `head`
    // may lag while another database's transaction holds the cluster's horizon back).
    let head = log(&store).await.last().unwrap().log_position;
    let past = wait_for_status(&status, "past the other events", |s| s.position == head).await;
    assert_eq!(past.batches_committed, committed, "{past:?}");
    assert_eq!(past.events_applied, 1);

    // The stored checkpoint follows within the delay, without another event to carry it.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while projectors::checkpoint(db.pool(), "probe").await.unwrap() != head {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the checkpoint never followed the runner past the skipped events: {:?}",
            status.snapshot()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(status.snapshot().batches_committed, committed);

    // An event of its own after them is applied once, from there.
    append_raw(&store, "probe-1", "Ok2").await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    assert_each_once(&probe_rows(db.pool()).await, &probe_positions(&store).await);
    assert_eq!(status.snapshot().batches_committed, committed + 1);
    assert_eq!(
        projectors::checkpoint(db.pool(), "probe").await.unwrap(),
        log(&store).await.last().unwrap().log_position
    );
    shutdown.trigger();
    running.stopped().await;
}
