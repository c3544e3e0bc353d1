//! Matching fines over HTTP against the real binary (`POST /v1/fines/{id}/match`, the fine
//! saga's command): a fine for a plate during a trip is charged to that trip's payer with the
//! admin fee, in the same append as `FineMatched` and a notice the customer 360 shows; a fine
//! outside any trip goes to the fleet; a fine is matched once, however often the command comes.

#![allow(clippy::unwrap_used)]

mod money;

use chrono::{DateTime, Duration, Utc};
use http_edge::Role;
use money::{DEADLINE, server_now, stream, trip};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{App, eventually};

/// The admin fee of `fixtures/data/fees.json`.
const ADMIN_FEE: i64 = 30_000;

/// The plate `App::car(n, …)` gives car `n`.
fn plate(n: u32) -> String {
    format!("А{:03}ВС{:03}", n % 1000, 77 + n / 1000)
}

fn fine(plate: &str, occurred_at: DateTime<Utc>, resolution_number: &str) -> Value {
    json!({
        "plate": plate,
        "occurred_at": occurred_at,
        "lat": 55.7648,
        "lon": 37.6056,
        "amount_kopecks": 50_000,
        "resolution_number": resolution_number,
        "issued_on": occurred_at.date_naive(),
    })
}

async fn import(app: &App, body: &Value) -> String {
    let feed = app.token(Role::Service, "fine-feed");
    let imported = app.post("/v1/fines", Some(&feed), body).await.unwrap();
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.body);
    imported.str("fine_id")
}

async fn match_fine(app: &App, fine_id: &str, key: &str) -> tests::Answer {
    let saga = app.token(Role::Service, "fine-saga");
    app.send(
        reqwest::Method::POST,
        &format!("/v1/fines/{fine_id}/match"),
        Some(&saga),
        &[("Idempotency-Key", key)],
        Some(&json!({})),
    )
    .await
    .unwrap()
}

fn of_type<'a>(events: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == event_type).collect()
}

