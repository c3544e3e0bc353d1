//! KYC by an outside provider over HTTP against the real binary: the provider's callback
//! (`POST /v1/webhooks/kyc`) is authenticated by its signature, never by a bearer token, and
//! recorded once per check; a request for manual review (the KYC saga's, or support's) shows in
//! the customer 360 until a decision; the saga, as a service, may decide verification.

#![allow(clippy::unwrap_used)]

use fixtures::kyc_provider::{SIGNATURE_HEADER, signature};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{Answer, App, eventually};

/// `velka serve`'s default `VELKA_KYC_WEBHOOK_SECRET`.
const SECRET: &str = "velka-development-kyc-secret";
const DEADLINE: Duration = Duration::from_secs(10);

fn documents() -> Value {
    json!({
        "passport": {"series": "45 10", "number": "123456", "issued_on": "2010-06-01",
                     "issued_by": "ОВД Тверского района г. Москвы"},
        "licence": {"number": "99 01 654321", "issued_on": "2016-03-10",
                    "expires_on": "2036-03-10", "categories": ["B", "B1"]},
        "birth_date": "1990-05-17",
    })
}

/// A registered customer who submitted documents; returns their id.
async fn pending_customer(app: &App) -> String {
    let registered = app
        .post(
            "/v1/customers",
            None,
            &json!({
                "name": "Ольга Смирнова",
                "phone": "+79165550101",
                "email": "olga@example.ru",
                "birth_date": "1990-05-17",
                "licence": {"number": "77 00 000001", "issued_on": "2014-05-20",
                            "expires_on": "2034-05-20"},
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    let customer_id = registered.str("customer_id");
    let token = app.token(Role::Customer, &customer_id);
    let submitted = app
        .post(
            &format!("/v1/customers/{customer_id}/documents"),
            Some(&token),
            &documents(),
        )
        .await
        .unwrap();
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.body);
    customer_id
}

/// The provider calls back with `body`, signed with `secret`.
async fn callback(app: &App, body: &Value, secret: &str) -> Answer {
    let raw = body.to_string();
    let signed = signature(secret.as_bytes(), raw.as_bytes());
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/kyc", app.base))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signed)
        .body(raw)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

async fn event_types(app: &App, stream_id: &str) -> Vec<String> {
    let auditor = app.token(Role::Auditor, "auditor-1");
    let answer = app
        .get(&format!("/v1/streams/{stream_id}/events"), Some(&auditor))
        .await
        .unwrap();
    answer.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_providers_signed_answer_is_recorded_once_and_a_forged_one_is_refused() {
    let app = App::spawn().await.unwrap();
    let customer_id = pending_customer(&app).await;
    let answer = json!({
        "check_id": "chk_0001",
        "reference": format!("{customer_id}:0194c0de-0000-7000-8000-000000000001"),
        "outcome": "verified",
    });

    let before = app.caller_event_count().await.unwrap();
    for forged in [
        callback(&app, &answer, "not-the-secret").await,
        // A bearer token is no substitute for the signature.
        app.send(
            reqwest::Method::POST,
            "/v1/webhooks/kyc",
            Some(&app.token(Role::Service, "kyc-provider")),
            &[],
            Some(&answer),
        )
        .await
        .unwrap(),
    ] {
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.body);
        assert_eq!(forged.content_type(), "application/problem+json");
    }
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    let recorded = callback(&app, &answer, SECRET).await;
    assert_eq!(recorded.status, StatusCode::OK, "{}", recorded.body);
    assert_eq!(recorded.body["duplicate"], false);
    assert_eq!(recorded.body["customer_id"], customer_id.as_str());
    let repeated = callback(&app, &answer, SECRET).await;
    assert_eq!(repeated.status, StatusCode::OK, "{}", repeated.body);
    assert_eq!(repeated.body["duplicate"], true);
    let types = event_types(&app, &format!("customer-{customer_id}")).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| t.as_str() == "KycCheckCompleted")
            .count(),
        1,
        "{types:?}"
    );

    // Signed but malformed: the field is named.
    let bad = callback(
        &app,
        &json!({"check_id": "chk_2", "reference": "nobody", "outcome": "verified"}),
        SECRET,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["field"], "reference");
}

#[tokio::test]
async fn manual_review_shows_in_the_customer_360_until_support_decides() {
    let app = App::spawn().await.unwrap();
    let customer_id = pending_customer(&app).await;
    let saga = app.token(Role::Service, "kyc-saga");
    let requested = app
        .post(
            &format!("/v1/customers/{customer_id}/kyc/manual-review"),
            Some(&saga),
            &json!({"reason": "the KYC provider did not answer within 24 hours"}),
        )
        .await
        .unwrap();
    assert_eq!(requested.status, StatusCode::OK, "{}", requested.body);
    assert_eq!(requested.body["verification"], "pending");

    let support = app.token(Role::Support, "agent-7");
    let path = format!("/v1/support/customers/{customer_id}");
    let shown = eventually(DEADLINE, || async {
        let answer = app.get(&path, Some(&support)).await?;
        Ok(answer.body["verification"]["manual_review_reason"]
            .is_string()
            .then_some(answer.body))
    })
    .await
    .unwrap();
    assert_eq!(
        shown["verification"]["manual_review_reason"],
        "the KYC provider did not answer within 24 hours"
    );

    // Asked twice: refused, nothing appended.
    let twice = app
        .post(
            &format!("/v1/customers/{customer_id}/kyc/manual-review"),
            Some(&support),
            &json!({"reason": "again"}),
        )
        .await
        .unwrap();
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);

    // The saga, as a service, may decide; the decision ends the review.
    let decided = app
        .post(
            &format!("/v1/customers/{customer_id}/verification"),
            Some(&saga),
            &json!({"decision": "approved"}),
        )
        .await
        .unwrap();
    assert_eq!(decided.status, StatusCode::OK, "{}", decided.body);
    let after = eventually(DEADLINE, || async {
        let answer = app.get(&path, Some(&support)).await?;
        Ok((answer.body["verification"]["status"] == "verified").then_some(answer.body))
    })
    .await
    .unwrap();
    assert!(after["verification"]["manual_review_reason"].is_null());

    // A customer cannot put themselves in front of support.
    let customer = app.token(Role::Customer, &customer_id);
    let refused = app
        .post(
            &format!("/v1/customers/{customer_id}/kyc/manual-review"),
            Some(&customer),
            &json!({"reason": "please"}),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}
