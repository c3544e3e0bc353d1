//! The payment saga against the gateway simulator, through the real binary: a hold at a trip's
//! start (a declined card refuses the start), the price captured from the hold and the rest
//! charged, a free trip's hold released, and a refused payment collected as a debt — blocked,
//! noticed, retried on the schedule, closed by a payment or by support's waiver.

#![allow(clippy::unwrap_used)]

use anyhow::{Context, bail};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{Answer, App, eventually};

/// Tverskaya street, inside the operating area.
const CENTRE: (f64, f64) = (55.7648, 37.6056);
/// How long the saga may take to settle what a command started.
const DEADLINE: Duration = Duration::from_secs(20);

/// A gateway simulator and a server that pays through it.
struct Paying {
    app: App,
    gateway: fixtures::gateway::RunningGateway,
    http: reqwest::Client,
}

impl Paying {
    async fn start(hold_kopecks: i64) -> anyhow::Result<Self> {
        let gateway = fixtures::gateway::start(
            "127.0.0.1:0".parse()?,
            fixtures::gateway::GatewayConfig::default(),
        )
        .await?;
        let url = gateway.url();
        let hold = hold_kopecks.to_string();
        let app = App::spawn_with(&[
            ("VELKA_GATEWAY_URL", &url),
            ("VELKA_GATEWAY_TIMEOUT_MS", "300"),
            ("VELKA_TRIP_HOLD_KOPECKS", &hold),
            ("VELKA_SAGA_RETRY_MS", "50"),
        ])
        .await?;
        Ok(Self {
            app,
            gateway,
            http: reqwest::Client::new(),
        })
    }

    async fn faults(&self, faults: Value) -> anyhow::Result<()> {
        let answer = self
            .http
            .post(format!("{}/control/faults", self.gateway.url()))
            .json(&faults)
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("setting faults answered {}", answer.status());
        }
        Ok(())
    }

    /// The simulator's payments for `customer_id`.
    fn payments_of(&self, customer_id: &str) -> Vec<Value> {
        self.gateway.ledger()["payments"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p["customer_ref"] == customer_id)
            .collect()
    }

    /// Customer `n` on car `n`: starts a trip; returns (customer, car, token, answer).
    async fn start_trip(&self, n: u32) -> anyhow::Result<(String, String, String, Answer)> {
        let customer_id = self.app.verified_customer(n).await?;
        let vehicle_id = self.app.car(n, CENTRE).await?;
        let token = self.app.token(Role::Customer, &customer_id);
        let started = self
            .app
            .post(
                "/v1/trips",
                Some(&token),
                &json!({ "vehicle_id": vehicle_id }),
            )
            .await?;
        Ok((customer_id, vehicle_id, token, started))
    }

    /// Locks the car and ends the trip.
    async fn end_trip(&self, vehicle_id: &str, trip_id: &str, token: &str) -> anyhow::Result<()> {
        let locked = self
            .app
            .telemetry(vehicle_id, CENTRE, 12_001.0, true)
            .await?;
        if locked.status != StatusCode::OK {
            bail!("telemetry answered {}: {}", locked.status, locked.body);
        }
        let ended = self
            .app
            .post(&format!("/v1/trips/{trip_id}/end"), Some(token), &json!({}))
            .await?;
        if ended.status != StatusCode::OK {
            bail!("ending the trip answered {}: {}", ended.status, ended.body);
        }
        Ok(())
    }

    /// The account once `check` holds for it.
    async fn account_when(
        &self,
        customer_id: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let support = self.app.token(Role::Support, "agent-1");
        eventually(DEADLINE, || async {
            let answer = self
                .app
                .get(&format!("/v1/accounts/{customer_id}"), Some(&support))
                .await?;
            Ok((answer.status == StatusCode::OK && check(&answer.body)).then_some(answer.body))
        })
        .await
        .with_context(|| format!("the account of {customer_id} did not settle"))
    }

    /// The customer 360 once `check` holds for it.
    async fn customer_when(
        &self,
        customer_id: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let support = self.app.token(Role::Support, "agent-1");
        eventually(DEADLINE, || async {
            let answer = self
                .app
                .get(
                    &format!("/v1/support/customers/{customer_id}"),
                    Some(&support),
                )
                .await?;
            Ok((answer.status == StatusCode::OK && check(&answer.body)).then_some(answer.body))
        })
        .await
        .with_context(|| format!("the customer {customer_id} did not reach the state"))
    }
}

