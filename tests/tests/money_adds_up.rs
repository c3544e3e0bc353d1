//! Money adds up: hundreds of trips through a gateway that declines, fails and hangs at random,
//! with the server killed and restarted in the middle, support refunding and waiving — and at the
//! end, for every customer, what was charged minus what was refunded is exactly what the card
//! paid and kept, plus what is still owed, plus what was written off; the gateway's own ledger
//! (the witness) agrees on what was paid; no hold is left open; no idempotence key created two
//! payments.

#![allow(clippy::unwrap_used)]

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tests::{App, eventually};

const CENTRE: (f64, f64) = (55.7648, 37.6056);
const CUSTOMERS: u32 = 20;
const ROUNDS: u32 = 16;

async fn server_now(app: &App) -> anyhow::Result<DateTime<Utc>> {
    let service = app.token(Role::Service, "test-clock");
    let answer = app.get("/v1/admin/clock", Some(&service)).await?;
    answer.body["now"]
        .as_str()
        .context("no now")?
        .parse()
        .context("not a time")
}

async fn set_faults(gateway: &str, faults: Value) -> anyhow::Result<()> {
    let answer = reqwest::Client::new()
        .post(format!("{gateway}/control/faults"))
        .json(&faults)
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("faults answered {}", answer.status());
    }
    Ok(())
}

/// The payment saga's entry in `GET /v1/admin/sagas`.
fn payments_of(sagas: &Value) -> &Value {
    sagas
        .as_array()
        .and_then(|all| all.iter().find(|s| s["saga"] == "payments"))
        .unwrap_or(&Value::Null)
}

/// Waits until the saga has nothing left to send and its checkpoint is at the head.
async fn settled(app: &App) -> anyhow::Result<()> {
    let support = app.token(Role::Support, "agent-1");
    let quiet_in_a_row = std::sync::atomic::AtomicU32::new(0);
    let quiet = &quiet_in_a_row;
    eventually(Duration::from_secs(120), || {
        let support = support.clone();
        async move {
            use std::sync::atomic::Ordering;
            let sagas = app.get("/v1/admin/sagas", Some(&support)).await?;
            let head =
                tests::sqlx_scalar(app, "SELECT coalesce(max(position), 0) FROM events").await?;
            let saga = payments_of(&sagas.body);
            let idle = saga["commands_pending"] == 0
                && saga["checkpoint_position"].as_i64() == Some(head)
                && saga["overdue_timers"] == 0;
            // The last commands' facts are new events: idle twice in a row means done.
            let in_a_row = if idle {
                quiet.fetch_add(1, Ordering::SeqCst) + 1
            } else {
                quiet.store(0, Ordering::SeqCst);
                0
            };
            Ok((in_a_row >= 3).then_some(()))
        }
    })
    .await
    .context("the payment saga did not settle")
}

