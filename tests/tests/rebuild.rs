//! `velka projections rebuild NAME` against a running server: the read model is rebuilt side by
//! side from the whole log and switched over atomically; queries answer throughout; the rebuilt
//! tables equal the live ones row for row; and the live projector carries on in the new tables.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tests::{App, eventually, velka_binary};

const CENTRE: (f64, f64) = (55.7600, 37.6200);

/// Every row of `table` as JSON text, in primary-key order.
async fn rows(app: &App, table: &str, key: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(&format!(
        "SELECT row_to_json(t)::text FROM {table} t ORDER BY {key}"
    ))
    .fetch_all(app.db.pool())
    .await
    .unwrap()
}

async fn table_oid(app: &App, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT '{table}'::regclass::oid::bigint"))
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

/// Runs `velka projections rebuild NAME` (or `--all`) on the app's database.
async fn rebuild(app: &App, name: &str) -> std::process::Output {
    tokio::process::Command::new(velka_binary().unwrap())
        .args(["projections", "rebuild", name, "--batch-size", "7"])
        .env("DATABASE_URL", app.db.url())
        .env("VELKA_LOG", "warn")
        .output()
        .await
        .unwrap()
}

/// Starts and ends a trip of customer `n` in car `n`, leaving it ended.
async fn trip(app: &App, n: u32) -> (String, String) {
    let customer = app.verified_customer(n).await.unwrap();
    let token = app.token(Role::Customer, &customer);
    let car = app.car(n, CENTRE).await.unwrap();
    let started = app
        .post("/v1/trips", Some(&token), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_id = started.str("trip_id");
    app.advance_clock(7 * 60).await.unwrap();
    let ended = app
        .post(
            &format!("/v1/trips/{trip_id}/end"),
            Some(&token),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    (token, trip_id)
}

/// Waits until the read models show `n` ended trips and their `n` charges.
async fn projected(app: &App, n: i64) {
    eventually(Duration::from_secs(20), || async {
        let trips = tests::sqlx_scalar(
            app,
            "SELECT count(*) FROM trips_view WHERE status = 'ended'",
        )
        .await?;
        let charges = tests::sqlx_scalar(app, "SELECT count(*) FROM account_charges_view").await?;
        Ok((trips == n && charges == n).then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_rebuilt_read_model_equals_the_live_one_and_queries_answer_throughout() {
    let app = Arc::new(App::spawn().await.unwrap());
    let mut trips = Vec::new();
    for n in 1..=4 {
        trips.push(trip(&app, n).await);
    }
    projected(&app, 4).await;
    let before_trips = rows(&app, "trips_view", "trip_id").await;
    let before_charges = rows(&app, "account_charges_view", "charge_id").await;
    assert_eq!(before_trips.len(), 4);
    assert_eq!(before_charges.len(), 4);
    let oid_before = table_oid(&app, "trips_view").await;

    // A reader polls a trip the whole time; every answer must be a 200 with the trip.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn({
        let (app, stop, answered) = (app.clone(), stop.clone(), answered.clone());
        let (token, trip_id) = trips[0].clone();
        async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = app
                    .get(&format!("/v1/trips/{trip_id}"), Some(&token))
                    .await
                    .unwrap();
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
                assert_eq!(answer.body["status"], "ended", "{}", answer.body);
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let output = rebuild(&app, "trips_view").await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("rebuilt trips_view"), "{stdout}");
    assert!(stdout.contains("trips_view=4"), "{stdout}");
    let output = rebuild(&app, "accounts_view").await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    assert!(answered.load(Ordering::Relaxed) > 0);

    // New tables, the same rows.
    assert_ne!(table_oid(&app, "trips_view").await, oid_before);
    assert_eq!(rows(&app, "trips_view", "trip_id").await, before_trips);
    assert_eq!(
        rows(&app, "account_charges_view", "charge_id").await,
        before_charges
    );
    // Nothing is left behind.
    let leftovers = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild\\_%' OR nspname LIKE 'retired\\_%'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(leftovers, 0);

    // The live projector carries on in the new table.
    let (token, trip_id) = trip(&app, 5).await;
    let answer = eventually(Duration::from_secs(20), || async {
        let answer = app
            .get(&format!("/v1/trips/{trip_id}"), Some(&token))
            .await?;
        Ok((answer.status == StatusCode::OK && answer.body["status"] == "ended").then_some(answer))
    })
    .await
    .unwrap();
    assert!(answer.body["price"]["total_kopecks"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn rebuilding_every_read_model_at_once_switches_each_and_keeps_its_rows() {
    let app = App::spawn().await.unwrap();
    for n in 1..=3 {
        trip(&app, n).await;
    }
    projected(&app, 3).await;
    let before_trips = rows(&app, "trips_view", "trip_id").await;
    let before_charges = rows(&app, "account_charges_view", "charge_id").await;
    let oid_before = table_oid(&app, "vehicles_view").await;

    let output = rebuild(&app, "--all").await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("velka: rebuilt "))
            .count(),
        9,
        "{stdout}"
    );
    assert!(stdout.contains("trips_view=3"), "{stdout}");
    // Off a terminal the progress is plain lines on stderr, the last one where it ended.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rfind(|l| l.starts_with("velka: rebuilding every read model: "))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    assert!(last.contains(" events applied, "), "{last}");
    assert_ne!(table_oid(&app, "vehicles_view").await, oid_before);
    assert_eq!(rows(&app, "trips_view", "trip_id").await, before_trips);
    assert_eq!(
        rows(&app, "account_charges_view", "charge_id").await,
        before_charges
    );

    // The live projectors carry on in the new tables.
    trip(&app, 4).await;
    projected(&app, 4).await;
}

#[tokio::test]
async fn rebuilding_an_unknown_read_model_names_the_ones_there_are() {
    let app = App::spawn().await.unwrap();
    let output = rebuild(&app, "no_such_view").await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no_such_view"), "{stderr}");
    assert!(stderr.contains("trips_view"), "{stderr}");
}
