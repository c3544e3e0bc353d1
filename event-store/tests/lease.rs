//! Leases and the fence, against a real PostgreSQL: a lease held is renewed and not taken; a
//! lapsed one is taken with a newer token; a former owner's checkpoint write is refused once a
//! newer owner has claimed the checkpoint; and two "processes" (stores with leases of their own)
//! running the same follower apply each event once, the standby taking over when the owner
//! stops renewing.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::follower::{
    Checkpoint, FollowerId, FollowerStatus, Runner, RunnerConfig, RunnerState, Shutdown, checkpoint,
};
use event_store::lease::Leases;
use event_store::testing::TestDatabase;
use event_store::{EventStore, ExpectedVersion, LogPosition};
use std::time::Duration;
use support::*;

const DEADLINE: Duration = Duration::from_secs(20);
const TTL: Duration = Duration::from_millis(900);

#[tokio::test]
async fn a_held_lease_is_renewed_and_a_lapsed_one_taken_with_a_newer_token() {
    let db = TestDatabase::new().await;
    let a = Leases::new(db.pool().clone(), "a", TTL);
    let b = Leases::new(db.pool().clone(), "b", TTL);
    let lease_a = a.want("worker:x");
    let lease_b = b.want("worker:x");
    a.renew().await.unwrap();
    let first = lease_a.token().expect("a takes the free lease");
    // Renewed within its life, it stays a's with the same token; b does not get it.
    for _ in 0..3 {
        tokio::time::sleep(TTL / 3).await;
        a.renew().await.unwrap();
        b.renew().await.unwrap();
        assert_eq!(lease_a.token(), Some(first));
        assert_eq!(lease_b.token(), None);
    }
    // a stops renewing: once the lease has lapsed, b takes it, with a newer token.
    tokio::time::sleep(TTL + TTL / 5).await;
    b.renew().await.unwrap();
    let second = lease_b.token().expect("b takes the lapsed lease");
    assert!(second > first, "{second} > {first}");
    assert_eq!(
        lease_a.token(),
        None,
        "a's own clock tells it the lease ran out"
    );
    a.renew().await.unwrap();
    assert_eq!(
        lease_a.token(),
        None,
        "and the database does not give it back"
    );
    // Released, it is taken at once.
    lease_b.release();
    b.renew().await.unwrap();
    a.renew().await.unwrap();
    assert!(lease_a.token().unwrap() > second);
}