#[tokio::test]
async fn money_adds_up_through_failures_and_a_crash() -> anyhow::Result<()> {
    let gateway = fixtures::gateway::start(
        "127.0.0.1:0".parse()?,
        fixtures::gateway::GatewayConfig {
            seed: Some(7),
            ..Default::default()
        },
    )
    .await?;
    let url = gateway.url();
    let mut app = App::spawn_with(&[
        ("VELKA_GATEWAY_URL", &url),
        ("VELKA_GATEWAY_TIMEOUT_MS", "200"),
        ("VELKA_TRIP_HOLD_KOPECKS", "5000"),
        ("VELKA_SAGA_RETRY_MS", "20"),
    ])
    .await?;
    let mut people = Vec::new();
    for n in 1..=CUSTOMERS {
        let customer_id = app.verified_customer(n).await?;
        let vehicle_id = app.car(n, CENTRE).await?;
        people.push((customer_id, vehicle_id));
    }
    set_faults(
        &url,
        json!({ "decline_rate": 0.1, "error_5xx_rate": 0.1, "timeout_rate": 0.05, "seed": 11 }),
    )
    .await?;
    let support = app.token(Role::Support, "agent-1");
    let (mut trips, mut declined, mut blocked) = (0, 0, 0);
    let mut odometer = 12_000.0;
    for round in 0..ROUNDS {
        if round == ROUNDS / 2 {
            // A crash in the middle: the saga's work in flight must survive it.
            let before = server_now(&app).await?;
            app.restart().await?;
            let after = server_now(&app).await?;
            let behind = (before - after).num_seconds() + 1;
            if behind > 0 {
                app.advance_clock(behind).await?;
            }
        }
        // Every customer starts at once, as the app would.
        let answers =
            futures::future::try_join_all(people.iter().map(|(customer_id, vehicle_id)| {
                let app = &app;
                async move {
                    let token = app.token(Role::Customer, customer_id);
                    let key = format!("start-{round}-{customer_id}");
                    // An unavailable gateway is retried with the same key, as a client would.
                    for _ in 0..10 {
                        let attempt = app
                            .send(
                                reqwest::Method::POST,
                                "/v1/trips",
                                Some(&token),
                                &[("Idempotency-Key", &key)],
                                Some(&json!({ "vehicle_id": vehicle_id })),
                            )
                            .await?;
                        if attempt.status != StatusCode::SERVICE_UNAVAILABLE {
                            return Ok::<_, anyhow::Error>((vehicle_id.clone(), token, attempt));
                        }
                    }
                    bail!("the gateway stayed unavailable for a start")
                }
            }))
            .await?;
        let mut started = Vec::new();
        for (vehicle_id, token, answer) in answers {
            match answer.status {
                StatusCode::CREATED => started.push((vehicle_id, token, answer.str("trip_id"))),
                StatusCode::PAYMENT_REQUIRED => declined += 1,
                StatusCode::CONFLICT
                    if answer.body["type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("customer-blocked")) =>
                {
                    blocked += 1;
                }
                other => bail!("a start answered {other}: {}", answer.body),
            }
        }
        // From free to a few hundred roubles.
        app.advance_clock(i64::from(round % 4) * 7 * 60).await?;
        odometer += 1.0;
        futures::future::try_join_all(started.iter().map(|(vehicle_id, token, trip_id)| {
            let app = &app;
            async move {
                let locked = app.telemetry(vehicle_id, CENTRE, odometer, true).await?;
                assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
                let ended = app
                    .post(&format!("/v1/trips/{trip_id}/end"), Some(token), &json!({}))
                    .await?;
                assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
                Ok::<_, anyhow::Error>(())
            }
        }))
        .await?;
        trips += started.len();
        // Support refunds a third of every fifth customer's latest paid charge.
        if round % 3 == 2 {
            for (customer_id, _) in people.iter().step_by(5) {
                let account = app
                    .get(&format!("/v1/accounts/{customer_id}"), Some(&support))
                    .await?;
                let Some(charge) = account.body["charges"].as_array().and_then(|c| {
                    c.iter()
                        .rev()
                        .find(|c| c["paid_kopecks"].as_i64() > Some(0))
                }) else {
                    continue;
                };
                let amount = charge["paid_kopecks"].as_i64().unwrap_or(0) / 3;
                let refundable = charge["amount_kopecks"].as_i64().unwrap_or(0)
                    - charge["refunded_kopecks"].as_i64().unwrap_or(0)
                    - charge["waived_kopecks"].as_i64().unwrap_or(0);
                if amount > 0 && amount <= refundable {
                    let refunded = app
                        .post(
                            &format!(
                                "/v1/accounts/{customer_id}/charges/{}/refunds",
                                charge["charge_id"].as_str().unwrap_or_default()
                            ),
                            Some(&support),
                            &json!({ "amount_kopecks": amount, "reason": "Goodwill" }),
                        )
                        .await?;
                    assert_eq!(refunded.status, StatusCode::CREATED, "{}", refunded.body);
                }
            }
        }
    }
    assert!(
        trips >= 150,
        "{trips} trips ({declined} declined, {blocked} blocked)"
    );

    // Debts are retried on their schedule with a card that works half the time; support
    // waives one of what is left.
    set_faults(&url, json!({ "decline_rate": 0.5, "seed": 3 })).await?;
    settled(&app).await?;
    for _ in 0..4 {
        app.advance_clock(2 * 86_400).await?;
        settled(&app).await?;
    }
    let mut waived_one = false;
    for (customer_id, _) in &people {
        let account = app
            .get(&format!("/v1/accounts/{customer_id}"), Some(&support))
            .await?;
        if let Some(charge) = account.body["charges"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["open_kopecks"].as_i64() > Some(0)))
            && !waived_one
        {
            let answer = app
                .post(
                    &format!(
                        "/v1/accounts/{customer_id}/charges/{}/waive",
                        charge["charge_id"].as_str().unwrap_or_default()
                    ),
                    Some(&support),
                    &json!({ "reason": "Written off" }),
                )
                .await?;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            waived_one = true;
        }
    }
    settled(&app).await?;

    // The witness.
    let ledger = gateway.ledger();
    let payments = ledger["payments"].as_array().cloned().unwrap_or_default();
    let open_holds: Vec<&Value> = payments
        .iter()
        .filter(|p| p["status"] == "waiting_for_capture")
        .collect();
    assert!(open_holds.is_empty(), "holds left open: {open_holds:?}");
    for key in ledger["idempotence_keys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        assert!(
            key["creations"].as_i64() <= Some(1),
            "key {} created {} times",
            key["key"],
            key["creations"]
        );
    }
    let mut kept_by_customer: BTreeMap<String, i64> = BTreeMap::new();
    for payment in &payments {
        *kept_by_customer
            .entry(
                payment["customer_ref"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += payment["captured_kopecks"].as_i64().unwrap_or(0)
            - payment["refunded_kopecks"].as_i64().unwrap_or(0);
    }

    let (mut debts, mut paid_total) = (0, 0);
    for (customer_id, _) in &people {
        // The read model has caught up once its version matches the account stream's.
        let version = tests::sqlx_scalar(
            &app,
            &format!(
                "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = 'account-{customer_id}'"
            ),
        )
        .await?;
        let account = eventually(Duration::from_secs(20), || async {
            let answer = app
                .get(&format!("/v1/accounts/{customer_id}"), Some(&support))
                .await?;
            Ok((answer.body["version"].as_i64() >= Some(version)).then_some(answer.body))
        })
        .await?;
        let totals = &account["totals"];
        let get = |field: &str| totals[field].as_i64().unwrap_or(0);
        let (charged, refunded, waived, paid, open) = (
            get("charged_kopecks"),
            get("refunded_kopecks"),
            get("waived_kopecks"),
            get("paid_kopecks"),
            get("open_kopecks"),
        );
        assert_eq!(
            charged - refunded,
            paid + open + waived,
            "customer {customer_id}: {totals}"
        );
        assert!(
            open >= 0,
            "customer {customer_id} is owed money back: {totals}"
        );
        assert_eq!(
            paid,
            kept_by_customer.get(customer_id).copied().unwrap_or(0),
            "customer {customer_id}: the gateway kept a different amount: {totals}"
        );
        if open > 0 {
            debts += 1;
        }
        paid_total += paid;
    }
    assert!(paid_total > 0);
    // The saga gave up on nothing.
    let sagas = app.get("/v1/admin/sagas", Some(&support)).await?;
    assert_eq!(
        payments_of(&sagas.body)["failed_commands"],
        json!([]),
        "{}",
        sagas.body
    );
    eprintln!(
        "money adds up: {trips} trips, {declined} starts declined, {blocked} refused while in debt, \
         {debts} customers still in debt, {paid_total} kopecks kept"
    );
    Ok(())
}
