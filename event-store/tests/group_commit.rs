//! Group commit against a real PostgreSQL: appends queued behind a busy writer commit together,
//! and each is kept or refused on its own.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::testing::TestDatabase;
use event_store::{AppendError, AppendOutcome, AppendRequest, CommandResult, ExpectedVersion};
use sqlx::Row;
use std::time::{Duration, Instant};
use support::{event, request, write};

/// Waits until `store` has `count` appends queued, or fails after a deadline.
async fn until_waiting(store: &event_store::EventStore, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.appends_waiting() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} appends queued",
            store.appends_waiting()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn with_claim(mut req: AppendRequest, claim: &str, holder: &str) -> AppendRequest {
    req.claims.acquire = vec![claim.to_owned()];
    req.claims.holder = Some(holder.to_owned());
    req
}

fn with_result(mut req: AppendRequest, key: &str) -> AppendRequest {
    req.result = Some(CommandResult {
        scope: "customer:1".to_owned(),
        key: key.to_owned(),
        request_hash: "h".to_owned(),
        status: 201,
        body: serde_json::json!({}),
    });
    req
}

#[tokio::test]
async fn appends_queued_behind_a_busy_writer_commit_together_and_conflicts_refuse_alone() {
    let db = TestDatabase::new().await;
    let store = db.store().with_group_commit(32, 1);
    store
        .append(&request(vec![write(
            "vehicle-blocker",
            ExpectedVersion::NoStream,
            vec![event("A", 1)],
        )]))
        .await
        .unwrap();

    // Hold the blocker's head so the only writer waits on it with the next append.
    let mut holder = db.pool().begin().await.unwrap();
    sqlx::query("SELECT version FROM streams WHERE stream_id = 'vehicle-blocker' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(&request(vec![write(
                    "vehicle-blocker",
                    ExpectedVersion::Exactly(1),
                    vec![event("B", 2)],
                )]))
                .await
        })
    };
    // Wait until the writer is stuck on the held head.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stuck: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        if stuck > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never reached the held head"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Three pairs, each of which can have only one winner, and two bystanders.
    let requests = [
        request(vec![write(
            "trip-a",
            ExpectedVersion::NoStream,
            vec![event("T", 1)],
        )]),
        request(vec![write(
            "trip-a",
            ExpectedVersion::NoStream,
            vec![event("T", 2)],
        )]),
        with_claim(
            request(vec![write(
                "trip-b",
                ExpectedVersion::Any,
                vec![event("T", 3)],
            )]),
            "active-trip:vehicle:9",
            "trip-b",
        ),
        with_claim(
            request(vec![write(
                "trip-c",
                ExpectedVersion::Any,
                vec![event("T", 4)],
            )]),
            "active-trip:vehicle:9",
            "trip-c",
        ),
        with_result(
            request(vec![write(
                "trip-d",
                ExpectedVersion::Any,
                vec![event("T", 5)],
            )]),
            "key-1",
        ),
        with_result(
            request(vec![write(
                "trip-e",
                ExpectedVersion::Any,
                vec![event("T", 6)],
            )]),
            "key-1",
        ),
        request(vec![write(
            "trip-f",
            ExpectedVersion::NoStream,
            vec![event("T", 7)],
        )]),
        request(vec![write(
            "trip-g",
            ExpectedVersion::NoStream,
            vec![event("T", 8)],
        )]),
    ];
    let tasks: Vec<_> = requests
        .iter()
        .cloned()
        .map(|req| {
            let store = store.clone();
            tokio::spawn(async move { store.append(&req).await })
        })
        .collect();
    until_waiting(&store, requests.len()).await;
    holder.commit().await.unwrap();
    assert_eq!(blocked.await.unwrap().unwrap().events[0].2, 2);

    let mut outcomes: Vec<Result<AppendOutcome, AppendError>> = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let pair = |a: usize, b: usize| (&outcomes[a], &outcomes[b]);
    match pair(0, 1) {
        (Ok(_), Err(AppendError::WrongExpectedVersion { actual: 1, .. }))
        | (Err(AppendError::WrongExpectedVersion { actual: 1, .. }), Ok(_)) => {}
        other => panic!("one creator of trip-a must win, the other conflict: {other:?}"),
    }
    match pair(2, 3) {
        (Ok(_), Err(AppendError::ClaimHeld { claim }))
        | (Err(AppendError::ClaimHeld { claim }), Ok(_)) => {
            assert_eq!(claim, "active-trip:vehicle:9");
        }
        other => panic!("one taker of the claim must win: {other:?}"),
    }
    match pair(4, 5) {
        (Ok(_), Err(AppendError::DuplicateCommand { key }))
        | (Err(AppendError::DuplicateCommand { key }), Ok(_)) => assert_eq!(key, "key-1"),
        other => panic!("one command under key-1 must win: {other:?}"),
    }
    assert!(outcomes[6].is_ok() && outcomes[7].is_ok(), "{outcomes:?}");

    // Exactly the winners were written, all in one transaction, with their own versions.
    let rows = sqlx::query(
        "SELECT event_id, transaction_id::text AS tx FROM events
         WHERE stream_id LIKE 'trip-%' ORDER BY position",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let written: Vec<uuid::Uuid> = rows.iter().map(|r| r.get("event_id")).collect();
    let mut winners = Vec::new();
    for (req, outcome) in requests.iter().zip(&outcomes) {
        if outcome.is_ok() {
            winners.push(req.writes[0].events[0].event_id);
        }
    }
    assert_eq!(written.len(), 5);
    assert!(winners.iter().all(|id| written.contains(id)));
    let transactions: std::collections::BTreeSet<String> =
        rows.iter().map(|r| r.get::<String, _>("tx")).collect();
    assert_eq!(transactions.len(), 1, "the queued appends were one group");
    for outcome in outcomes.iter().flatten() {
        assert_eq!(outcome.events.len(), 1);
        assert_eq!(outcome.events[0].2, 1);
    }
    let claim_holders: i64 = sqlx::query_scalar("SELECT count(*) FROM exclusive_claims")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(claim_holders, 1);
    let results: i64 = sqlx::query_scalar("SELECT count(*) FROM command_results")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(results, 1);
}