#[tokio::test]
async fn a_fine_during_a_trip_is_charged_to_its_payer_with_the_admin_fee_once() {
    let app = App::spawn().await.unwrap();
    let started_at = server_now(&app).await.unwrap();
    let driven = trip(&app, 1, false).await.unwrap();
    // Ten minutes into the trip a camera catches the car; the trip ends later.
    app.advance_clock(20 * 60).await.unwrap();
    let ended = app
        .post(
            &format!("/v1/trips/{}/end", driven.trip_id),
            Some(&driven.token),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    app.advance_clock(2 * 24 * 3600).await.unwrap();
    let fine_id = import(
        &app,
        &fine(
            &plate(1),
            started_at + Duration::minutes(10),
            "18810177231125000017",
        ),
    )
    .await;

    let matched = match_fine(&app, &fine_id, "match-1").await;
    assert_eq!(matched.status, StatusCode::OK, "{}", matched.body);
    assert_eq!(matched.body["status"], "matched");
    assert_eq!(matched.body["trip_id"], driven.trip_id.as_str());
    assert_eq!(matched.body["customer_id"], driven.customer_id.as_str());
    assert_eq!(
        matched.body["account_id"],
        format!("customer:{}", driven.customer_id)
    );
    assert_eq!(matched.body["admin_fee_kopecks"], ADMIN_FEE);

    // One append: the fine's match, both charges, the notice.
    let account = stream(&app, &format!("account-{}", driven.customer_id))
        .await
        .unwrap();
    let charges = of_type(&account, "ChargeAdded");
    let fine_charges: Vec<(String, i64)> = charges
        .iter()
        .filter(|c| c["data"]["source"]["fine_id"] == fine_id.as_str())
        .map(|c| {
            (
                c["data"]["reason"].as_str().unwrap().to_owned(),
                c["data"]["amount_kopecks"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fine_charges,
        [
            ("fine".to_owned(), 50_000),
            ("fine_admin_fee".to_owned(), ADMIN_FEE)
        ],
        "{account:?}"
    );
    let fine_events = stream(&app, &format!("fine-{fine_id}")).await.unwrap();
    assert_eq!(of_type(&fine_events, "FineMatched").len(), 1);
    let customer = stream(&app, &format!("customer-{}", driven.customer_id))
        .await
        .unwrap();
    let notices = of_type(&customer, "CustomerNotified");
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0]["data"]["notice"], "fine_charged");
    assert_eq!(notices[0]["data"]["fine_id"], fine_id.as_str());

    // The same command again (the outbox retrying) is answered from the first, appending
    // nothing; another key finds the fine matched already.
    let before = app.caller_event_count().await.unwrap();
    let retried = match_fine(&app, &fine_id, "match-1").await;
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(retried.body, matched.body);
    let again = match_fine(&app, &fine_id, "match-2").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(
        again.body["type"],
        "https://velka.dev/problems/fine-not-open"
    );
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    // Support sees the fine matched, and the notice in the customer 360.
    let support = app.token(Role::Support, "agent-7");
    let shown = eventually(DEADLINE, || async {
        let answer = app
            .get(&format!("/v1/fines/{fine_id}"), Some(&support))
            .await?;
        Ok((answer.body["status"] == "matched").then_some(answer.body))
    })
    .await
    .unwrap();
    assert_eq!(shown["trip_id"], driven.trip_id.as_str());
    // Bitemporal: the offence happened during the trip, Velka learned of it two days later and
    // decided it then.
    let time = |field: &str| -> DateTime<Utc> {
        shown[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing: {shown}"))
            .parse()
            .unwrap()
    };
    assert_eq!(time("occurred_at"), started_at + Duration::minutes(10));
    assert!(
        time("received_at") - time("occurred_at") >= Duration::days(2),
        "{shown}"
    );
    assert!(time("decided_at") >= time("received_at"), "{shown}");
    let view = app
        .get(
            &format!("/v1/support/customers/{}", driven.customer_id),
            Some(&support),
        )
        .await
        .unwrap();
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    let timeline = view.body["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|entry| entry["type"] == "CustomerNotified"),
        "{timeline:?}"
    );
}

#[tokio::test]
async fn a_fine_outside_any_trip_goes_to_the_fleet_for_review() {
    let app = App::spawn().await.unwrap();
    let before_trip = server_now(&app).await.unwrap() - Duration::hours(3);
    let driven = trip(&app, 2, true).await.unwrap();
    app.advance_clock(3600).await.unwrap();
    // The car was fined hours before anyone rented it; and a car Velka does not know.
    let early = import(&app, &fine(&plate(2), before_trip, "18810177231125000024")).await;
    let unknown = import(
        &app,
        &fine("В777ОР199", before_trip, "18810177231125000031"),
    )
    .await;
    for fine_id in [&early, &unknown] {
        let answer = match_fine(&app, fine_id, &format!("match-{fine_id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body["status"], "assigned_to_fleet");
        assert!(answer.body.get("trip_id").is_none());
        let events = stream(&app, &format!("fine-{fine_id}")).await.unwrap();
        assert_eq!(of_type(&events, "FineAssignedToFleet").len(), 1);
    }
    // Nobody was charged: the free trip left the account without a stream at all (404).
    let fined = stream(&app, &format!("account-{}", driven.customer_id))
        .await
        .map(|account| {
            of_type(&account, "ChargeAdded")
                .iter()
                .any(|c| c["data"]["reason"] == "fine")
        })
        .unwrap_or(false);
    assert!(!fined);
}

#[tokio::test]
async fn only_services_and_support_match_and_an_unknown_fine_is_404() {
    let app = App::spawn().await.unwrap();
    let customer = app.token(Role::Customer, "someone");
    let refused = app
        .post(
            "/v1/fines/0194c0de-0000-7000-8000-000000000001/match",
            Some(&customer),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let missing = match_fine(&app, "0194c0de-0000-7000-8000-000000000001", "k").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    assert_eq!(
        missing.body["type"],
        "https://velka.dev/problems/fine-not-found"
    );
}
