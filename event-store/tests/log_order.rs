//! Gap-free, in-order delivery of the log under concurrent writers.
//!
//! The checker [`check_delivery`] takes what was committed and what a reader delivered, and
//! demands that every committed event was delivered exactly once and each stream's events in
//! version order. The companion test `naive_position_reader_skips_a_late_commit` drives the
//! classic interleaving (a lower position commits after a higher one) and shows the checker
//! failing a reader that polls `position > checkpoint`; the same interleaving and a randomized
//! many-writer run pass with `read_log`.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::testing::TestDatabase;
use event_store::{EventStore, ExpectedVersion, LogPosition, RecordedEvent};
use rand_like::Rng;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use support::{event, request, write};
use uuid::Uuid;

/// A tiny deterministic generator, so failures replay with the same seed.
mod rand_like {
    pub struct Rng(u64);
    impl Rng {
        pub fn new(seed: u64) -> Self {
            Self(
                seed.wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407),
            )
        }
        pub fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }
}

/// What a writer committed: event id → (stream id, stream version).
type Committed = HashMap<Uuid, (String, u64)>;

/// Checks a reader's deliveries against what was committed.
fn check_delivery(committed: &Committed, delivered: &[(Uuid, String, u64)]) -> Result<(), String> {
    let mut seen = HashSet::new();
    let mut last_version: HashMap<&str, u64> = HashMap::new();
    for (event_id, stream_id, version) in delivered {
        if !seen.insert(*event_id) {
            return Err(format!("event {event_id} delivered twice"));
        }
        let last = last_version.entry(stream_id.as_str()).or_insert(0);
        if *version != *last + 1 {
            return Err(format!(
                "stream {stream_id}: version {version} delivered after {last}"
            ));
        }
        *last = *version;
    }
    let missing: Vec<_> = committed.keys().filter(|id| !seen.contains(id)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} committed events never delivered",
            missing.len()
        ));
    }
    Ok(())
}

/// The reader this design replaces: poll for positions above the last one seen.
async fn naive_read(pool: &PgPool, after: i64) -> Vec<(i64, Uuid, String, u64)> {
    sqlx::query_as::<_, (i64, Uuid, String, i64)>(
        "SELECT position, event_id, stream_id, stream_version FROM events
         WHERE position > $1 ORDER BY position",
    )
    .bind(after)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(p, id, s, v)| (p, id, s, v as u64))
    .collect()
}

fn delivered_of(events: &[RecordedEvent]) -> Vec<(Uuid, String, u64)> {
    events
        .iter()
        .map(|e| (e.event_id, e.stream_id.clone(), e.stream_version))
        .collect()
}

async fn read_all(store: &EventStore, after: &mut LogPosition, into: &mut Vec<RecordedEvent>) {
    loop {
        let batch = store.read_log(*after, 100).await.unwrap();
        let Some(last) = batch.last() else { return };
        *after = last.log_position;
        into.extend(batch);
    }
}

/// Writer A takes the lower position and commits *after* writer B. A reader that polls between
/// the two commits and moves its checkpoint by position never sees A's event; `read_log` holds
/// B's event back until A has committed and then delivers both.
#[tokio::test]
async fn naive_position_reader_skips_a_late_commit() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let mut committed = Committed::new();

    // A: open a transaction and append, but do not commit yet.
    let a = request(vec![write(
        "trip-a",
        ExpectedVersion::NoStream,
        vec![event("A", 1)],
    )]);
    committed.insert(a.writes[0].events[0].event_id, ("trip-a".into(), 1));
    let mut tx_a = db.pool().begin().await.unwrap();
    let a_out = store.append_in(&mut *tx_a, &a).await.unwrap();

    // B: append and commit.
    let b = request(vec![write(
        "trip-b",
        ExpectedVersion::NoStream,
        vec![event("B", 1)],
    )]);
    committed.insert(b.writes[0].events[0].event_id, ("trip-b".into(), 1));
    let b_out = store.append(&b).await.unwrap();
    assert!(
        a_out.events[0].0 < b_out.events[0].0,
        "A holds the lower position"
    );

    // Both readers look while A is still in flight.
    let mut naive_delivered = Vec::new();
    let mut naive_checkpoint = 0;
    for (position, id, stream, version) in naive_read(db.pool(), naive_checkpoint).await {
        naive_checkpoint = position;
        naive_delivered.push((id, stream, version));
    }
    let mut ours = Vec::new();
    let mut after = LogPosition::START;
    read_all(&store, &mut after, &mut ours).await;
    assert!(
        ours.is_empty(),
        "B must be held back while the older A is in flight"
    );

    tx_a.commit().await.unwrap();

    for (_, id, stream, version) in naive_read(db.pool(), naive_checkpoint).await {
        naive_delivered.push((id, stream, version));
    }
    // Other tests' transactions on the same server may hold the horizon back for a moment:
    // wait (bounded) until both committed events are readable.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ours.len() < 2 && tokio::time::Instant::now() < deadline {
        read_all(&store, &mut after, &mut ours).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let naive = check_delivery(&committed, &naive_delivered);
    assert_eq!(
        naive,
        Err("1 committed events never delivered".to_owned()),
        "the naive reader must be caught skipping A"
    );
    check_delivery(&committed, &delivered_of(&ours)).unwrap();
    assert_eq!(ours[0].stream_id, "trip-a");
    assert_eq!(ours[1].stream_id, "trip-b");
}

