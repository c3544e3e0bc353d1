//! Another process's append wakes this process's readers at once: after an append commits, its
//! process announces it on `velka_log`, and the log's tail listens. Two stores on two pools stand for two
//! processes; the reader's idle poll is set to an hour, so an event that arrives within the
//! deadline arrived because it was notified.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::testing::TestDatabase;
use event_store::{EventStore, ExpectedVersion, LogPosition};
use std::time::Duration;
use support::*;

#[tokio::test]
async fn an_append_in_another_process_wakes_a_reader_that_would_poll_only_hourly() {
    let db = TestDatabase::new().await;
    let hour = Duration::from_secs(3_600);
    let reader = EventStore::new(db.pool().clone()).with_idle_poll(hour);
    let writer_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(db.url())
        .await
        .unwrap();
    let writer = EventStore::new(writer_pool);
    let mut subscription = reader.subscribe(LogPosition::START).with_idle_poll(hour);
    // The reader has read the (empty) log and is waiting.
    let nothing = tokio::time::timeout(Duration::from_millis(300), subscription.next_batch()).await;
    assert!(nothing.is_err(), "an event came from an empty log");
    for n in 0..3 {
        writer
            .append(&request(vec![write(
                "probe-1",
                ExpectedVersion::Any,
                vec![event("Happened", n)],
            )]))
            .await
            .unwrap();
        let batch = tokio::time::timeout(Duration::from_secs(10), subscription.next_batch())
            .await
            .expect("the reader was not woken by the other process's append")
            .unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].stream_version, n + 1);
    }
}
