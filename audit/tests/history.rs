//! The audit history's queries against a real PostgreSQL: each filter is answered from an index
//! (checked on the plan, with sequential scans priced out as on a large log), and unsealed
//! events come without a hash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use audit::history::{self, Filters};
use chrono::Utc;
use event_store::testing::TestDatabase;
use event_store::{
    AppendRequest, Claims, ExpectedVersion, LogPosition, Metadata, NewEvent, StreamWrite,
};
use serde_json::json;
use uuid::Uuid;

async fn plan(db: &TestDatabase, filters: &Filters) -> String {
    let mut tx = db.pool().begin().await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut q = history::query("EXPLAIN ", filters, LogPosition::START);
    q.push(" LIMIT 100");
    let lines: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await.unwrap();
    lines.join("\n")
}

#[tokio::test]
async fn each_filter_is_served_by_its_index_and_pages_cover_the_log_once() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let correlation = Uuid::now_v7();
    for i in 0..30u32 {
        let category = ["trip", "customer", "vehicle"][(i % 3) as usize];
        store
            .append(&AppendRequest {
                writes: vec![StreamWrite {
                    stream_id: format!("{category}-{}", i % 7),
                    expected: ExpectedVersion::Any,
                    events: vec![NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: format!("Tested{}", i % 4),
                        schema_version: 1,
                        data: json!({"i": i}),
                        occurred_at: Utc::now(),
                    }],
                }],
                metadata: Metadata {
                    correlation_id: if i == 5 { correlation } else { Uuid::now_v7() },
                    causation_id: None,
                    actor: format!("customer:{}", i % 5),
                    command_id: None,
                },
                recorded_at: Utc::now(),
                claims: Claims::default(),
                result: None,
            })
            .await
            .unwrap();
    }
    sqlx::query("ANALYZE events")
        .execute(db.pool())
        .await
        .unwrap();
    let cases = [
        (
            Filters {
                category: Some("trip".into()),
                ..Filters::default()
            },
            "events_category_log_order_idx",
        ),
        (
            Filters {
                event_type: Some("Tested1".into()),
                ..Filters::default()
            },
            "events_type_log_order_idx",
        ),
        (
            Filters {
                actor: Some("customer:3".into()),
                ..Filters::default()
            },
            "events_actor_log_order_idx",
        ),
        (
            Filters {
                correlation_id: Some(correlation),
                ..Filters::default()
            },
            "events_correlation_log_order_idx",
        ),
        (
            Filters {
                from: Some(Utc::now()),
                to: Some(Utc::now()),
                ..Filters::default()
            },
            "events_recorded_at_idx",
        ),
    ];
    for (filters, index) in &cases {
        let plan = plan(&db, filters).await;
        assert!(
            plan.contains(index),
            "{filters:?} is not served by {index}:\n{plan}"
        );
    }

    // Paged three at a time, a filter returns its events once each, in delivery order; none is
    // sealed here, so none has a hash.
    let filters = Filters {
        category: Some("trip".into()),
        ..Filters::default()
    };
    let mut after = LogPosition::START;
    let mut seen = Vec::new();
    loop {
        let page = history::page(db.pool(), &filters, after, 3).await.unwrap();
        assert!(
            page.events
                .iter()
                .all(|e| e.hash.is_none() && e.seq.is_none())
        );
        seen.extend(page.events.iter().map(|e| e.position));
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    let expected: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM events WHERE category = 'trip' ORDER BY transaction_id, position",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(seen, expected);
    assert_eq!(seen.len(), 10);
    assert_eq!(
        history::parse_cursor(&history::format_cursor(after)),
        Some(after)
    );
}