/// Many writers append to a few hot streams — some through long-ish transactions that sleep
/// before committing, so that positions commit out of order — while a subscriber follows the
/// log live. Afterwards every committed event must have been delivered exactly once, in
/// per-stream order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_a_live_subscriber_lose_nothing() {
    const WRITERS: u64 = 12;
    const APPENDS_PER_WRITER: u64 = 40;
    const STREAMS: u64 = 6;

    let db = TestDatabase::new().await;
    let store = db.store();

    let subscriber = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut subscription = store
                .subscribe(LogPosition::START)
                .with_batch_size(7)
                .with_idle_poll(Duration::from_millis(5));
            let mut delivered = Vec::new();
            loop {
                let batch = subscription.next_batch().await.unwrap();
                let done = batch.iter().any(|e| e.event_type == "Done");
                delivered.extend(batch);
                if done {
                    return delivered;
                }
            }
        })
    };

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        let pool = db.pool().clone();
        writers.push(tokio::spawn(async move {
            let mut rng = Rng::new(writer + 1);
            let mut committed = Committed::new();
            for n in 0..APPENDS_PER_WRITER {
                let stream = format!("trip-{}", rng.below(STREAMS));
                let slow = rng.below(3) == 0;
                let count = 1 + rng.below(3);
                loop {
                    let version = store
                        .read_stream(&stream, 0)
                        .await
                        .unwrap()
                        .last()
                        .map_or(0, |e| e.stream_version);
                    let events: Vec<_> = (0..count).map(|i| event("E", n * 10 + i)).collect();
                    let req = request(vec![write(
                        &stream,
                        ExpectedVersion::after(version),
                        events.clone(),
                    )]);
                    let result = if slow {
                        let mut tx = pool.begin().await.unwrap();
                        let result = store.append_in(&mut *tx, &req).await;
                        if result.is_ok() {
                            let pause_ms = 1 + rng.below(4) as i64;
                            sqlx::query("SELECT pg_sleep($1::float8 / 1000)")
                                .bind(pause_ms)
                                .execute(&mut *tx)
                                .await
                                .unwrap();
                            tx.commit().await.unwrap();
                        }
                        result
                    } else {
                        store.append(&req).await
                    };
                    match result {
                        Ok(outcome) => {
                            for (event, (_, stream_id, version)) in
                                events.iter().zip(outcome.events)
                            {
                                committed.insert(event.event_id, (stream_id, version));
                            }
                            break;
                        }
                        Err(event_store::AppendError::WrongExpectedVersion { .. }) => continue,
                        Err(other) => panic!("append failed: {other}"),
                    }
                }
            }
            committed
        }));
    }

    let mut committed = Committed::new();
    for writer in writers {
        committed.extend(writer.await.unwrap());
    }
    let done = request(vec![write(
        "control-done",
        ExpectedVersion::NoStream,
        vec![event("Done", 0)],
    )]);
    committed.insert(
        done.writes[0].events[0].event_id,
        ("control-done".into(), 1),
    );
    store.append(&done).await.unwrap();

    let delivered = tokio::time::timeout(Duration::from_secs(30), subscriber)
        .await
        .expect("the subscriber caught up within 30 s")
        .unwrap();
    assert_eq!(delivered.len(), committed.len());
    check_delivery(&committed, &delivered_of(&delivered)).unwrap();

    // Delivered versions agree with what the writers were told they committed.
    let by_id: BTreeMap<Uuid, (String, u64)> = delivered
        .iter()
        .map(|e| (e.event_id, (e.stream_id.clone(), e.stream_version)))
        .collect();
    for (id, expected) in &committed {
        assert_eq!(by_id.get(id), Some(expected));
    }
}

