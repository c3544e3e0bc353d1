//! A card hold never outlives its trip, whatever instant the server dies at.
//!
//! Each test arms one crash switch (`VELKA_CRASH_AT`), drives the server to that instant — in
//! the trip start, in letting a hold go, in the payment saga, in the reconciler — sees it die,
//! restarts it unarmed, and then checks the gateway's ledger against the events: once the grace
//! period has passed on the manual clock, no hold is left open, no idempotence key made two
//! payments, and `velka audit money --gateway-url` finds no difference and nothing waiting.

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use fixtures::gateway::{GatewayConfig, RunningGateway};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::money::open_holds;
use tests::{Answer, App, eventually};

const CENTRE: (f64, f64) = (55.7648, 37.6056);
const DEADLINE: Duration = Duration::from_secs(30);
/// The grace period the servers run with, in seconds of their manual clock.
const GRACE_S: i64 = 60;

/// A gateway simulator and a server paying through it, with `crash_at` armed.
async fn paying(crash_at: &str) -> anyhow::Result<(RunningGateway, App)> {
    let gateway =
        fixtures::gateway::start("127.0.0.1:0".parse()?, GatewayConfig::default()).await?;
    let env = server_env(&gateway.url(), Some(crash_at));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = App::spawn_with(&env).await?;
    Ok((gateway, app))
}

fn server_env(gateway_url: &str, crash_at: Option<&str>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("VELKA_GATEWAY_URL", gateway_url.to_owned()),
        ("VELKA_GATEWAY_TIMEOUT_MS", "300".to_owned()),
        ("VELKA_TRIP_HOLD_KOPECKS", "5000".to_owned()),
        ("VELKA_SAGA_RETRY_MS", "20".to_owned()),
        ("VELKA_HOLD_GRACE_S", GRACE_S.to_string()),
        ("VELKA_HOLD_RECONCILE_MS", "100".to_owned()),
    ];
    if let Some(point) = crash_at {
        env.push(("VELKA_CRASH_AT", point.to_owned()));
    }
    env
}

/// Restarts the dead server unarmed, its fresh manual clock moved on to `clock` (the old
/// one's last reading) so that business time never steps back.
async fn restart_unarmed(
    app: &mut App,
    gateway: &RunningGateway,
    clock: DateTime<Utc>,
) -> anyhow::Result<()> {
    let env = server_env(&gateway.url(), None);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.restart_with(&env).await?;
    let behind = (clock - app.server_now().await?).num_seconds() + 1;
    if behind > 0 {
        app.advance_clock(behind).await?;
    }
    Ok(())
}

/// Waits for the armed server to die at its crash point.
async fn died(app: &mut App) -> anyhow::Result<()> {
    let code = app.exited(DEADLINE).await?;
    ensure!(
        code == Some(event_store::crash::EXIT_STATUS),
        "the server exited with {code:?}, not at its crash point"
    );
    Ok(())
}

