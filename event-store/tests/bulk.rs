//! The bulk read of a settled stretch (binary `COPY`s, read ahead) returns exactly what the
//! gap-free page read returns, in the same order, whatever the page size, the start, and the
//! seams between its statements; and nothing past the end it was given.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::testing::TestDatabase;
use event_store::{EventStore, ExpectedVersion, LogPosition, RecordedEvent};
use serde_json::json;
use support::*;

/// Everything after `after`, by the page read.
async fn by_pages(
    store: &EventStore,
    mut after: LogPosition,
    until: LogPosition,
) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    loop {
        let page = store.read_log(after, 13).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.log_position;
        all.extend(page.into_iter().filter(|e| e.log_position <= until));
    }
    all
}

async fn by_bulk(
    store: &EventStore,
    after: LogPosition,
    until: LogPosition,
    page_size: u32,
    per_statement: u32,
) -> Vec<RecordedEvent> {
    let mut pages = store.read_log_bulk_in(after, until, page_size, per_statement);
    let mut all = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert!(!page.is_empty() && page.len() <= page_size as usize);
        all.extend(page);
    }
    all
}

#[tokio::test]
async fn a_bulk_read_returns_what_the_page_read_returns() {
    let db = TestDatabase::new().await;
    let store = EventStore::new(db.pool().clone());
    // 60 appends over 7 streams, one to three events each, with data of several shapes and
    // metadata with and without causes, written by concurrent writers so that delivery order
    // and position order differ here and there.
    let mut writers = Vec::new();
    for writer in 0..3u64 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..20u64 {
                let stream = format!("thing-{}", (writer * 20 + n) % 7);
                let events = (0..=(n % 3))
                    .map(|k| {
                        let mut e = event("Happened", n * 10 + k);
                        e.data = json!({"n": n, "k": k, "text": "ü\"\\", "list": [1, 2.5, null]});
                        e
                    })
                    .collect();
                let mut request = request(vec![write(&stream, ExpectedVersion::Any, events)]);
                if n % 2 == 0 {
                    request.metadata.causation_id = Some(uuid::Uuid::now_v7());
                    request.metadata.command_id = None;
                }
                store.append(&request).await.unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let head = store.head().await.unwrap();
    let all = by_pages(&store, LogPosition::START, head).await;
    assert!(all.len() >= 100, "{} events", all.len());
    let middle = all[all.len() / 3].log_position;
    let end = all[all.len() * 2 / 3].log_position;
    for (page_size, per_statement) in [
        (1, 1_000),
        (7, 1_000),
        (1_000, 1_000),
        (7, 5),
        (10, 10),
        (3, 1),
    ] {
        assert_eq!(
            by_bulk(&store, LogPosition::START, head, page_size, per_statement).await,
            all,
            "pages of {page_size}, statements of {per_statement}"
        );
        assert_eq!(
            by_bulk(&store, middle, end, page_size, per_statement).await,
            by_pages(&store, middle, end).await,
            "from the middle, pages of {page_size}, statements of {per_statement}"
        );
    }
    assert!(by_bulk(&store, head, head, 10, 10).await.is_empty());
}
