//! Page-at-a-time application gives the rows event-at-a-time application gives, whatever the
//! pages. Generated logs — a random subset of the streams of a real log (`data/demo-log.jsonl`:
//! a demo city's minutes of trips, reservations, quotes, telemetry, payments, fines, penalties,
//! support's refunds and blocks, service tasks), interleaved at random with each stream's order
//! kept — are applied by every read model once an event at a time and once in random pages
//! (cut anywhere, so in the middle of streams), and every table is compared row for row.

#![allow(clippy::unwrap_used)]

use event_store::testing::TestDatabase;
use event_store::{LogPosition, Metadata, RecordedEvent};
use projectors::Projector;
use proptest::prelude::*;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The real log the generated ones are made from.
fn demo_log() -> Vec<RecordedEvent> {
    let text = include_str!("data/demo-log.jsonl");
    text.lines()
        .map(|line| {
            let e: Value = serde_json::from_str(line).unwrap();
            let time = |field: &str| e[field].as_str().unwrap().parse().unwrap();
            let uuid = |field: &str| e[field].as_str().map(|id| id.parse().unwrap());
            RecordedEvent {
                position: e["position"].as_i64().unwrap(),
                log_position: LogPosition {
                    transaction_id: e["transaction_id"].as_str().unwrap().parse().unwrap(),
                    position: e["position"].as_i64().unwrap(),
                },
                stream_id: e["stream_id"].as_str().unwrap().to_owned(),
                stream_version: e["stream_version"].as_u64().unwrap(),
                event_id: uuid("event_id").unwrap(),
                event_type: e["event_type"].as_str().unwrap().to_owned(),
                schema_version: e["schema_version"].as_u64().unwrap() as u32,
                data: e["data"].clone(),
                metadata: Metadata {
                    correlation_id: uuid("correlation_id").unwrap(),
                    causation_id: uuid("causation_id"),
                    actor: e["actor"].as_str().unwrap().to_owned(),
                    command_id: uuid("command_id"),
                },
                occurred_at: time("occurred_at"),
                recorded_at: time("recorded_at"),
            }
        })
        .collect()
}

/// A log generated from `log`: the streams `keep` picks, interleaved by `order` (one draw per
/// event; a stream's events keep their order), in page sizes from `pages` (cycled).
#[derive(Clone, Debug)]
struct Generated {
    keep_seed: u64,
    order: Vec<u32>,
    pages: Vec<usize>,
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        any::<u64>(),
        prop::collection::vec(any::<u32>(), 3000),
        prop::collection::vec(1usize..400, 1..20),
    )
        .prop_map(|(keep_seed, order, pages)| Generated {
            keep_seed,
            order,
            pages,
        })
}

/// splitmix64, for choosing streams reproducibly from a seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Generated {
    /// The generated log: about half the streams, interleaved.
    fn log(&self, source: &[RecordedEvent]) -> Vec<RecordedEvent> {
        let mut streams: BTreeMap<&str, Vec<&RecordedEvent>> = BTreeMap::new();
        for event in source {
            streams.entry(&event.stream_id).or_default().push(event);
        }
        let mut kept: Vec<std::collections::VecDeque<&RecordedEvent>> = streams
            .into_iter()
            .filter(|(stream, _)| {
                let hash = stream
                    .bytes()
                    .fold(self.keep_seed, |h, b| mix(h ^ u64::from(b)));
                hash % 2 == 0
            })
            .map(|(_, events)| events.into_iter().collect())
            .collect();
        let mut log = Vec::new();
        let mut draw = 0;
        while !kept.is_empty() {
            let pick = self.order[draw % self.order.len()] as usize % kept.len();
            draw += 1;
            if let Some(event) = kept[pick].pop_front() {
                let mut event = event.clone();
                // Delivery order is the generated order.
                event.log_position = LogPosition {
                    transaction_id: log.len() as u64 + 1,
                    position: log.len() as i64 + 1,
                };
                event.position = log.len() as i64 + 1;
                log.push(event);
            }
            if kept[pick].is_empty() {
                kept.swap_remove(pick);
            }
        }
        log
    }
}

