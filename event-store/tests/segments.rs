//! Followers split into segments, against a real PostgreSQL: each segment's runner acts on the
//! streams that hash to it, each stream in order in one segment, none missed and none twice;
//! the number of segments is changed only with the follower stopped and its segments level,
//! and a runner started with another number refuses to run.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::follower::checkpoint::{self, ResegmentError};
use event_store::follower::{
    Applied, Batch, Categories, EffectError, Follower, FollowerId, InTransaction, Runner,
    RunnerConfig, RunnerState, Segment, Shutdown,
};
use event_store::lease::Leases;
use event_store::testing::TestDatabase;
use event_store::{ExpectedVersion, LogPosition};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use std::time::Duration;
use support::*;

const DEADLINE: Duration = Duration::from_secs(20);

/// Records each event it applies with its segment, in `probe_applied`.
struct Recorder {
    id: FollowerId,
}

impl Follower for Recorder {
    fn id(&self) -> &FollowerId {
        &self.id
    }

    fn categories(&self) -> Categories {
        Categories::Only(&["probe"])
    }
}

impl InTransaction for Recorder {
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        batch: &'a Batch<'a>,
    ) -> BoxFuture<'a, Result<Applied, EffectError>> {
        Box::pin(async move {
            let mut applied = Applied::default();
            for event in batch.events() {
                sqlx::query(
                    "INSERT INTO probe_applied (position, stream_id, segment) VALUES ($1, $2, $3)",
                )
                .bind(event.position)
                .bind(&event.stream_id)
                .bind(i32::try_from(self.id.segment.index()).unwrap())
                .execute(&mut *tx)
                .await
                .map_err(|error| EffectError::on(event, error))?;
                applied.events += 1;
            }
            Ok(applied)
        })
    }
}

fn config() -> RunnerConfig {
    RunnerConfig {
        batch_size: 11,
        idle_poll: Duration::from_millis(10),
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(50),
        checkpoint_delay: Duration::from_millis(10),
    }
}

#[tokio::test]
async fn the_hash_splits_keys_into_every_segment_and_each_key_into_one() {
    let segments: Vec<Segment> = Segment::all(4).collect();
    let mut per_segment = [0; 4];
    for n in 0..1_000 {
        let key = format!("trip-{n}");
        let holders: Vec<u32> = segments
            .iter()
            .filter(|segment| segment.contains(&key))
            .map(Segment::index)
            .collect();
        assert_eq!(holders.len(), 1, "{key} in {holders:?}");
        per_segment[holders[0] as usize] += 1;
    }
    assert!(per_segment.iter().all(|&n| n > 180), "{per_segment:?}");
    // Fixed for good: every process and version must place a key alike.
    assert_eq!(
        (0..4).find(|&i| Segment::new(i, 4).unwrap().contains("vehicle-42")),
        Some(fnv_segment("vehicle-42", 4))
    );
    assert!(Segment::WHOLE.contains("anything"));
    assert_eq!(Segment::new(4, 4), None);
}

