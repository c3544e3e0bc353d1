//! The relay under crashes: killed between a batch's acks and its checkpoint commit (the worst
//! moment: the batch is in the stream, the checkpoint does not know it) and at an arbitrary
//! moment, while concurrent writers append. A JetStream consumer must still receive every
//! committed event exactly once, in log order.
//!
//! The companion test turns `Nats-Msg-Id` off and shows the same crash storing a batch twice —
//! and the checker failing — so it is deduplication, not luck, that makes the first one pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use event_store::EventStore;
use event_store::follower::{FollowerStatus, RunnerState};
use event_store::testing::TestDatabase;
use futures::FutureExt;
use relay::{PublishedBatch, Relay, RelayConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use support::*;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A relay whose hook, on its `crash_at`-th batch, reports the batch and then hangs before the
/// checkpoint commit, as long as `crashes_left` allows; the test then aborts it there.
fn spawn_relay(
    store: &EventStore,
    client: &async_nats::Client,
    config: &RelayConfig,
    crash_at: u64,
    crashes_left: &Arc<AtomicU32>,
    crashed: &mpsc::UnboundedSender<PublishedBatch>,
    message_ids: bool,
) -> (JoinHandle<()>, FollowerStatus) {
    let crashes_left = crashes_left.clone();
    let crashed = crashed.clone();
    let relay = Relay::new(store.clone(), client.clone(), config.clone())
        .with_message_ids(message_ids)
        .with_before_commit(Arc::new(move |batch: PublishedBatch| {
            let crash = batch.index == crash_at
                && crashes_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
            if crash {
                let _ = crashed.send(batch);
                std::future::pending().boxed()
            } else {
                std::future::ready(()).boxed()
            }
        }));
    let status = relay.status();
    (tokio::spawn(relay.run(std::future::pending())), status)
}

async fn crash(task: JoinHandle<()>) {
    task.abort();
    let ended = task.await;
    assert!(ended.is_err_and(|error| error.is_cancelled()));
}

fn streams() -> Vec<String> {
    let mut streams: Vec<String> = (0..6)
        .map(|_| format!("trip-{}", uuid::Uuid::now_v7()))
        .collect();
    // An id with a dot and a wildcard, which must not split the subject or widen it.
    streams.push(format!("zone-moscow.{}*", uuid::Uuid::now_v7()));
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_run_the_relay_still_delivers_every_event_once_in_log_order() {
    const CRASHES: u32 = 4;
    let db = TestDatabase::new().await;
    let store = db.store();
    let client = nats().await;
    let config = unique_config();
    let _stream = StreamGuard(config.stream_name.clone());

    // Writers append while the relay runs, crashes and restarts.
    let writers = tokio::spawn({
        let store = store.clone();
        async move {
            write_concurrently(&store, &streams(), 4, 150, Duration::from_millis(3)).await;
        }
    });

    let crashes_left = Arc::new(AtomicU32::new(CRASHES));
    let (crashed_tx, mut crashed) = mpsc::unbounded_channel();
    let mut statuses = Vec::new();
    let (mut task, mut status) = spawn_relay(
        &store,
        &client,
        &config,
        2,
        &crashes_left,
        &crashed_tx,
        true,
    );
    let mut crashed_batches = Vec::new();
    // Each instance crashes at its third batch, between the acks and the checkpoint.
    for _ in 0..CRASHES {
        let batch = tokio::time::timeout(Duration::from_secs(30), crashed.recv())
            .await
            .expect("the relay reaches its crash point")
            .unwrap();
        crash(task).await;
        crashed_batches.push(batch);
        statuses.push(status);
        (task, status) = spawn_relay(
            &store,
            &client,
            &config,
            2,
            &crashes_left,
            &crashed_tx,
            true,
        );
    }
    // And once at whatever moment it is in after its first committed batch.
    eventually(
        "a batch committed after the last crash",
        Duration::from_secs(30),
        || {
            let status = status.clone();
            async move { status.snapshot().batches_committed >= 1 }
        },
    )
    .await;
    crash(task).await;
    statuses.push(status);
    let writing_when_crashed = !writers.is_finished();
    (task, status) = spawn_relay(
        &store,
        &client,
        &config,
        u64::MAX,
        &crashes_left,
        &crashed_tx,
        true,
    );

    writers.await.unwrap();
    let head = settled_head(&store).await;
    assert!(
        status
            .wait_for_position(head, Duration::from_secs(60))
            .await,
        "the relay catches up with the log: {:?}",
        status.snapshot()
    );
    assert_eq!(status.snapshot().state, RunnerState::Running);
    task.abort();
    statuses.push(status);

    let log = whole_log(&store).await;
    let received = read_stream(&client, &config.stream_name).await;
    delete_stream(&client, &config.stream_name).await;

    check_exactly_once_in_order(&config.prefix, &log, &received).unwrap();
    assert!(
        log.len() >= 600,
        "the writers appended {} events",
        log.len()
    );
    // The crashes did repeat batches: JetStream answered the repeats as duplicates. Without
    // deduplication they would be in the stream twice (see the companion test).
    let duplicates: u64 = statuses.iter().map(|s| s.snapshot().duplicates).sum();
    let published: u64 = statuses.iter().map(|s| s.snapshot().events_applied).sum();
    let repeated: u64 = crashed_batches.iter().map(|b| b.events as u64).sum();
    assert!(
        duplicates >= repeated && repeated >= u64::from(CRASHES),
        "{duplicates} duplicate acks for {repeated} events in crashed batches"
    );
    // Events first stored by a batch whose checkpoint never committed are counted as
    // duplicates by the relay that repeated them, not as published.
    let events = log.len() as u64;
    assert!(
        published + repeated <= events,
        "{published} published and {repeated} repeated for {events} events"
    );
    assert!(
        crashed_batches.iter().all(|b| b.duplicates == 0),
        "a crashed batch was new when it was published: {crashed_batches:?}"
    );
    eprintln!(
        "{} events, {} crashes at the commit point (writers running throughout: {}), \
         {duplicates} duplicate publishes dropped",
        log.len(),
        CRASHES,
        writing_when_crashed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_message_ids_the_same_crash_stores_a_batch_twice() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let client = nats().await;
    let config = unique_config();
    let _stream = StreamGuard(config.stream_name.clone());
    write_concurrently(&store, &streams(), 2, 60, Duration::ZERO).await;

    let crashes_left = Arc::new(AtomicU32::new(1));
    let (crashed_tx, mut crashed) = mpsc::unbounded_channel();
    let (task, _) = spawn_relay(
        &store,
        &client,
        &config,
        1,
        &crashes_left,
        &crashed_tx,
        false,
    );
    let batch = tokio::time::timeout(Duration::from_secs(30), crashed.recv())
        .await
        .expect("the relay reaches its crash point")
        .unwrap();
    crash(task).await;
    let (task, status) = spawn_relay(
        &store,
        &client,
        &config,
        u64::MAX,
        &crashes_left,
        &crashed_tx,
        false,
    );
    let head = settled_head(&store).await;
    assert!(
        status
            .wait_for_position(head, Duration::from_secs(60))
            .await
    );
    task.abort();

    let log = whole_log(&store).await;
    let mut received = read_stream(&client, &config.stream_name).await;
    delete_stream(&client, &config.stream_name).await;

    assert_eq!(received.len(), log.len() + batch.events);
    assert_eq!(status.snapshot().duplicates, 0, "nothing to deduplicate by");
    // The message ids are missing, and even with them filled in, the checker finds the repeat.
    for message in &mut received {
        message.message_id = Some(message.event.event_id.to_string());
    }
    let verdict = check_exactly_once_in_order(&config.prefix, &log, &received);
    assert!(
        verdict.as_ref().is_err_and(|e| e.contains("twice")),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn without_nats_the_relay_keeps_retrying_and_says_why() {
    let db = TestDatabase::new().await;
    let store = db.store();
    store
        .append(&append_request(
            "trip-1",
            event_store::ExpectedVersion::NoStream,
            1,
        ))
        .await
        .unwrap();
    // Nothing listens on port 1; the client keeps trying in the background.
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect("nats://127.0.0.1:1")
        .await
        .unwrap();
    let mut config = unique_config();
    config.runner.retry_max = Duration::from_millis(100);
    let relay = Relay::new(store.clone(), client, config);
    let status = relay.status();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay.run(async move {
        let _ = stop_rx.await;
    }));
    eventually("a reported failure", Duration::from_secs(60), || {
        let status = status.clone();
        async move { status.snapshot().consecutive_failures >= 1 }
    })
    .await;
    let snapshot = status.snapshot();
    assert_eq!(snapshot.state, RunnerState::Retrying);
    assert_eq!(snapshot.position, event_store::LogPosition::START);
    assert!(snapshot.last_error.is_some());
    assert!(!task.is_finished(), "a NATS outage does not stop the relay");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the relay stops when told")
        .unwrap();
    assert_eq!(status.snapshot().state, RunnerState::Stopped);
}