#[tokio::test]
async fn a_former_owners_write_is_refused_once_a_newer_owner_claimed_the_checkpoint() {
    let db = TestDatabase::new().await;
    let pool = db.pool();
    let id = FollowerId::new("probe", "fenced");
    let at = |position| Checkpoint {
        position: LogPosition {
            transaction_id: 1,
            position,
        },
        state: None,
    };
    let old = checkpoint::claim(pool, &id, 10).await.unwrap().unwrap();
    assert_eq!(old, Checkpoint::START);
    assert!(
        checkpoint::write_fenced(pool, &id, LogPosition::START, &at(1), Some(10))
            .await
            .unwrap()
    );
    // A newer owner claims it where it is.
    let claimed = checkpoint::claim(pool, &id, 11).await.unwrap().unwrap();
    assert_eq!(claimed, at(1));
    // The former owner's next write, from the right position, is refused by the fence…
    assert!(
        !checkpoint::write_fenced(pool, &id, at(1).position, &at(2), Some(10))
            .await
            .unwrap()
    );
    assert_eq!(checkpoint::fence(pool, &id).await.unwrap(), Some(11));
    // …and so is its claim.
    assert_eq!(checkpoint::claim(pool, &id, 10).await.unwrap(), None);
    assert_eq!(
        checkpoint::read(pool, &id)
            .await
            .unwrap()
            .unwrap()
            .checkpoint,
        at(1)
    );
    assert!(
        checkpoint::write_fenced(pool, &id, at(1).position, &at(2), Some(11))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_claim_waits_for_the_former_owners_batch_still_open_on_the_checkpoint() {
    let db = TestDatabase::new().await;
    let pool = db.pool();
    let id = FollowerId::new("probe", "waits");
    checkpoint::claim(pool, &id, 1).await.unwrap().unwrap();
    let moved = Checkpoint {
        position: LogPosition {
            transaction_id: 1,
            position: 5,
        },
        state: None,
    };
    // The former owner's batch: its checkpoint moved, not committed yet.
    let mut batch = pool.begin().await.unwrap();
    assert!(
        checkpoint::write_fenced(&mut *batch, &id, LogPosition::START, &moved, Some(1))
            .await
            .unwrap()
    );
    let claim = tokio::spawn({
        let pool = pool.clone();
        let id = id.clone();
        async move { checkpoint::claim(&pool, &id, 2).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!claim.is_finished(), "the claim waits for the open batch");
    batch.commit().await.unwrap();
    // The new owner starts from where the former owner's committed batch left it.
    assert_eq!(claim.await.unwrap().unwrap(), Some(moved));
}

async fn wait_for_state(status: &FollowerStatus, state: RunnerState) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while status.snapshot().state != state {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?} never became {state:?}",
            status.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn append(store: &EventStore, count: u64) {
    for n in 0..count {
        store
            .append(&request(vec![write(
                "probe-1",
                ExpectedVersion::Any,
                vec![event("Happened", n)],
            )]))
            .await
            .unwrap();
    }
}

async fn applied(db: &TestDatabase) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM probe_applied ORDER BY position")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

async fn wait_for_applied(db: &TestDatabase, count: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while applied(db).await.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {:?}",
            applied(db).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_a_follower_by_lease_and_the_standby_takes_over() {
    let db = TestDatabase::new().await;
    sqlx::query("CREATE TABLE probe_applied (position bigint PRIMARY KEY)")
        .execute(db.pool())
        .await
        .unwrap();
    let config = RunnerConfig {
        idle_poll: Duration::from_millis(10),
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(50),
        checkpoint_delay: Duration::from_millis(10),
        ..RunnerConfig::default()
    };
    let shutdown = Shutdown::new();
    // Two "processes": each its own store and leases over the same database.
    let mut processes = Vec::new();
    for holder in ["first", "second"] {
        let leases = Leases::new(db.pool().clone(), holder, TTL);
        let store = db.store().with_leases(leases.clone());
        let renewing = tokio::spawn({
            let shutdown = shutdown.clone();
            leases
                .clone()
                .run(async move { shutdown.triggered().await })
        });
        let runner = Runner::new(
            store.clone(),
            Counter {
                id: FollowerId::new("probe", "shared"),
            },
            config.clone(),
        );
        let status = runner.status();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            runner.run_in_transaction(async move { shutdown.triggered().await })
        });
        processes.push((store, status, renewing, task));
        // The first takes the lease before the second wants it.
        if holder == "first" {
            wait_for_state(&processes[0].1, RunnerState::Running).await;
        }
    }
    wait_for_state(&processes[1].1, RunnerState::Standby).await;
    append(&processes[0].0, 30).await;
    wait_for_applied(&db, 30).await;
    assert_eq!(
        processes[1].1.snapshot().events_applied,
        0,
        "the standby waits"
    );

    // The owner stops renewing, as if its process died: the standby takes over within about
    // the lease's life, and the former owner stands by.
    let started = std::time::Instant::now();
    processes[0].2.abort();
    wait_for_state(&processes[1].1, RunnerState::Running).await;
    let took = started.elapsed();
    assert!(took < TTL * 3, "took over in {took:?}");
    append(&processes[1].0, 30).await;
    wait_for_applied(&db, 60).await;
    wait_for_state(&processes[0].1, RunnerState::Standby).await;
    assert_eq!(processes[0].1.snapshot().events_applied, 30);
    assert_eq!(processes[1].1.snapshot().events_applied, 30);
    // Each event once (the key would have refused a second), none missing.
    let log = processes[0]
        .0
        .read_log(LogPosition::START, 1_000)
        .await
        .unwrap();
    let expected: Vec<i64> = log.iter().map(|event| event.position).collect();
    assert_eq!(applied(&db).await, expected);

    shutdown.trigger();
    for (_, _, renewing, task) in processes {
        task.await.unwrap();
        let _ = renewing.await;
    }
}

#[tokio::test]
async fn processes_wanting_the_same_leases_share_them_and_a_survivor_takes_all() {
    let db = TestDatabase::new().await;
    let names: Vec<String> = (0..7).map(|n| format!("worker:w{n}")).collect();
    let held = |leases: &[event_store::lease::Lease]| {
        leases
            .iter()
            .filter(|lease| lease.token().is_some())
            .count()
    };
    let a = Leases::new(db.pool().clone(), "a", TTL);
    let a_leases: Vec<_> = names.iter().map(|name| a.want(name.clone())).collect();
    a.renew().await.unwrap();
    assert_eq!(held(&a_leases), 7, "alone, it takes them all");
    // A second member: the first gives back what is beyond its share (4 of 7), the second
    // takes it.
    let b = Leases::new(db.pool().clone(), "b", TTL);
    let b_leases: Vec<_> = names.iter().map(|name| b.want(name.clone())).collect();
    b.renew().await.unwrap();
    a.renew().await.unwrap();
    b.renew().await.unwrap();
    assert_eq!((held(&a_leases), held(&b_leases)), (4, 3));
    // Stable from then on.
    for _ in 0..3 {
        a.renew().await.unwrap();
        b.renew().await.unwrap();
    }
    assert_eq!((held(&a_leases), held(&b_leases)), (4, 3));
    let overlap = a_leases
        .iter()
        .zip(&b_leases)
        .filter(|(x, y)| x.token().is_some() && y.token().is_some())
        .count();
    assert_eq!(overlap, 0, "never both");
    // The first stops renewing (its process died): once its leases and its membership lapse,
    // the second takes everything.
    tokio::time::sleep(TTL + TTL / 5).await;
    b.renew().await.unwrap();
    assert_eq!(held(&b_leases), 7);
}
