//! Accounts over HTTP against the real binary: a penalty puts a charge on the trip customer's
//! account; support refunds part of it and waives the rest, as the events' actor; the customer,
//! support and auditors read the account with its sums; refusals append nothing.

#![allow(clippy::unwrap_used)]

mod money;

use http_edge::Role;
use money::{account_at, penalty, stream, trip};
use reqwest::StatusCode;
use serde_json::json;
use tests::App;

/// Customer `n`'s ended trip with a 5,000 RUB smoking penalty; returns the trip and the charge id.
async fn penalised(app: &App, n: u32) -> (money::Trip, String) {
    let trip = trip(app, n, true).await.unwrap();
    let issued = penalty(
        app,
        &json!({"trip_id": trip.trip_id, "kind": "smoking", "note": "Ash on the seat"}),
    )
    .await
    .unwrap();
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let charge_id = issued.str("charge_id");
    (trip, charge_id)
}

#[tokio::test]
async fn support_refunds_part_of_a_charge_waives_the_rest_and_the_account_shows_it_all() {
    let app = App::spawn().await.unwrap();
    let (trip, charge_id) = penalised(&app, 1).await;
    let customer = &trip.customer_id;
    let support = app.token(Role::Support, "agent-7");

    let account = account_at(&app, customer, &trip.token, 1).await.unwrap();
    assert_eq!(account["account_id"], format!("customer:{customer}"));
    assert_eq!(account["charges"][0]["charge_id"], charge_id);
    assert_eq!(account["charges"][0]["reason"], "penalty");
    assert_eq!(account["charges"][0]["source"]["kind"], "penalty");
    assert_eq!(account["charges"][0]["amount_kopecks"], 500_000);
    assert_eq!(account["totals"]["open_kopecks"], 500_000);

    let refund = app
        .post(
            &format!("/v1/accounts/{customer}/charges/{charge_id}/refunds"),
            Some(&support),
            &json!({"amount_kopecks": 100_000, "reason": "Smoke came from the previous trip"}),
        )
        .await
        .unwrap();
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.body);
    assert_eq!(refund.body["refunded_kopecks"], 100_000);
    assert_eq!(refund.body["open_kopecks"], 400_000);

    let waiver = app
        .post(
            &format!("/v1/accounts/{customer}/charges/{charge_id}/waive"),
            Some(&support),
            &json!({"reason": "Goodwill: first incident"}),
        )
        .await
        .unwrap();
    assert_eq!(waiver.status, StatusCode::OK, "{}", waiver.body);
    assert_eq!(waiver.body["waived_kopecks"], 400_000);
    assert_eq!(waiver.body["open_kopecks"], 0);

    // The agent is the actor of the refund and the waiver.
    let events = stream(&app, &format!("account-{customer}")).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ChargeAdded", "ChargeRefunded", "ChargeWaived"]);
    for event in &events {
        assert_eq!(event["metadata"]["actor"], "support:agent-7");
    }

    // Support sees who did it; the customer sees what and why.
    let seen_by_support = account_at(&app, customer, &support, 3).await.unwrap();
    assert_eq!(
        seen_by_support["totals"],
        json!({"charged_kopecks": 500_000, "refunded_kopecks": 100_000,
               "waived_kopecks": 400_000, "paid_kopecks": 0, "open_kopecks": 0})
    );
    let charge = &seen_by_support["charges"][0];
    assert_eq!(charge["refunds"][0]["refund_id"], refund.body["refund_id"]);
    assert_eq!(charge["refunds"][0]["amount_kopecks"], 100_000);
    assert_eq!(charge["refunds"][0]["actor"], "support:agent-7");
    assert_eq!(charge["waivers"][0]["amount_kopecks"], 400_000);
    assert_eq!(charge["waivers"][0]["reason"], "Goodwill: first incident");
    let seen_by_customer = account_at(&app, customer, &trip.token, 3).await.unwrap();
    assert_eq!(seen_by_customer["totals"], seen_by_support["totals"]);
    assert!(
        seen_by_customer["charges"][0]["refunds"][0]
            .get("actor")
            .is_none()
    );
    let auditor = app.token(Role::Auditor, "auditor-1");
    let seen_by_auditor = account_at(&app, customer, &auditor, 3).await.unwrap();
    assert_eq!(seen_by_auditor["charges"], seen_by_support["charges"]);
}

