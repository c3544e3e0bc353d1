//! The hash chain against a real PostgreSQL: the sealer covers every committed event (under
//! concurrent writers, across restarts), verify says it is intact, and every kind of tampering
//! done directly in SQL — a changed field, a deleted event, a rewritten tail, a chain cut short —
//! is named at the first position it affects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use audit::chain;
use audit::record::{CHAIN_STREAM, ChainHeadSealed};
use audit::sealer::{Sealer, SealerConfig, SealerStatus};
use audit::verify::{ExpectedHead, Mismatch, Verdict, VerifyOptions, verify};
use chrono::Utc;
use event_store::clock::SystemClock;
use event_store::follower::RunnerConfig;
use event_store::testing::TestDatabase;
use event_store::{
    AppendRequest, Claims, EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

const NAME: &str = "chain";

/// Appends `count` events to `stream`, one append each, with a nested JSON body.
async fn append(store: &EventStore, stream: &str, count: u32) {
    for i in 0..count {
        store
            .append(&AppendRequest {
                writes: vec![StreamWrite {
                    stream_id: stream.to_owned(),
                    expected: ExpectedVersion::Any,
                    events: vec![NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: "Tested".into(),
                        schema_version: 1,
                        data: json!({"n": i, "name": "Анна", "nested": {"b": [1, 2.5], "a": null}}),
                        occurred_at: Utc::now(),
                    }],
                }],
                metadata: Metadata {
                    correlation_id: Uuid::now_v7(),
                    causation_id: None,
                    actor: "customer:1".into(),
                    command_id: Some(Uuid::now_v7()),
                },
                recorded_at: Utc::now(),
                claims: Claims::default(),
                result: None,
            })
            .await
            .unwrap();
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    status: SealerStatus,
}

fn start(store: &EventStore, config: SealerConfig) -> Running {
    let sealer = Sealer::new(store.clone(), Arc::new(SystemClock), None, config);
    let status = sealer.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(sealer.run(async move {
        let _ = stopped.await;
    }));
    Running { stop, task, status }
}

fn config() -> SealerConfig {
    let defaults = SealerConfig::default();
    SealerConfig {
        name: NAME.into(),
        head_every_events: 0,
        head_interval: Duration::ZERO,
        runner: RunnerConfig {
            batch_size: 37,
            idle_poll: Duration::from_millis(10),
            ..defaults.runner.clone()
        },
        ..defaults
    }
}

impl Running {
    /// Waits until every event in the table is sealed.
    async fn sealed_all(&self, store: &EventStore) -> i64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let count = store.count().await.unwrap();
            if self.status.snapshot().sealed == count {
                return count;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sealed {} of {count}: {:?}",
                self.status.snapshot().sealed,
                self.status.snapshot().last_error
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// A fresh database whose log holds `count` events of `test-a`, every one sealed.
async fn sealed_log(count: u32) -> TestDatabase {
    let db = TestDatabase::new().await;
    let store = db.store();
    append(&store, "test-a", count).await;
    let sealer = start(&store, config());
    sealer.sealed_all(&store).await;
    sealer.stop().await;
    db
}

/// Verifies twice: reading each chunk's events by position ranges, and one by one (what verify
/// falls back to when a chunk's positions are scattered); both must reach the same verdict.
async fn check(db: &TestDatabase, heads: &[ExpectedHead]) -> Verdict {
    let mut verdicts = Vec::new();
    for max_ranges in [32, 0] {
        let options = VerifyOptions {
            chunk: 25,
            parallel: 3,
            max_ranges,
        };
        verdicts.push(
            verify(db.pool(), NAME, heads, options, |_| {})
                .await
                .unwrap(),
        );
    }
    assert_eq!(verdicts[0], verdicts[1], "by ranges and by positions");
    verdicts.remove(0)
}

async fn position_of(db: &TestDatabase, seq: i64) -> i64 {
    sqlx::query_scalar("SELECT position FROM event_chain WHERE seq = $1")
        .bind(seq)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

fn broken(verdict: &Verdict) -> (i64, i64, Mismatch) {
    match verdict {
        Verdict::Broken {
            seq,
            position,
            reason,
            ..
        } => (*seq, *position, reason.clone()),
        Verdict::Intact { .. } => panic!("expected a mismatch, got {verdict:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_are_all_sealed_in_delivery_order_and_verify_intact() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let sealer = start(&store, config());
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move { append(&store, &format!("test-{w}"), 40).await })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let total = sealer.sealed_all(&store).await;
    assert_eq!(total, 240);
    // Restarted, the sealer carries on from its checkpoint: the chain continues, no repeats.
    sealer.stop().await;
    append(&store, "test-after", 5).await;
    let sealer = start(&store, config());
    assert_eq!(sealer.sealed_all(&store).await, 245);
    sealer.stop().await;

    // The chain follows delivery order, and covers every event once.
    let (entries, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT position) FROM event_chain")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!((entries, distinct), (245, 245));
    let log = store
        .read_log(event_store::LogPosition::START, 1000)
        .await
        .unwrap();
    let chained: Vec<i64> = sqlx::query_scalar("SELECT position FROM event_chain ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(chained, log.iter().map(|e| e.position).collect::<Vec<_>>());

    match check(&db, &[]).await {
        Verdict::Intact {
            events,
            position,
            unsealed,
            ..
        } => {
            assert_eq!(events, 245);
            assert_eq!(position, *chained.last().unwrap());
            assert_eq!(unsealed, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_changed_field_is_named_at_its_position_and_unsealed_events_are_counted() {
    let db = sealed_log(60).await;
    let store = db.store();
    append(&store, "test-b", 3).await;
    match check(&db, &[]).await {
        Verdict::Intact {
            events, unsealed, ..
        } => assert_eq!((events, unsealed), (60, 3)),
        other => panic!("{other:?}"),
    }

    // One key of one event's data, changed in place.
    let target = position_of(&db, 41).await;
    let as_sent: String = sqlx::query_scalar("SELECT data::text FROM events WHERE position = $1")
        .bind(target)
        .fetch_one(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE events SET data = jsonb_set(data::jsonb, '{n}', '999') WHERE position = $1",
    )
    .bind(target)
    .execute(db.pool())
    .await
    .unwrap();
    assert_eq!(
        broken(&check(&db, &[]).await),
        (41, target, Mismatch::Changed)
    );

    // The same value written back in another spelling (`jsonb`'s, with spaces) is a change too:
    // the text as sent is what was sealed.
    sqlx::query("UPDATE events SET data = $2::jsonb WHERE position = $1")
        .bind(target)
        .bind(&as_sent)
        .execute(db.pool())
        .await
        .unwrap();
    let respelled: String = sqlx::query_scalar("SELECT data::text FROM events WHERE position = $1")
        .bind(target)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_ne!(respelled, as_sent);
    assert_eq!(
        broken(&check(&db, &[]).await),
        (41, target, Mismatch::Changed)
    );

    // Put back byte for byte, it is intact again: the check compares content, not row versions.
    sqlx::query("UPDATE events SET data = $2::json WHERE position = $1")
        .bind(target)
        .bind(&as_sent)
        .execute(db.pool())
        .await
        .unwrap();
    assert!(matches!(check(&db, &[]).await, Verdict::Intact { .. }));

    // Metadata is covered too; an earlier change is found first.
    let earlier = position_of(&db, 7).await;
    sqlx::query("UPDATE events SET actor = 'support:someone-else' WHERE position = $1")
        .bind(earlier)
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE events SET recorded_at = recorded_at + interval '1 microsecond' WHERE position = $1")
        .bind(target)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(
        broken(&check(&db, &[]).await),
        (7, earlier, Mismatch::Changed)
    );
}

#[tokio::test]
async fn a_deleted_event_or_chain_entry_is_named() {
    let db = sealed_log(30).await;

    let gone = position_of(&db, 12).await;
    sqlx::query("DELETE FROM events WHERE position = $1")
        .bind(gone)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(
        broken(&check(&db, &[]).await),
        (12, gone, Mismatch::Missing)
    );

    // Removing the entry as well leaves a hole in the chain.
    sqlx::query("DELETE FROM event_chain WHERE seq = 12")
        .execute(db.pool())
        .await
        .unwrap();
    let (seq, _, reason) = broken(&check(&db, &[]).await);
    assert_eq!((seq, reason), (13, Mismatch::Gap { expected: 12 }));
}

/// The migration that turned `events.data` from `jsonb` into `json`.
const DATA_AS_SENT: i64 = 20261205000200;
/// The migration that gave every follower's checkpoint one table (later in the history).
const FOLLOWER_CHECKPOINTS: i64 = 20261207100000;
/// The migration that gave each checkpoint its fence (later still).
const LEASES: i64 = 20261208000000;

#[tokio::test]
async fn a_chain_sealed_over_jsonb_data_still_verifies_after_the_column_becomes_json() {
    // The schema as it was before: every migration older than the conversion, from the same
    // files (so the full migrator later sees them as applied). And, ahead of their turn, the one
    // table of checkpoints, where today's sealer keeps its own, and its fence; they touch
    // nothing the conversion does.
    let db = TestDatabase::unmigrated().await;
    let before = std::env::temp_dir().join(format!("velka-migrations-{}", Uuid::new_v4()));
    std::fs::create_dir(&before).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for file in std::fs::read_dir(&all).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().into_string().unwrap();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version < DATA_AS_SENT || version == FOLLOWER_CHECKPOINTS || version == LEASES {
            std::fs::copy(file.path(), before.join(&name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(db.pool())
        .await
        .unwrap();
    std::fs::remove_dir_all(&before).unwrap();

    // Events written as jsonb, in spellings jsonb does not keep (key order, spacing, a number's
    // trailing zeros), then sealed.
    sqlx::query(
        r#"INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version,
                               data, correlation_id, actor, occurred_at, recorded_at)
           SELECT 'test-a', g, gen_random_uuid(), 'Tested', 1,
                  format('{"z": %s,"a" :  {"y": [1, 2.50]}, "name":"Анна"}', g)::jsonb,
                  gen_random_uuid(), 'customer:1', now(), now()
           FROM generate_series(1, 40) AS g"#,
    )
    .execute(db.pool())
    .await
    .unwrap();
    let store = db.store();
    let sealer = start(&store, config());
    sealer.sealed_all(&store).await;
    sealer.stop().await;
    // (Verify itself reads `data` as `json`, so it runs after the conversion; what the sealer
    // hashed before it is in the entries and the checkpoint.)
    let sealed = audit::sealer::load_checkpoint(db.pool(), NAME)
        .await
        .unwrap();
    assert_eq!(sealed.seq, 40);
    let head = sealed.hash;
    let rendered: Vec<String> =
        sqlx::query_scalar("SELECT data::text FROM events ORDER BY position")
            .fetch_all(db.pool())
            .await
            .unwrap();

    // The conversion keeps each value's text as jsonb rendered it, so every entry sealed over
    // jsonb recomputes to the same hash.
    event_store::MIGRATOR.run(db.pool()).await.unwrap();
    let column: String = sqlx::query_scalar(
        "SELECT data_type FROM information_schema.columns
         WHERE table_name = 'events' AND column_name = 'data'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(column, "json");
    let kept: Vec<String> = sqlx::query_scalar("SELECT data::text FROM events ORDER BY position")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(kept, rendered);
    assert_eq!(
        check(&db, &[]).await,
        Verdict::Intact {
            events: 40,
            position: 40,
            head,
            heads_checked: 0,
            unsealed: 0,
        }
    );

    // And the chain goes on over events appended as sent.
    append(&store, "test-b", 5).await;
    let sealer = start(&store, config());
    sealer.sealed_all(&store).await;
    sealer.stop().await;
    match check(&db, &[]).await {
        Verdict::Intact { events, .. } => assert_eq!(events, 45),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn another_event_at_a_sealed_position_or_a_relinked_entry_is_named() {
    let db = sealed_log(30).await;

    // An entry's stored previous hash changed: the entry no longer links to the one before.
    sqlx::query("UPDATE event_chain SET prev_hash = sha256('forged') WHERE seq = 20")
        .execute(db.pool())
        .await
        .unwrap();
    let relinked = position_of(&db, 20).await;
    assert_eq!(
        broken(&check(&db, &[]).await),
        (20, relinked, Mismatch::Link)
    );

    // Earlier, the row at a sealed position now holds another event (its id changed).
    let swapped = position_of(&db, 9).await;
    let sealed: Uuid = sqlx::query_scalar("SELECT event_id FROM event_chain WHERE seq = 9")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let found = Uuid::new_v4();
    sqlx::query("UPDATE events SET event_id = $2 WHERE position = $1")
        .bind(swapped)
        .bind(found)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(
        broken(&check(&db, &[]).await),
        (9, swapped, Mismatch::OtherEvent { sealed, found })
    );
}

#[tokio::test]
async fn a_rewritten_tail_is_caught_by_a_published_head_and_a_cut_one_too() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let mut with_heads = config();
    with_heads.head_every_events = 10;
    let sealer = start(&store, with_heads);
    // Two rounds of 10 events → two heads (each sealed in turn, without counting towards the
    // next head, so a head alone never causes another).
    for round in 1..=2u64 {
        append(&store, "test-a", 10).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while sealer.status.snapshot().heads_published < round
            || sealer.status.snapshot().sealed < store.count().await.unwrap()
        {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    sealer.stop().await;
    let heads = store.read_stream(CHAIN_STREAM, 0).await.unwrap();
    assert_eq!(heads.len(), 2);
    let first: ChainHeadSealed = serde_json::from_value(heads[0].data.clone()).unwrap();
    assert_eq!(first.events, 10);
    let verdict = check(&db, &[]).await;
    let Verdict::Intact {
        events,
        heads_checked,
        head,
        ..
    } = verdict
    else {
        panic!("{verdict:?}")
    };
    assert_eq!((events, heads_checked), (22, 2));
    let held_outside = ExpectedHead {
        events: 22,
        hash: head,
        source: "an auditor's note".into(),
    };

    // Someone rewrites event 5 and recomputes every later entry and the checkpoint, so the
    // chain is consistent in itself. The head published at entry 10 disagrees.
    let target = position_of(&db, 5).await;
    sqlx::query("UPDATE events SET data = '{\"n\": 4, \"forged\": true}' WHERE position = $1")
        .bind(target)
        .execute(db.pool())
        .await
        .unwrap();
    rechain_from(&db, 5).await;
    let (seq, _, reason) = broken(&check(&db, &[]).await);
    assert_eq!(seq, 10);
    assert!(matches!(reason, Mismatch::Head { .. }), "{reason:?}");

    // Had they rewritten the head events as well, only a head held outside the database
    // catches it.
    for head in &heads {
        let covered: i64 = head.data["events"].as_i64().unwrap();
        let hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM event_chain WHERE seq = $1")
            .bind(covered)
            .fetch_one(db.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE events SET data = jsonb_set(data::jsonb, '{hash}', to_jsonb($2::text)) WHERE position = $1")
            .bind(head.position)
            .bind(chain::hex(&hash))
            .execute(db.pool())
            .await
            .unwrap();
        rechain_from(&db, covered + 1).await;
    }
    assert!(matches!(check(&db, &[]).await, Verdict::Intact { .. }));
    let (seq, _, reason) = broken(&check(&db, std::slice::from_ref(&held_outside)).await);
    assert_eq!(seq, 22);
    assert!(
        matches!(&reason, Mismatch::Head { source, .. } if source == "an auditor's note"),
        "{reason:?}"
    );

    // A chain cut back (entries and checkpoint) falls short of the heads published before.
    sqlx::query("DELETE FROM event_chain WHERE seq > 15")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE follower_checkpoints
         SET state = jsonb_build_object('seq', 15,
                 'hash', (SELECT encode(hash, 'hex') FROM event_chain WHERE seq = 15))
         WHERE kind = 'sealer'",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let (_, _, reason) = broken(&check(&db, &[]).await);
    assert!(
        matches!(reason, Mismatch::Truncated { events: 21, .. }),
        "{reason:?}"
    );
}

/// What a forger with database access would do: recompute entries from `seq` on (and the
/// checkpoint) from the events as they are now.
async fn rechain_from(db: &TestDatabase, seq: i64) {
    let rows = sqlx::query(&format!(
        "SELECT c.seq, c.prev_hash, {} FROM event_chain c JOIN events e ON e.position = c.position
         WHERE c.seq >= $1 ORDER BY c.seq",
        chain::EVENT_COLUMNS
    ))
    .bind(seq)
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut previous: Option<chain::Hash> = None;
    let mut last = (0i64, chain::GENESIS);
    for row in &rows {
        use sqlx::Row;
        let seq: i64 = row.get(0);
        let stored_prev: Vec<u8> = row.get(1);
        let prev = previous.unwrap_or_else(|| chain::from_bytes(&stored_prev).unwrap());
        let event = chain::ChainEvent::from_row(row, 2).unwrap();
        let hash = chain::link(&prev, &event.digest());
        sqlx::query("UPDATE event_chain SET hash = $2, prev_hash = $3 WHERE seq = $1")
            .bind(seq)
            .bind(hash.as_slice())
            .bind(prev.as_slice())
            .execute(db.pool())
            .await
            .unwrap();
        previous = Some(hash);
        last = (seq, hash);
    }
    sqlx::query(
        "UPDATE follower_checkpoints SET state = jsonb_build_object('seq', $1::bigint, 'hash', $2::text)
         WHERE kind = 'sealer'",
    )
    .bind(last.0)
    .bind(chain::hex(&last.1))
    .execute(db.pool())
    .await
    .unwrap();
}