/// 64-bit FNV-1a, as the specification of the partition hash.
fn fnv_segment(key: &str, count: u32) -> u32 {
    let mut hash: u64 = 14_695_981_039_346_656_037;
    for byte in key.as_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(1_099_511_628_211);
    }
    u32::try_from(hash % u64::from(count)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_segments_apply_disjoint_streams_each_in_order_and_together_all() {
    let db = TestDatabase::new().await;
    let pool = db.pool();
    sqlx::query(
        "CREATE TABLE probe_applied (position bigint PRIMARY KEY, stream_id text NOT NULL,
            segment integer NOT NULL, applied bigserial)",
    )
    .execute(pool)
    .await
    .unwrap();
    checkpoint::resegment(pool, "probe", "split", 2)
        .await
        .unwrap();
    assert_eq!(
        checkpoint::segments(pool, "probe", "split").await.unwrap(),
        2
    );
    let store = db.store();
    let shutdown = Shutdown::new();
    let mut tasks = Vec::new();
    let mut statuses = Vec::new();
    for segment in Segment::all(2) {
        let runner = Runner::new(
            store.clone(),
            Recorder {
                id: FollowerId::segment("probe", "split", segment),
            },
            config(),
        );
        statuses.push(runner.status());
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(
            runner.run_in_transaction(async move { shutdown.triggered().await }),
        ));
    }
    // Twenty streams, interleaved, with others between.
    for round in 0..6 {
        for stream in 0..20 {
            store
                .append(&request(vec![write(
                    &format!("probe-{stream}"),
                    ExpectedVersion::Any,
                    vec![event("Happened", round)],
                )]))
                .await
                .unwrap();
        }
        store
            .append(&request(vec![write(
                "other-1",
                ExpectedVersion::Any,
                vec![event("Else", round)],
            )]))
            .await
            .unwrap();
    }
    let log = store.read_log(LogPosition::START, 1_000).await.unwrap();
    let last = log.last().unwrap().log_position;
    for (index, status) in statuses.iter().enumerate() {
        assert!(
            status.wait_for_position(last, DEADLINE).await,
            "{:?}",
            status.snapshot()
        );
        assert_eq!(&*status.name(), format!("split#{index}/2"));
    }
    shutdown.trigger();
    for task in tasks {
        task.await.unwrap();
    }
    let rows: Vec<(i64, String, i32)> =
        sqlx::query_as("SELECT position, stream_id, segment FROM probe_applied ORDER BY applied")
            .fetch_all(pool)
            .await
            .unwrap();
    // Together, every probe event once (the key refuses twice).
    let mut applied: Vec<i64> = rows.iter().map(|(position, _, _)| *position).collect();
    applied.sort_unstable();
    let expected: Vec<i64> = log
        .iter()
        .filter(|event| event.category() == "probe")
        .map(|event| event.position)
        .collect();
    assert_eq!(applied, expected);
    // Each stream in one segment — the one its hash names — and in order there.
    let mut streams: BTreeMap<&str, (i32, i64)> = BTreeMap::new();
    let mut used = [false; 2];
    for (position, stream, segment) in &rows {
        let (seen_in, last) = streams.entry(stream.as_str()).or_insert((*segment, 0));
        assert_eq!(*seen_in, *segment, "{stream} in two segments");
        assert!(*position > *last, "{stream} out of order");
        *last = *position;
        let index = u32::try_from(*segment).unwrap();
        assert!(Segment::new(index, 2).unwrap().contains(stream));
        used[index as usize] = true;
    }
    assert_eq!(used, [true, true], "both segments did some of the work");
    // Both segments stand at the head: the follower as a whole is there.
    assert_eq!(
        checkpoint::position(pool, &FollowerId::new("probe", "split"))
            .await
            .unwrap(),
        last
    );
}

#[tokio::test]
async fn segments_change_only_when_level_and_stopped_and_a_runner_of_another_count_refuses() {
    let db = TestDatabase::new().await;
    let pool = db.pool();
    checkpoint::resegment(pool, "probe", "changing", 3)
        .await
        .unwrap();
    // Apart: one segment moved on.
    let one = FollowerId::segment("probe", "changing", Segment::new(1, 3).unwrap());
    let moved = event_store::follower::Checkpoint {
        position: LogPosition {
            transaction_id: 1,
            position: 9,
        },
        state: None,
    };
    assert!(
        checkpoint::write(pool, &one, LogPosition::START, &moved)
            .await
            .unwrap()
    );
    let apart = checkpoint::resegment(pool, "probe", "changing", 2).await;
    assert!(
        matches!(apart, Err(ResegmentError::Apart { .. })),
        "{apart:?}"
    );
    assert!(
        checkpoint::write(
            pool,
            &one,
            moved.position,
            &event_store::follower::Checkpoint::START
        )
        .await
        .unwrap()
    );
    // Running: a worker holds one of its leases.
    let leases = Leases::new(pool.clone(), "worker-1", Duration::from_secs(30));
    let lease = leases.want(one.lease_name());
    leases.renew().await.unwrap();
    assert!(lease.token().is_some());
    let running = checkpoint::resegment(pool, "probe", "changing", 2).await;
    assert!(
        matches!(&running, Err(ResegmentError::Running { holder, .. }) if holder == "worker-1"),
        "{running:?}"
    );
    lease.release();
    leases.renew().await.unwrap();
    assert_eq!(
        checkpoint::segments(pool, "probe", "changing")
            .await
            .unwrap(),
        3
    );
    // Level and stopped: changed.
    checkpoint::resegment(pool, "probe", "changing", 2)
        .await
        .unwrap();
    assert_eq!(
        checkpoint::segments(pool, "probe", "changing")
            .await
            .unwrap(),
        2
    );

    // A runner that still thinks it is whole refuses to run over two segments.
    let runner = Runner::new(
        db.store(),
        Recorder {
            id: FollowerId::new("probe", "changing"),
        },
        config(),
    );
    let status = runner.status();
    let shutdown = Shutdown::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        runner.run_in_transaction(async move { shutdown.triggered().await })
    });
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while status.snapshot().state != RunnerState::Retrying {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            status.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let error = status.snapshot().last_error.unwrap().error;
    assert!(error.contains("split into 2 segments"), "{error}");
    shutdown.trigger();
    task.await.unwrap();
}