/// The simulator's payments for `customer_id`: (id, status).
fn payments_of(gateway: &RunningGateway, customer_id: &str) -> Vec<(String, String)> {
    gateway.ledger()["payments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["customer_ref"] == customer_id)
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                p["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `POST /v1/trips` under the client key `key`; a connection error (the server died) is `None`.
async fn start(
    app: &App,
    token: &str,
    vehicle_id: &str,
    key: &str,
) -> anyhow::Result<Option<Answer>> {
    match app
        .send(
            reqwest::Method::POST,
            "/v1/trips",
            Some(token),
            &[("Idempotency-Key", key)],
            Some(&json!({ "vehicle_id": vehicle_id })),
        )
        .await
    {
        Ok(answer) => Ok(Some(answer)),
        Err(error) if error.downcast_ref::<reqwest::Error>().is_some() => Ok(None),
        Err(error) => Err(error),
    }
}

async fn end(app: &App, token: &str, vehicle_id: &str, trip_id: &str) -> anyhow::Result<()> {
    let locked = app.telemetry(vehicle_id, CENTRE, 12_003.0, true).await?;
    ensure!(locked.status == StatusCode::OK, "{}", locked.body);
    let ended = app
        .post(&format!("/v1/trips/{trip_id}/end"), Some(token), &json!({}))
        .await?;
    ensure!(ended.status == StatusCode::OK, "{}", ended.body);
    Ok(())
}

async fn nothing_left(app: &App, gateway: &RunningGateway, strays: bool) -> anyhow::Result<()> {
    tests::money::nothing_left(app, gateway, GRACE_S, strays).await
}

/// A customer with a car to take.
async fn customer_and_car(app: &App, n: u32) -> anyhow::Result<(String, String, String)> {
    let customer_id = app.verified_customer(n).await?;
    let vehicle_id = app.car(n, CENTRE).await?;
    let token = app.token(Role::Customer, &customer_id);
    Ok((customer_id, vehicle_id, token))
}

/// The server dies at `point` inside a trip's start. With `retry`, the app then retries with
/// the same key (and drives the trip to its end); without, it gives up.
async fn a_start_dies_at(point: &str, retry: bool) -> anyhow::Result<()> {
    let (gateway, mut app) = paying(point).await?;
    let (customer_id, vehicle_id, token) = customer_and_car(&app, 1).await?;
    let clock = app.server_now().await?;
    let lost = start(&app, &token, &vehicle_id, "start-1").await?;
    ensure!(lost.is_none(), "the start answered: {lost:?}");
    died(&mut app).await?;
    restart_unarmed(&mut app, &gateway, clock).await?;
    // What the crash left: before the hold, nothing at the gateway; after it, a hold.
    let held = payments_of(&gateway, &customer_id);
    match point {
        "start.after_intent" => ensure!(held.is_empty(), "{held:?}"),
        _ => ensure!(
            held.iter()
                .map(|(_, s)| s.as_str())
                .eq(["waiting_for_capture"]),
            "{held:?}"
        ),
    }
    let trip_started = tests::sqlx_scalar(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'TripStarted'",
    )
    .await?;
    if retry {
        let again = start(&app, &token, &vehicle_id, "start-1")
            .await?
            .context("the retry got no answer")?;
        ensure!(again.status == StatusCode::CREATED, "{}", again.body);
        // The retry took the hold its first try made: still one payment.
        ensure!(payments_of(&gateway, &customer_id).len() == 1);
        app.advance_clock(5 * 60).await?;
        end(&app, &token, &vehicle_id, &again.str("trip_id")).await?;
        eventually(DEADLINE, || async {
            let statuses = payments_of(&gateway, &customer_id);
            Ok((statuses.iter().all(|(_, s)| s == "succeeded")).then_some(()))
        })
        .await
        .context("the trip's price was not captured from its hold")?;
    } else if trip_started == 1 {
        // The trip started before the server died: it holds the hold until it ends.
        app.advance_clock(GRACE_S + 1).await?;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        ensure!(
            payments_of(&gateway, &customer_id)
                .iter()
                .all(|(_, s)| s == "waiting_for_capture"),
            "a trip's hold was let go"
        );
        let trip_id: String = sqlx::query_scalar(
            "SELECT stream_id FROM events WHERE event_type = 'TripStarted' LIMIT 1",
        )
        .fetch_one(app.db.pool())
        .await?;
        let trip_id = trip_id.trim_start_matches("trip-").to_owned();
        end(&app, &token, &vehicle_id, &trip_id).await?;
    }
    nothing_left(&app, &gateway, false).await?;
    // A start retried after its hold was let go is refused, not given the released hold.
    if !retry && trip_started == 0 {
        let late = start(&app, &token, &vehicle_id, "start-1")
            .await?
            .context("the late retry got no answer")?;
        ensure!(
            late.status == StatusCode::CONFLICT
                && late.body["type"] == "https://velka.dev/problems/hold-released",
            "{}",
            late.body
        );
        ensure!(open_holds(&gateway) == 0);
    }
    Ok(())
}

#[tokio::test]
async fn dying_after_noting_a_hold_before_asking_for_it() -> anyhow::Result<()> {
    a_start_dies_at("start.after_intent", false).await?;
    a_start_dies_at("start.after_intent", true).await
}

#[tokio::test]
async fn dying_after_the_gateway_held_before_the_trip_was_appended() -> anyhow::Result<()> {
    a_start_dies_at("start.after_hold", false).await?;
    a_start_dies_at("start.after_hold", true).await
}

#[tokio::test]
async fn dying_after_the_trip_was_appended_before_the_intent_was_cleared() -> anyhow::Result<()> {
    a_start_dies_at("start.after_append", false).await?;
    a_start_dies_at("start.after_append", true).await
}

/// A start whose hold answer was lost, then refused for good on its retry (another customer
/// took the car): the retry lets the hold go, and the server dies at `point` while it does.
async fn a_release_dies_at(point: &str) -> anyhow::Result<()> {
    let (gateway, mut app) = paying(point).await?;
    let (customer_id, vehicle_id, token) = customer_and_car(&app, 1).await?;
    // The gateway applies the hold but the answer is lost: the start answers 503.
    set_faults(&gateway, json!({ "timeout_rate": 1.0 })).await?;
    let lost = start(&app, &token, &vehicle_id, "start-1")
        .await?
        .context("the start got no answer")?;
    ensure!(
        lost.status == StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        lost.body
    );
    set_faults(&gateway, json!({})).await?;
    // Someone else takes the car; the retry is refused for good and lets the hold go.
    let other = app.verified_customer(2).await?;
    let other_token = app.token(Role::Customer, &other);
    let taken = start(&app, &other_token, &vehicle_id, "other-1")
        .await?
        .context("the other start got no answer")?;
    ensure!(taken.status == StatusCode::CREATED, "{}", taken.body);
    let clock = app.server_now().await?;
    let retried = start(&app, &token, &vehicle_id, "start-1").await?;
    ensure!(retried.is_none(), "the retry answered: {retried:?}");
    died(&mut app).await?;
    restart_unarmed(&mut app, &gateway, clock).await?;
    // The release is picked up at once, not after the grace period.
    eventually(DEADLINE, || async {
        let statuses = payments_of(&gateway, &customer_id);
        Ok((statuses.iter().map(|(_, s)| s.as_str()).eq(["canceled"])).then_some(()))
    })
    .await
    .with_context(|| format!("{:?}", payments_of(&gateway, &customer_id)))?;
    let abandoned = tests::sqlx_scalar(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'HoldAbandoned'",
    )
    .await?;
    ensure!(abandoned == 1, "{abandoned} HoldAbandoned events");
    end(&app, &other_token, &vehicle_id, &taken.str("trip_id")).await?;
    nothing_left(&app, &gateway, false).await
}

#[tokio::test]
async fn dying_after_abandoning_a_hold_before_cancelling_it() -> anyhow::Result<()> {
    a_release_dies_at("release.after_abandon").await
}

#[tokio::test]
async fn dying_after_cancelling_a_hold_before_marking_it_released() -> anyhow::Result<()> {
    a_release_dies_at("release.after_cancel").await
}

#[tokio::test]
async fn dying_after_a_capture_before_it_was_recorded() -> anyhow::Result<()> {
    let (gateway, mut app) = paying("saga.after_gateway").await?;
    let (customer_id, vehicle_id, token) = customer_and_car(&app, 1).await?;
    let started = start(&app, &token, &vehicle_id, "start-1")
        .await?
        .context("the start got no answer")?;
    ensure!(started.status == StatusCode::CREATED, "{}", started.body);
    app.advance_clock(10 * 60).await?;
    let clock = app.server_now().await?;
    end(&app, &token, &vehicle_id, &started.str("trip_id")).await?;
    // The saga captures; the server dies before the capture is recorded.
    died(&mut app).await?;
    ensure!(
        payments_of(&gateway, &customer_id)
            .iter()
            .any(|(_, s)| s == "succeeded"),
        "nothing was captured before the crash"
    );
    restart_unarmed(&mut app, &gateway, clock).await?;
    // The dispatcher that died held the command's lease (a minute), so that no other sends it
    // meanwhile; after that it is sent again with the same key.
    eventually(Duration::from_secs(120), || async {
        let captured = tests::sqlx_scalar(
            &app,
            "SELECT count(*) FROM events WHERE event_type = 'PaymentCaptured'",
        )
        .await?;
        Ok((captured >= 1).then_some(()))
    })
    .await
    .context("the capture was never recorded")?;
    nothing_left(&app, &gateway, false).await?;
    // Captured once: the resent capture asked the gateway instead of capturing again.
    let captures = gateway.ledger()["idempotence_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["key"].as_str().is_some_and(|k| k.ends_with("-hold")))
        .count();
    ensure!(captures == 1, "{captures} capture keys");
    Ok(())
}

#[tokio::test]
async fn dying_while_letting_go_of_a_hold_nothing_in_velka_explains() -> anyhow::Result<()> {
    let (gateway, mut app) = paying("reconcile.after_abandon").await?;
    let (customer_id, _, _) = customer_and_car(&app, 1).await?;
    // A hold made at the gateway for the customer that Velka never asked for.
    let made = reqwest::Client::new()
        .post(format!("{}/v1/payments", gateway.url()))
        .header("Idempotence-Key", "by-hand-1")
        .json(&json!({
            "amount_kopecks": 7_000, "customer_ref": customer_id,
            "description": "made by hand", "capture": false,
        }))
        .send()
        .await?;
    ensure!(made.status().is_success());
    eventually(DEADLINE, || async {
        let seen = tests::sqlx_scalar(&app, "SELECT count(*) FROM gateway_holds_seen").await?;
        Ok((seen == 1).then_some(()))
    })
    .await
    .context("the reconciler never saw the hold")?;
    // Within the grace period the audit reports it as a difference (nothing explains it)...
    let (ok, stdout) = app.audit_money(&gateway.url()).await?;
    ensure!(!ok && stdout.contains("held_kopecks (gateway)"), "{stdout}");
    // ...past it, the reconciler abandons it on the account and dies before the cancel.
    app.advance_clock(GRACE_S + 1).await?;
    let clock = app.server_now().await?;
    died(&mut app).await?;
    ensure!(open_holds(&gateway) == 1);
    restart_unarmed(&mut app, &gateway, clock).await?;
    nothing_left(&app, &gateway, true).await?;
    let abandoned: Value =
        sqlx::query_scalar("SELECT data::jsonb FROM events WHERE event_type = 'HoldAbandoned'")
            .fetch_one(app.db.pool())
            .await?;
    ensure!(abandoned["reason"] == "unknown_to_velka", "{abandoned}");
    Ok(())
}

async fn set_faults(gateway: &RunningGateway, faults: Value) -> anyhow::Result<()> {
    let answer = reqwest::Client::new()
        .post(format!("{}/control/faults", gateway.url()))
        .json(&faults)
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("faults answered {}", answer.status());
    }
    Ok(())
}