/// A subscription that has caught up wakes for an append made later, without polling for long.
#[tokio::test]
async fn subscription_follows_live_appends() {
    let db = TestDatabase::new().await;
    let store = db.store();
    store
        .append(&request(vec![write(
            "trip-1",
            ExpectedVersion::NoStream,
            vec![event("A", 1)],
        )]))
        .await
        .unwrap();
    let mut subscription = store
        .subscribe(LogPosition::START)
        .with_idle_poll(Duration::from_secs(60));
    let first = subscription.next_batch().await.unwrap();
    assert_eq!(first.len(), 1);

    let waiting = tokio::spawn(async move { subscription.next_batch().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    store
        .append(&request(vec![write(
            "trip-1",
            ExpectedVersion::Exactly(1),
            vec![event("B", 2)],
        )]))
        .await
        .unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("woken by the append, not by the 60 s poll")
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].event_type, "B");
    assert_eq!(store.head().await.unwrap(), batch[0].log_position);
}

/// An append held back behind a transaction that is not an append (a projector's batch, a
/// transaction in another database of the cluster) is delivered as soon as that transaction ends,
/// although its end wakes nobody: the reader saw it held back and keeps looking.
#[tokio::test]
async fn an_append_held_back_by_a_foreign_transaction_is_delivered_when_it_ends() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let mut subscription = store
        .subscribe(LogPosition::START)
        .with_idle_poll(Duration::from_secs(60));

    // A foreign transaction takes a transaction id and stays open.
    let mut foreign = db.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *foreign)
        .await
        .unwrap();
    store
        .append(&request(vec![write(
            "trip-1",
            ExpectedVersion::NoStream,
            vec![event("A", 1)],
        )]))
        .await
        .unwrap();
    let page = store.read_log_page(LogPosition::START, 10).await.unwrap();
    assert!(
        page.events.is_empty(),
        "held back while the older transaction runs"
    );
    assert!(page.held_back);

    let waiting = tokio::spawn(async move { subscription.next_batch().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(20)).await;
    foreign.commit().await.unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("delivered once the foreign transaction ended, not after the 60 s poll")
        .unwrap();
    assert_eq!(batch[0].event_type, "A");
}

/// Subscriptions started after the shared tail: one far behind reads the database until it
/// reaches the tail, one at the head is served from memory; both see every event once, in order,
/// including appends made while they follow.
#[tokio::test]
async fn subscriptions_behind_and_at_the_tail_see_the_same_log() {
    let db = TestDatabase::new().await;
    let store = db.store();
    for n in 1..=30u64 {
        store
            .append(&request(vec![write(
                &format!("trip-{}", n % 3),
                ExpectedVersion::Any,
                vec![event("Old", n)],
            )]))
            .await
            .unwrap();
    }
    // The head once all 30 are delivered (a transaction elsewhere in the cluster may hold the
    // horizon back for a moment).
    let old = read_exactly(&store, 30).await;
    let head = old[29].log_position;
    // The first subscription starts the tail at the head; the second starts behind it.
    let mut at_head = store
        .subscribe(head)
        .with_batch_size(4)
        .with_idle_poll(Duration::from_secs(60));
    let mut behind = store
        .subscribe(LogPosition::START)
        .with_batch_size(4)
        .with_idle_poll(Duration::from_secs(60));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 31..=60u64 {
                store
                    .append(&request(vec![write(
                        &format!("trip-{}", n % 3),
                        ExpectedVersion::Any,
                        vec![event("New", n)],
                    )]))
                    .await
                    .unwrap();
            }
        })
    };
    let mut from_head = Vec::new();
    let mut from_start = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while from_head.len() < 30 {
            from_head.extend(at_head.next_batch().await.unwrap());
        }
        while from_start.len() < 60 {
            from_start.extend(behind.next_batch().await.unwrap());
        }
    })
    .await
    .expect("both subscriptions caught up within 30 s");
    writer.await.unwrap();
    let all = read_exactly(&store, 60).await;
    assert_eq!(
        from_start.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        all.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        "from the start: the whole log in delivery order"
    );
    assert_eq!(
        from_head.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        all[30..].iter().map(|e| e.event_id).collect::<Vec<_>>(),
        "from the head: exactly what came after it"
    );
    assert!(from_head.iter().all(|e| e.event_type == "New"));
}

/// The whole log once it holds `count` deliverable events (waits up to 10 s).
async fn read_exactly(store: &EventStore, count: usize) -> Vec<RecordedEvent> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let all = store.read_log(LogPosition::START, 1_000).await.unwrap();
            if all.len() >= count {
                assert_eq!(all.len(), count);
                return all;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the appends became deliverable within 10 s")
}