#[tokio::test]
async fn refunds_beyond_the_charge_and_waivers_of_nothing_are_refused_and_append_nothing() {
    let app = App::spawn().await.unwrap();
    let (trip, charge_id) = penalised(&app, 1).await;
    let customer = &trip.customer_id;
    let support = app.token(Role::Support, "agent-7");
    let refunds = format!("/v1/accounts/{customer}/charges/{charge_id}/refunds");
    let before = app.caller_event_count().await.unwrap();

    let too_much = app
        .post(
            &refunds,
            Some(&support),
            &json!({"amount_kopecks": 500_001, "reason": "Too much"}),
        )
        .await
        .unwrap();
    assert_eq!(too_much.status, StatusCode::CONFLICT, "{}", too_much.body);
    assert_eq!(too_much.content_type(), "application/problem+json");
    assert_eq!(too_much.body["rule"], "refund-exceeds-refundable");
    assert_eq!(too_much.body["field"], "amount_kopecks");

    let nothing = app
        .post(
            &refunds,
            Some(&support),
            &json!({"amount_kopecks": 0, "reason": "Nothing"}),
        )
        .await
        .unwrap();
    assert_eq!(
        nothing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        nothing.body
    );
    assert_eq!(nothing.body["field"], "amount_kopecks");

    let no_reason = app
        .post(
            &refunds,
            Some(&support),
            &json!({"amount_kopecks": 100, "reason": " "}),
        )
        .await
        .unwrap();
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_reason.body["field"], "reason");

    let unknown_charge = app
        .post(
            &format!(
                "/v1/accounts/{customer}/charges/{}/refunds",
                uuid::Uuid::now_v7()
            ),
            Some(&support),
            &json!({"amount_kopecks": 100, "reason": "Who knows"}),
        )
        .await
        .unwrap();
    assert_eq!(unknown_charge.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_charge.body["rule"], "charge-not-found");
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    // Refund everything; then nothing is left to waive.
    let all = app
        .post(
            &refunds,
            Some(&support),
            &json!({"amount_kopecks": 500_000, "reason": "Not our customer's fault"}),
        )
        .await
        .unwrap();
    assert_eq!(all.status, StatusCode::CREATED, "{}", all.body);
    let after_refund = app.caller_event_count().await.unwrap();
    let waive = app
        .post(
            &format!("/v1/accounts/{customer}/charges/{charge_id}/waive"),
            Some(&support),
            &json!({"reason": "Nothing left"}),
        )
        .await
        .unwrap();
    assert_eq!(waive.status, StatusCode::CONFLICT, "{}", waive.body);
    assert_eq!(waive.body["rule"], "nothing-to-waive");
    assert_eq!(app.caller_event_count().await.unwrap(), after_refund);
}

#[tokio::test]
async fn only_support_refunds_or_waives_and_a_customer_reads_only_their_own_account() {
    let app = App::spawn().await.unwrap();
    let (trip, charge_id) = penalised(&app, 1).await;
    let customer = &trip.customer_id;
    let before = app.caller_event_count().await.unwrap();

    for role in [Role::Customer, Role::Fleet, Role::Auditor, Role::Service] {
        let token = app.token(role, customer);
        let refund = app
            .post(
                &format!("/v1/accounts/{customer}/charges/{charge_id}/refunds"),
                Some(&token),
                &json!({"amount_kopecks": 100, "reason": "Myself"}),
            )
            .await
            .unwrap();
        assert_eq!(
            refund.status,
            StatusCode::FORBIDDEN,
            "{role}: {}",
            refund.body
        );
        let waive = app
            .post(
                &format!("/v1/accounts/{customer}/charges/{charge_id}/waive"),
                Some(&token),
                &json!({"reason": "Myself"}),
            )
            .await
            .unwrap();
        assert_eq!(
            waive.status,
            StatusCode::FORBIDDEN,
            "{role}: {}",
            waive.body
        );
        assert_eq!(waive.body["rule"], "forbidden");
    }
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    let stranger = app.verified_customer(2).await.unwrap();
    let stranger = app.token(Role::Customer, &stranger);
    let read = app
        .get(&format!("/v1/accounts/{customer}"), Some(&stranger))
        .await
        .unwrap();
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.body);
    let fleet = app.token(Role::Fleet, "fleet-1");
    let read = app
        .get(&format!("/v1/accounts/{customer}"), Some(&fleet))
        .await
        .unwrap();
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.body);
    let anonymous = app
        .get(&format!("/v1/accounts/{customer}"), None)
        .await
        .unwrap();
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let own = account_at(&app, customer, &trip.token, 1).await.unwrap();
    assert_eq!(own["charges"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_account_without_charges_is_empty_and_a_bad_id_names_the_parameter() {
    let app = App::spawn().await.unwrap();
    let customer = app.verified_customer(1).await.unwrap();
    let support = app.token(Role::Support, "agent-7");
    let empty = app
        .get(&format!("/v1/accounts/{customer}"), Some(&support))
        .await
        .unwrap();
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert_eq!(empty.body["charges"], json!([]));
    assert_eq!(empty.body["totals"]["open_kopecks"], 0);
    assert_eq!(empty.body["version"], 0);
    let bad = app
        .get("/v1/accounts/not-a-uuid", Some(&support))
        .await
        .unwrap();
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["field"], "account_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refunds_never_refund_more_than_the_charge() {
    let app = App::spawn().await.unwrap();
    let (trip, charge_id) = penalised(&app, 1).await;
    let customer = &trip.customer_id;
    let refunds = format!("/v1/accounts/{customer}/charges/{charge_id}/refunds");
    // Six agents each refund 1,000 RUB of the 5,000 RUB charge at once: the account's version
    // serialises them, so five land and the sixth finds nothing left to refund.
    let tokens: Vec<String> = (0..6)
        .map(|n| app.token(Role::Support, &format!("agent-{n}")))
        .collect();
    let body = json!({"amount_kopecks": 100_000, "reason": "Duplicate complaint"});
    let answers = futures::future::join_all(
        tokens
            .iter()
            .map(|token| app.post(&refunds, Some(token), &body)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    let landed = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        landed,
        5,
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    for refused in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
        assert_eq!(refused.body["rule"], "refund-exceeds-refundable");
    }
    // The whole history agrees: five refunds of 1,000 RUB, each by its own agent.
    let events = stream(&app, &format!("account-{customer}")).await.unwrap();
    let refunded: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "ChargeRefunded")
        .collect();
    assert_eq!(refunded.len(), 5);
    let total: i64 = refunded
        .iter()
        .map(|e| e["data"]["amount_kopecks"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 500_000);
    let account = account_at(&app, customer, &trip.token, 6).await.unwrap();
    assert_eq!(account["totals"]["refunded_kopecks"], 500_000);
    assert_eq!(account["totals"]["open_kopecks"], 0);
}
