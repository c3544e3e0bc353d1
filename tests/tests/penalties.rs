//! Penalties over HTTP against the real binary: support issues one against an ended or a running
//! trip; the penalty and the charge on the trip customer's account land in one append; refusals
//! append nothing; only support may issue.

#![allow(clippy::unwrap_used)]

mod money;

use http_edge::Role;
use money::{account_at, penalty, stream, trip};
use reqwest::StatusCode;
use serde_json::json;
use tests::App;

#[tokio::test]
async fn a_penalty_for_an_ended_trip_charges_its_customer_the_schedule_amount_in_one_append() {
    let app = App::spawn().await.unwrap();
    let trip = trip(&app, 1, true).await.unwrap();

    let issued = penalty(
        &app,
        &json!({"trip_id": trip.trip_id, "kind": "dirty_car", "note": "Mud on the back seats"}),
    )
    .await
    .unwrap();
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    assert_eq!(issued.body["customer_id"], trip.customer_id.as_str());
    assert_eq!(issued.body["kind"], "dirty_car");
    // fixtures/data/fees.json: a dirty car is 3,000 RUB.
    assert_eq!(issued.body["amount_kopecks"], 300_000);
    let penalty_id = issued.str("penalty_id");

    let penalty_events = stream(&app, &format!("penalty-{penalty_id}"))
        .await
        .unwrap();
    let account_events = stream(&app, &format!("account-{}", trip.customer_id))
        .await
        .unwrap();
    assert_eq!(penalty_events.len(), 1);
    assert_eq!(account_events.len(), 1);
    let (issued_event, charged) = (&penalty_events[0], &account_events[0]);
    assert_eq!(issued_event["type"], "PenaltyIssued");
    assert_eq!(issued_event["data"]["trip_id"], trip.trip_id.as_str());
    assert_eq!(issued_event["data"]["default_amount"], true);
    assert_eq!(issued_event["metadata"]["actor"], "support:agent-7");
    assert_eq!(charged["type"], "ChargeAdded");
    assert_eq!(
        charged["data"]["source"],
        json!({"kind": "penalty", "penalty_id": penalty_id})
    );
    assert_eq!(charged["data"]["charge_id"], issued.body["charge_id"]);
    // One command, one append.
    assert_eq!(
        issued_event["metadata"]["command_id"],
        charged["metadata"]["command_id"]
    );

    let account = account_at(&app, &trip.customer_id, &trip.token, 1)
        .await
        .unwrap();
    assert_eq!(account["totals"]["charged_kopecks"], 300_000);
}

#[tokio::test]
async fn a_penalty_for_a_running_trip_may_set_its_own_amount() {
    let app = App::spawn().await.unwrap();
    let trip = trip(&app, 1, false).await.unwrap();
    let issued = penalty(
        &app,
        &json!({"trip_id": trip.trip_id, "kind": "smoking", "note": "Seen on the cabin camera",
                "amount_kopecks": 250_000}),
    )
    .await
    .unwrap();
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    assert_eq!(issued.body["amount_kopecks"], 250_000);
}

#[tokio::test]
async fn a_penalty_for_an_unknown_trip_or_without_a_note_is_refused_and_appends_nothing() {
    let app = App::spawn().await.unwrap();
    let trip = trip(&app, 1, true).await.unwrap();
    let before = app.caller_event_count().await.unwrap();

    let unknown = penalty(
        &app,
        &json!({"trip_id": uuid::Uuid::now_v7(), "kind": "smoking", "note": "Ash"}),
    )
    .await
    .unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(unknown.content_type(), "application/problem+json");
    assert_eq!(unknown.body["rule"], "trip-not-found");

    let no_note = penalty(
        &app,
        &json!({"trip_id": trip.trip_id, "kind": "smoking", "note": "  "}),
    )
    .await
    .unwrap();
    assert_eq!(
        no_note.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        no_note.body
    );
    assert_eq!(no_note.body["field"], "note");

    let no_amount = penalty(
        &app,
        &json!({"trip_id": trip.trip_id, "kind": "smoking", "note": "Ash", "amount_kopecks": -5}),
    )
    .await
    .unwrap();
    assert_eq!(no_amount.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_amount.body["field"], "amount_kopecks");

    let unknown_kind = penalty(
        &app,
        &json!({"trip_id": trip.trip_id, "kind": "rudeness", "note": "Shouted at a bus"}),
    )
    .await
    .unwrap();
    assert_eq!(
        unknown_kind.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unknown_kind.body
    );
    assert_eq!(unknown_kind.body["field"], "kind");
    assert_eq!(app.caller_event_count().await.unwrap(), before);
}

#[tokio::test]
async fn only_support_issues_penalties() {
    let app = App::spawn().await.unwrap();
    let trip = trip(&app, 1, true).await.unwrap();
    let before = app.caller_event_count().await.unwrap();
    let body = json!({"trip_id": trip.trip_id, "kind": "low_fuel", "note": "Empty tank"});
    for role in [Role::Customer, Role::Fleet, Role::Auditor, Role::Service] {
        let token = app.token(role, &trip.customer_id);
        let answer = app
            .post("/v1/penalties", Some(&token), &body)
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{role}: {}",
            answer.body
        );
        assert_eq!(answer.body["rule"], "forbidden");
    }
    assert_eq!(app.caller_event_count().await.unwrap(), before);
}