/// Copies of every read model's tables in `schema`.
async fn tables_in(pool: &PgPool, schema: &str, projectors: &[Arc<dyn Projector>]) {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(pool)
        .await
        .unwrap();
    for projector in projectors {
        for table in projector.tables() {
            sqlx::query(&format!(
                "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
            ))
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

/// Applies `log` to the tables in `schema`, in pages of the given sizes (cycled), each
/// projector only its categories, each page in a transaction.
async fn apply(
    conn: &mut PgConnection,
    schema: &str,
    projectors: &[Arc<dyn Projector>],
    log: &[RecordedEvent],
    pages: &[usize],
) {
    let mut at = 0;
    let mut page = 0;
    while at < log.len() {
        let size = pages[page % pages.len()].max(1);
        page += 1;
        let events = &log[at..(at + size).min(log.len())];
        at += size;
        for projector in projectors {
            let mine: Vec<&RecordedEvent> = events
                .iter()
                .filter(|event| projector.categories().contains(&event.category()))
                .collect();
            if mine.is_empty() {
                continue;
            }
            sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
            sqlx::query(&format!("SET LOCAL search_path TO {schema}, public"))
                .execute(&mut *conn)
                .await
                .unwrap();
            projector
                .apply(conn, &mine)
                .await
                .unwrap_or_else(|error| panic!("{}: {error}", projector.name()));
            sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
        }
    }
}

/// Every row of every read model in `schema`, as JSON, in key order.
async fn rows(pool: &PgPool, schema: &str, projectors: &[Arc<dyn Projector>]) -> Vec<String> {
    let mut all = Vec::new();
    for projector in projectors {
        for table in projector.tables() {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT '{table} ' || to_jsonb(t)::text FROM {schema}.{table} t ORDER BY 1"
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            all.extend(rows);
        }
    }
    all
}

#[test]
fn pages_of_any_size_leave_the_rows_one_event_at_a_time_leaves() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDatabase::new());
    let source = demo_log();
    let projectors = projectors::read_models();
    let config = ProptestConfig {
        cases: 6,
        ..ProptestConfig::default()
    };
    proptest!(config, |(generated in generated())| {
        let log = generated.log(&source);
        let (one_at_a_time, in_pages) = runtime.block_on(async {
            let pool = db.pool();
            tables_in(pool, "one", &projectors).await;
            tables_in(pool, "paged", &projectors).await;
            let mut conn = pool.acquire().await.unwrap();
            apply(&mut conn, "one", &projectors, &log, &[1]).await;
            apply(&mut conn, "paged", &projectors, &log, &generated.pages).await;
            (rows(pool, "one", &projectors).await, rows(pool, "paged", &projectors).await)
        });
        prop_assert!(one_at_a_time.len() > 100, "only {} rows", one_at_a_time.len());
        prop_assert_eq!(one_at_a_time, in_pages);
    });
}

#[tokio::test]
async fn the_whole_log_in_one_page_leaves_what_it_leaves_event_by_event() {
    // The extreme page: every event at once, against one at a time, on the log as recorded.
    let db = TestDatabase::new().await;
    let log = demo_log();
    let projectors = projectors::read_models();
    tables_in(db.pool(), "one", &projectors).await;
    tables_in(db.pool(), "whole", &projectors).await;
    let mut conn = db.pool().acquire().await.unwrap();
    apply(&mut conn, "one", &projectors, &log, &[1]).await;
    apply(&mut conn, "whole", &projectors, &log, &[log.len()]).await;
    let one = rows(db.pool(), "one", &projectors).await;
    assert!(one.len() > 300, "only {} rows", one.len());
    assert_eq!(one, rows(db.pool(), "whole", &projectors).await);
}