#[tokio::test]
async fn grouped_and_single_appends_to_the_same_streams_keep_every_version_once() {
    let db = TestDatabase::new().await;
    let grouped = db.store().with_group_commit(32, 2);
    let single = db.store().with_group_commit(1, 1);
    // Many writers, each appending to two of a few streams in different orders, retrying on
    // conflict: with the heads locked in one order, nothing deadlocks and nothing is lost.
    let streams = ["vehicle-1", "vehicle-2", "vehicle-3", "vehicle-4"];
    let mut tasks = Vec::new();
    for writer in 0..24usize {
        let store = if writer % 3 == 0 {
            single.clone()
        } else {
            grouped.clone()
        };
        let first = streams[writer % 4];
        let second = streams[(writer * 7 + 1) % 4];
        tasks.push(tokio::spawn(async move {
            let mut appended = 0;
            while appended < 10 {
                let mut writes = vec![write(first, ExpectedVersion::Any, vec![event("E", 1)])];
                if second != first {
                    writes.push(write(second, ExpectedVersion::Any, vec![event("E", 2)]));
                }
                match store.append(&request(writes)).await {
                    Ok(_) => appended += 1,
                    Err(AppendError::WrongExpectedVersion { .. }) => {}
                    Err(other) => panic!("append failed: {other}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for stream in streams {
        let events = grouped.read_stream(stream, 0).await.unwrap();
        let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
        let expected: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(versions, expected, "{stream} has a gap or a repeat");
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let heads: i64 = sqlx::query_scalar("SELECT sum(version)::bigint FROM streams")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(total, heads);
}