fn blocks(customer: &Value) -> Vec<String> {
    customer["blocks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b.as_str().map(str::to_owned))
        .collect()
}

fn timeline_types(customer: &Value) -> Vec<String> {
    customer["timeline"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_declined_card_refuses_the_start_and_appends_nothing() -> anyhow::Result<()> {
    let paying = Paying::start(50_000).await?;
    paying.faults(json!({ "decline_rate": 1.0 })).await?;
    let customer_id = paying.app.verified_customer(1).await?;
    let vehicle_id = paying.app.car(1, CENTRE).await?;
    let token = paying.app.token(Role::Customer, &customer_id);
    let before = paying.app.caller_event_count().await?;
    let refused = paying
        .app
        .post(
            "/v1/trips",
            Some(&token),
            &json!({ "vehicle_id": vehicle_id }),
        )
        .await?;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["type"],
        "https://velka.dev/problems/payment-declined"
    );
    assert_eq!(
        paying.app.caller_event_count().await?,
        before,
        "nothing appended"
    );

    // With a card that works, the same car starts: the refusal held nothing.
    paying.faults(json!({})).await?;
    let started = paying
        .app
        .post(
            "/v1/trips",
            Some(&token),
            &json!({ "vehicle_id": vehicle_id }),
        )
        .await?;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let payments = paying.payments_of(&customer_id);
    let statuses: Vec<&str> = payments
        .iter()
        .filter_map(|p| p["status"].as_str())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == "waiting_for_capture")
            .count(),
        1
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "canceled").count(),
        1,
        "{payments:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_price_is_captured_from_the_hold_and_the_rest_charged() -> anyhow::Result<()> {
    // A 10 RUB hold; ten minutes of driving cost 99 RUB.
    let paying = Paying::start(1_000).await?;
    let (customer_id, vehicle_id, token, started) = paying.start_trip(1).await?;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_id = started.str("trip_id");
    paying.app.advance_clock(600).await?;
    paying.end_trip(&vehicle_id, &trip_id, &token).await?;

    let account = paying
        .account_when(&customer_id, |a| {
            a["totals"]["charged_kopecks"].as_i64() > Some(0) && a["totals"]["open_kopecks"] == 0
        })
        .await?;
    let price = account["totals"]["charged_kopecks"].as_i64().unwrap();
    assert_eq!(price, 9_900);
    assert_eq!(account["totals"]["paid_kopecks"], price);

    let payments = paying.payments_of(&customer_id);
    let hold = payments
        .iter()
        .find(|p| p["amount_kopecks"] == 1_000)
        .context("the hold")?;
    assert_eq!(hold["status"], "succeeded");
    assert_eq!(hold["captured_kopecks"], 1_000);
    let rest = payments
        .iter()
        .find(|p| p["amount_kopecks"] == price - 1_000)
        .context("the separate charge of the rest")?;
    assert_eq!(rest["status"], "succeeded");
    assert_eq!(payments.len(), 2, "{payments:?}");
    Ok(())
}

