//! More than one process on one database, from the outside: API nodes that run no workers,
//! workers that share the followers by lease (a read model split into segments among them) — a
//! SIGKILLed worker's work taken over within 5 s, a paused owner's late write refused by the new
//! owner's fence — and no error in any log.

#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tests::{App, Peer, eventually};

const CENTRE: (f64, f64) = (55.7600, 37.6200);
const DEADLINE: Duration = Duration::from_secs(30);

/// How many leases `holder` holds now (its membership aside).
async fn held_by(pool: &PgPool, holder: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM leases
         WHERE holder = $1 AND expires_at > now() AND name NOT LIKE 'member:%'",
    )
    .bind(holder)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// `velka segments FOLLOWER --count N` on the app's database: (success, stdout and stderr).
async fn segments(app: &App, follower: &str, count: u32) -> (bool, String) {
    velka(app, &["segments", follower, "--count", &count.to_string()]).await
}

/// A digest of a read model's rows, to compare it with itself rebuilt.
async fn digest(pool: &PgPool, table: &str) -> String {
    sqlx::query_scalar(&format!(
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// `velka ARGS…` on the app's database: (success, stdout and stderr).
async fn velka(app: &App, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(tests::velka_binary().unwrap())
        .args(args)
        .env("DATABASE_URL", app.db.url())
        .env("VELKA_LOG", "warn")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

async fn holder_of(pool: &PgPool, lease: &str) -> Option<String> {
    sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1 AND expires_at > now()")
        .bind(lease)
        .fetch_optional(pool)
        .await
        .unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Waits until every event is sealed once, every projector's checkpoint is at the head and the
/// cars' read model holds `cars` cars.
async fn all_applied(pool: &PgPool, cars: i64) {
    eventually(DEADLINE, || async {
        let events = count(pool, "SELECT count(*) FROM events").await;
        let sealed = count(pool, "SELECT count(*) FROM event_chain").await;
        let behind = count(
            pool,
            "SELECT count(*) FROM follower_checkpoints WHERE kind = 'projector'
               AND position < (SELECT max(position) FROM events)",
        )
        .await;
        let projected = count(pool, "SELECT count(*) FROM vehicles_view").await;
        Ok((sealed == events && behind == 0 && projected == cars).then_some(()))
    })
    .await
    .unwrap();
}

/// The sum of a counter over its labels in a `/metrics` text.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn no_errors(peer: &Peer, who: &str) {
    let errors = peer.errors();
    assert!(errors.is_empty(), "{who} logged errors: {errors:#?}");
}

#[tokio::test]
async fn workers_share_the_followers_and_a_killed_ones_work_is_taken_over_within_5_s() {
    let app = App::spawn_with(&[("VELKA_ROLE", "api")]).await.unwrap();
    let pool = app.db.pool().clone();
    let second_api = app.spawn_peer(&[]).await.unwrap();
    // The cars' read model in two segments, before any worker runs it.
    let (split, said) = segments(&app, "projector:vehicles_view", 2).await;
    assert!(split, "{said}");
    assert!(said.contains("2 segment(s)"), "{said}");
    let (refused, said) = segments(&app, "projector:demand", 2).await;
    assert!(!refused && said.contains("cannot be split"), "{said}");

    let mut first = app
        .spawn_peer(&[("VELKA_ROLE", "worker"), ("VELKA_WORKER_ID", "first")])
        .await
        .unwrap();
    eventually(DEADLINE, || async {
        Ok((held_by(&pool, "first").await > 0).then_some(()))
    })
    .await
    .unwrap();
    let second = app
        .spawn_peer(&[("VELKA_ROLE", "worker"), ("VELKA_WORKER_ID", "second")])
        .await
        .unwrap();
    // They share the leases: about half each, never both.
    let total = eventually(DEADLINE, || async {
        let (a, b) = (
            held_by(&pool, "first").await,
            held_by(&pool, "second").await,
        );
        let total = count(
            &pool,
            "SELECT count(*) FROM leases WHERE expires_at > now() AND name NOT LIKE 'member:%'",
        )
        .await;
        Ok((a > 0 && b > 0 && (a - b).abs() <= 1 && a + b == total).then_some(total))
    })
    .await
    .unwrap();
    assert!(
        total >= 15,
        "every follower and worker has a lease: {total}"
    );
    for segment in ["#0/2", "#1/2"] {
        let lease = format!("follower:projector:vehicles_view{segment}");
        assert!(holder_of(&pool, &lease).await.is_some(), "{lease} is run");
    }
    // Splitting again while the workers run is refused, and changes nothing.
    let (resplit, said) = segments(&app, "projector:vehicles_view", 1).await;
    assert!(!resplit && said.contains("is running"), "{said}");

    // An API node runs no worker; a worker serves no API.
    assert_eq!(held_by(&pool, &app.nats_prefix).await, 0);
    let (status, _) = second.get_text("/v1/vehicles/available").await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = second.get_text("/healthz").await.unwrap();
    assert_eq!(status, StatusCode::OK);

    // Traffic through both API nodes, applied once by the two workers together; one API node
    // is killed and another takes its place.
    for n in 0..10 {
        app.car(n, CENTRE).await.unwrap();
    }
    app.car_via(&second_api.base, 10, CENTRE).await.unwrap();
    let mut second_api = second_api;
    second_api.kill().await.unwrap();
    let third_api = app.spawn_peer(&[]).await.unwrap();
    app.car_via(&third_api.base, 11, CENTRE).await.unwrap();
    all_applied(&pool, 12).await;

    // A worker dies: the other has everything within 5 s.
    let killed = Instant::now();
    first.kill().await.unwrap();
    let took = eventually(DEADLINE, || async {
        Ok((held_by(&pool, "second").await == total).then(|| killed.elapsed()))
    })
    .await
    .unwrap();
    eprintln!("takeover after SIGKILL of a worker: {took:?} for its share of {total} leases");
    assert!(took < Duration::from_secs(5), "took over in {took:?}");
    for n in 12..20 {
        app.car(n, CENTRE).await.unwrap();
    }
    all_applied(&pool, 20).await;

    // The split read model equals itself rebuilt from the log, and goes on from there once.
    let before = digest(&pool, "vehicles_view").await;
    let (rebuilt, said) = velka(&app, &["projections", "rebuild", "vehicles_view"]).await;
    assert!(rebuilt, "{said}");
    assert_eq!(digest(&pool, "vehicles_view").await, before);
    let positions = count(
        &pool,
        "SELECT count(DISTINCT position) FROM follower_checkpoints
         WHERE kind = 'projector' AND name = 'vehicles_view'",
    )
    .await;
    assert_eq!(
        positions, 1,
        "both segments moved to the rebuilt copy's position"
    );
    app.car(20, CENTRE).await.unwrap();
    all_applied(&pool, 21).await;
    // And the chain of every event is intact.
    let (intact, said) = velka(&app, &["audit", "verify"]).await;
    assert!(intact && said.contains("intact"), "{said}");
    // A worker stopped cleanly (SIGTERM) gives its leases back at once: the other has them in
    // less than a lease's life.
    let fourth = app
        .spawn_peer(&[("VELKA_ROLE", "worker"), ("VELKA_WORKER_ID", "fourth")])
        .await
        .unwrap();
    eventually(DEADLINE, || async {
        Ok(
            (held_by(&pool, "fourth").await > 0 && held_by(&pool, "second").await > 0)
                .then_some(()),
        )
    })
    .await
    .unwrap();
    let stopped = Instant::now();
    second.signal("TERM").unwrap();
    let handed = eventually(DEADLINE, || async {
        Ok((held_by(&pool, "fourth").await == total).then(|| stopped.elapsed()))
    })
    .await
    .unwrap();
    eprintln!("handover after SIGTERM of a worker: {handed:?}");
    assert!(handed < Duration::from_secs(3), "handed over in {handed:?}");
    app.car(21, CENTRE).await.unwrap();
    all_applied(&pool, 22).await;
    no_errors(&first, "the killed worker");
    no_errors(&second, "the worker that took over, then stopped");
    no_errors(&fourth, "the worker that joined last");
    no_errors(&second_api, "the killed API node");
    no_errors(&third_api, "the API node that replaced it");
}

#[tokio::test]
async fn a_paused_owners_late_write_is_refused_by_the_new_owners_fence() {
    let app = App::spawn_with(&[("VELKA_ROLE", "api"), ("VELKA_LEASE_TTL_MS", "1000")])
        .await
        .unwrap();
    let pool = app.db.pool().clone();
    // The first worker stops itself (SIGSTOP) before its first batch's transaction.
    let paused = app
        .spawn_peer(&[
            ("VELKA_ROLE", "worker"),
            ("VELKA_WORKER_ID", "paused"),
            ("VELKA_CRASH_AT", "pause:follower-batch"),
        ])
        .await
        .unwrap();
    eventually(DEADLINE, || async {
        Ok(
            (holder_of(&pool, "follower:sealer:chain#0/1").await == Some("paused".into()))
                .then_some(()),
        )
    })
    .await
    .unwrap();
    app.car(1, CENTRE).await.unwrap();
    eventually(DEADLINE, || async { Ok(paused.is_stopped().then_some(())) })
        .await
        .unwrap();
    // Past its leases, another worker takes over and does the work.
    let other = app
        .spawn_peer(&[("VELKA_ROLE", "worker"), ("VELKA_WORKER_ID", "other")])
        .await
        .unwrap();
    all_applied(&pool, 1).await;
    assert_eq!(held_by(&pool, "paused").await, 0);

    // Continued, the paused worker goes on with the batch it held: the fence refuses it.
    paused.signal("CONT").unwrap();
    let metrics = eventually(DEADLINE, || async {
        let (_, text) = paused.get_text("/metrics").await?;
        Ok((metric_sum(&text, "velka_follower_fenced_writes_total") >= 1.0).then_some(text))
    })
    .await
    .unwrap();
    assert!(metrics.contains("velka_follower_owned"), "{metrics}");
    assert!(
        paused
            .log()
            .iter()
            .any(|line| line.contains("late write refused")),
        "{:#?}",
        paused.log()
    );
    // Nothing it held landed twice: each event sealed once, the car projected once; then the
    // two share the work and go on.
    all_applied(&pool, 1).await;
    eventually(DEADLINE, || async {
        Ok((held_by(&pool, "paused").await > 0 && held_by(&pool, "other").await > 0).then_some(()))
    })
    .await
    .unwrap();
    for n in 2..6 {
        app.car(n, CENTRE).await.unwrap();
    }
    all_applied(&pool, 5).await;
    no_errors(&paused, "the paused worker");
    no_errors(&other, "the worker that took over");
}
