//! Quiet transactions: a follower's batch promises to append nothing, so the log's readers in
//! its process stop waiting for it — and the database holds it to the promise.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::testing::TestDatabase;
use event_store::{EventStore, ExpectedVersion, LogPosition};
use std::time::Duration;
use support::{event, request, write};

/// Reads the log from the start until `stream` shows, or gives up at the deadline.
async fn delivers(store: &EventStore, stream: &str, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let events = store.read_log(LogPosition::START, 100).await.unwrap();
        if events.iter().any(|e| e.stream_id == stream) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_quiet_transaction_cannot_append() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let mut tx = db.pool().begin().await.unwrap();
    let _quiet = store.quiet(&mut tx).await.unwrap();
    let append = request(vec![write(
        "trip-q",
        ExpectedVersion::NoStream,
        vec![event("Q", 1)],
    )]);
    let error = store.append_in(&mut *tx, &append).await.unwrap_err();
    assert!(
        error.to_string().contains("quiet transaction"),
        "the guard names why: {error}"
    );
    tx.rollback().await.unwrap();
    // Outside it, the same append goes through.
    store.append(&append).await.unwrap();
}

#[tokio::test]
async fn readers_wait_for_a_transaction_in_flight_but_not_for_their_own_quiet_ones() {
    let db = TestDatabase::new().await;
    let store = db.store();
    // Another process: the same database, a store of its own, so none of its quiet ids.
    let elsewhere = EventStore::new(db.pool().clone());

    // A transaction that has written (it has an id) and is still open holds later appends back
    // from every reader.
    let mut open = db.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *open)
        .await
        .unwrap();
    let first = request(vec![write(
        "trip-1",
        ExpectedVersion::NoStream,
        vec![event("A", 1)],
    )]);
    store.append(&first).await.unwrap();
    assert!(!delivers(&store, "trip-1", Duration::from_millis(200)).await);
    open.commit().await.unwrap();
    assert!(delivers(&store, "trip-1", Duration::from_secs(10)).await);

    // A quiet one holds them back only from readers elsewhere.
    let mut quiet_tx = db.pool().begin().await.unwrap();
    let quiet = store.quiet(&mut quiet_tx).await.unwrap();
    let second = request(vec![write(
        "trip-2",
        ExpectedVersion::NoStream,
        vec![event("B", 1)],
    )]);
    store.append(&second).await.unwrap();
    assert!(
        delivers(&store, "trip-2", Duration::from_secs(10)).await,
        "this process's readers do not wait for its quiet transaction"
    );
    assert!(
        !delivers(&elsewhere, "trip-2", Duration::from_millis(200)).await,
        "a reader elsewhere does not know the transaction is quiet and waits"
    );
    quiet_tx.commit().await.unwrap();
    drop(quiet);
    assert!(delivers(&elsewhere, "trip-2", Duration::from_secs(10)).await);
}