#[tokio::test]
async fn a_free_trip_releases_its_hold_and_a_refund_goes_back_to_the_card() -> anyhow::Result<()> {
    let paying = Paying::start(50_000).await?;
    // Customer 1 ends at once: the trip is free, the hold goes.
    let (customer_id, vehicle_id, token, started) = paying.start_trip(1).await?;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    paying
        .end_trip(&vehicle_id, &started.str("trip_id"), &token)
        .await?;
    eventually(DEADLINE, || async {
        let payments = paying.payments_of(&customer_id);
        Ok((payments.len() == 1 && payments[0]["status"] == "canceled").then_some(()))
    })
    .await
    .context("the free trip's hold was not released")?;

    // Customer 2 drives ten minutes; support then refunds 30 RUB of the paid price.
    let (customer_id, vehicle_id, token, started) = paying.start_trip(2).await?;
    paying.app.advance_clock(600).await?;
    paying
        .end_trip(&vehicle_id, &started.str("trip_id"), &token)
        .await?;
    let account = paying
        .account_when(&customer_id, |a| a["totals"]["paid_kopecks"] == 9_900)
        .await?;
    let charge_id = account["charges"][0]["charge_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let support = paying.app.token(Role::Support, "agent-1");
    let refunded = paying
        .app
        .post(
            &format!("/v1/accounts/{customer_id}/charges/{charge_id}/refunds"),
            Some(&support),
            &json!({ "amount_kopecks": 3_000, "reason": "Navigation failed" }),
        )
        .await?;
    assert_eq!(refunded.status, StatusCode::CREATED, "{}", refunded.body);
    let account = paying
        .account_when(&customer_id, |a| a["totals"]["paid_kopecks"] == 6_900)
        .await?;
    assert_eq!(account["totals"]["open_kopecks"], 0);
    let refunds = paying.gateway.ledger()["refunds"].clone();
    assert_eq!(refunds.as_array().map(Vec::len), Some(1), "{refunds}");
    assert_eq!(refunds[0]["amount_kopecks"], 3_000);
    Ok(())
}

#[tokio::test]
async fn a_refused_payment_becomes_a_debt_collected_on_schedule() -> anyhow::Result<()> {
    // The hold covers 10 RUB; the rest must be charged, and the card declines it.
    let paying = Paying::start(1_000).await?;
    let (customer_id, vehicle_id, token, started) = paying.start_trip(1).await?;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    paying.app.advance_clock(600).await?;
    paying.faults(json!({ "decline_rate": 1.0 })).await?;
    paying
        .end_trip(&vehicle_id, &started.str("trip_id"), &token)
        .await?;

    // Blocked and told; the block and the notice are separate commands and may land in
    // either order.
    paying
        .customer_when(&customer_id, |c| {
            blocks(c).contains(&"debt".to_owned())
                && timeline_types(c).contains(&"DebtNoticeSent".to_owned())
        })
        .await?;
    let account = paying
        .account_when(&customer_id, |a| a["charges"][0]["payment_failed"] == true)
        .await?;
    assert_eq!(account["totals"]["open_kopecks"], 8_900);
    // A blocked customer cannot start another trip.
    let car = paying.app.car(2, CENTRE).await?;
    let refused = paying
        .app
        .post("/v1/trips", Some(&token), &json!({ "vehicle_id": car }))
        .await?;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(
        refused.body["type"],
        "https://velka.dev/problems/customer-blocked"
    );

    // An hour later the retry is declined too: a reminder.
    paying.app.advance_clock(3_601).await?;
    paying
        .account_when(&customer_id, |_| {
            paying.payments_of(&customer_id).len() == 3
        })
        .await?;
    let customer = paying
        .customer_when(&customer_id, |c| {
            timeline_types(c)
                .iter()
                .filter(|t| *t == "DebtNoticeSent")
                .count()
                == 2
        })
        .await?;
    assert!(blocks(&customer).contains(&"debt".to_owned()));

    // The card works again; the next retry (a day after the failure) pays and unblocks.
    paying.faults(json!({})).await?;
    paying.app.advance_clock(86_400).await?;
    let account = paying
        .account_when(&customer_id, |a| a["totals"]["open_kopecks"] == 0)
        .await?;
    assert_eq!(account["totals"]["paid_kopecks"], 9_900);
    // Unblocked, and told: opened, reminder, paid.
    paying
        .customer_when(&customer_id, |c| {
            blocks(c).is_empty()
                && timeline_types(c)
                    .iter()
                    .filter(|t| *t == "DebtNoticeSent")
                    .count()
                    >= 3
        })
        .await?;
    // The later timers were cancelled: a week on, nothing more is tried.
    paying.app.advance_clock(8 * 86_400).await?;
    let sagas = paying
        .app
        .get(
            "/v1/admin/sagas",
            Some(&paying.app.token(Role::Support, "agent-1")),
        )
        .await?;
    assert_eq!(sagas.status, StatusCode::OK, "{}", sagas.body);
    let payments = sagas
        .body
        .as_array()
        .and_then(|all| all.iter().find(|s| s["saga"] == "payments"))
        .context("the payment saga in the overview")?;
    assert_eq!(payments["overdue_timers"], 0, "{}", sagas.body);
    assert_eq!(payments["failed_commands"], json!([]), "{}", sagas.body);
    assert_eq!(paying.payments_of(&customer_id).len(), 4);
    Ok(())
}

#[tokio::test]
async fn support_waiving_a_debt_unblocks_and_an_old_debt_goes_to_the_agency() -> anyhow::Result<()>
{
    let paying = Paying::start(1_000).await?;
    paying.faults(json!({ "decline_rate": 0.0 })).await?;
    let mut debtors = Vec::new();
    for n in 1..=2 {
        let (customer_id, vehicle_id, token, started) = paying.start_trip(n).await?;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
        debtors.push((customer_id, vehicle_id, token, started.str("trip_id")));
    }
    paying.app.advance_clock(600).await?;
    paying.faults(json!({ "decline_rate": 1.0 })).await?;
    for (_, vehicle_id, token, trip_id) in &debtors {
        paying.end_trip(vehicle_id, trip_id, token).await?;
    }
    // Customer 1's debt is waived by support.
    let (waived_customer, ..) = &debtors[0];
    let account = paying
        .account_when(waived_customer, |a| {
            a["charges"][0]["payment_failed"] == true
        })
        .await?;
    let charge_id = account["charges"][0]["charge_id"]
        .as_str()
        .unwrap()
        .to_owned();
    paying
        .customer_when(waived_customer, |c| blocks(c).contains(&"debt".to_owned()))
        .await?;
    let support = paying.app.token(Role::Support, "agent-1");
    let waived = paying
        .app
        .post(
            &format!("/v1/accounts/{waived_customer}/charges/{charge_id}/waive"),
            Some(&support),
            &json!({ "reason": "Goodwill" }),
        )
        .await?;
    assert_eq!(waived.status, StatusCode::OK, "{}", waived.body);
    paying
        .customer_when(waived_customer, |c| blocks(c).is_empty())
        .await?;

    // Customer 2's debt stays unpaid for 30 days: it goes to the agency, still blocked.
    let (agency_customer, ..) = &debtors[1];
    for _ in 0..4 {
        paying.app.advance_clock(8 * 86_400).await?;
    }
    let account = paying
        .account_when(agency_customer, |a| a["charges"][0]["with_agency"] == true)
        .await?;
    assert_eq!(account["totals"]["open_kopecks"], 8_900);
    let customer = paying
        .customer_when(agency_customer, |c| blocks(c).contains(&"debt".to_owned()))
        .await?;
    assert!(timeline_types(&customer).contains(&"DebtHandedToAgency".to_owned()));
    Ok(())
}

/// The statuses of the simulator's payments for `customer_id`.
fn statuses(paying: &Paying, customer_id: &str) -> Vec<String> {
    paying
        .payments_of(customer_id)
        .iter()
        .map(|p| p["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `POST /v1/trips` for `vehicle_id` under the client key `start-1`, as the app retries it.
async fn start_once(paying: &Paying, token: &str, vehicle_id: &str) -> anyhow::Result<Answer> {
    paying
        .app
        .send(
            reqwest::Method::POST,
            "/v1/trips",
            Some(token),
            &[("Idempotency-Key", "start-1")],
            Some(&json!({ "vehicle_id": vehicle_id })),
        )
        .await
}

/// A start whose hold answer was lost (the gateway made the hold; the server never heard), on a
/// customer with a car and a client key; returns (customer, car, token).
async fn start_with_the_answer_lost(paying: &Paying) -> anyhow::Result<(String, String, String)> {
    let customer_id = paying.app.verified_customer(1).await?;
    let vehicle_id = paying.app.car(1, CENTRE).await?;
    let token = paying.app.token(Role::Customer, &customer_id);
    // Every answer is lost, though the gateway applies each operation.
    paying.faults(json!({ "timeout_rate": 1.0 })).await?;
    let lost = start_once(paying, &token, &vehicle_id).await?;
    assert_eq!(
        lost.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        lost.body
    );
    assert_eq!(statuses(paying, &customer_id), ["waiting_for_capture"]);
    let noted = tests::sqlx_scalar(&paying.app, "SELECT count(*) FROM hold_intents").await?;
    assert_eq!(noted, 1, "the hold of unknown outcome is noted");
    paying.faults(json!({})).await?;
    Ok((customer_id, vehicle_id, token))
}

#[tokio::test]
async fn a_hold_whose_answer_was_lost_is_let_go_when_the_retry_is_refused() -> anyhow::Result<()> {
    let paying = Paying::start(5_000).await?;
    let (customer_id, vehicle_id, token) = start_with_the_answer_lost(&paying).await?;

    // Support blocks the customer before the app retries: the retry is refused before it asks
    // the gateway, and that refusal is the key's answer for good, so the hold is let go.
    let support = paying.app.token(Role::Support, "agent-1");
    let blocked = paying
        .app
        .post(
            &format!("/v1/customers/{customer_id}/blocks"),
            Some(&support),
            &json!({ "reason": "support", "note": "Called about a scratch" }),
        )
        .await?;
    assert_eq!(blocked.status, StatusCode::CREATED, "{}", blocked.body);
    for _ in 0..2 {
        let retried = start_once(&paying, &token, &vehicle_id).await?;
        assert_eq!(retried.status, StatusCode::CONFLICT, "{}", retried.body);
        assert_eq!(statuses(&paying, &customer_id), ["canceled"]);
    }
    Ok(())
}

#[tokio::test]
async fn a_hold_whose_answer_was_lost_and_never_retried_is_let_go_after_the_grace_period()
-> anyhow::Result<()> {
    let paying = Paying::start(5_000).await?;
    let (customer_id, vehicle_id, token) = start_with_the_answer_lost(&paying).await?;
    // The app gave up. Within the grace period the hold waits for a retry...
    paying.app.advance_clock(5 * 60).await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(statuses(&paying, &customer_id), ["waiting_for_capture"]);
    // ...after it, the sweeper lets it go.
    paying.app.advance_clock(6 * 60).await?;
    eventually(DEADLINE, || async {
        Ok((statuses(&paying, &customer_id) == ["canceled"]).then_some(()))
    })
    .await
    .context("the abandoned hold was not released")?;
    // A retry that comes after that finds its hold released (the gateway would answer the key
    // with its first answer, a hold): a clear refusal, nothing left to settle, nothing held.
    let late = start_once(&paying, &token, &vehicle_id).await?;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    assert_eq!(
        late.body["type"],
        "https://velka.dev/problems/hold-released"
    );
    let open = tests::sqlx_scalar(
        &paying.app,
        "SELECT count(*) FROM hold_intents WHERE released_at IS NULL",
    )
    .await?;
    assert_eq!(open, 0);
    assert_eq!(statuses(&paying, &customer_id), ["canceled"]);
    Ok(())
}

#[tokio::test]
async fn a_hold_whose_answer_was_lost_is_taken_by_the_retried_start() -> anyhow::Result<()> {
    let paying = Paying::start(5_000).await?;
    let (customer_id, vehicle_id, token) = start_with_the_answer_lost(&paying).await?;
    let retried = start_once(&paying, &token, &vehicle_id).await?;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    // Long past the grace period, the sweeper finds the trip holds it: it clears the note and
    // leaves the hold alone.
    paying.app.advance_clock(60 * 60).await?;
    eventually(DEADLINE, || async {
        let noted = tests::sqlx_scalar(&paying.app, "SELECT count(*) FROM hold_intents").await?;
        Ok((noted == 0).then_some(()))
    })
    .await
    .context("the taken hold's note was not cleared")?;
    assert_eq!(statuses(&paying, &customer_id), ["waiting_for_capture"]);
    Ok(())
}

#[tokio::test]
async fn customers_racing_for_one_car_leave_no_hold_but_the_winners() -> anyhow::Result<()> {
    let paying = Paying::start(5_000).await?;
    let vehicle_id = paying.app.car(1, CENTRE).await?;
    let mut racers = Vec::new();
    for n in 1..=6 {
        let customer_id = paying.app.verified_customer(n).await?;
        let token = paying.app.token(Role::Customer, &customer_id);
        racers.push((customer_id, token));
    }
    // All at once: each holds on its card before it appends, so the losers of the append race
    // have holds to give back.
    let answers = futures::future::try_join_all(
        racers
            .iter()
            .map(|(_, token)| start_once(&paying, token, &vehicle_id)),
    )
    .await?;
    let winners: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].status == StatusCode::CREATED)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (i, (customer_id, token)) in racers.iter().enumerate() {
        let held = statuses(&paying, customer_id)
            .iter()
            .filter(|status| *status == "waiting_for_capture")
            .count();
        assert_eq!(held, usize::from(winners.contains(&i)), "customer {i}");
        if winners.contains(&i) {
            continue;
        }
        // A loser retrying with its key gets its first answer, or, where its hold was given
        // back after the append lost, a refusal; never a trip on a released hold.
        let again = start_once(&paying, token, &vehicle_id).await?;
        assert_ne!(again.status, StatusCode::CREATED, "{}", again.body);
    }
    Ok(())
}
