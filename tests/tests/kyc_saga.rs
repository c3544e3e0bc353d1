//! The KYC saga end to end through `velka serve` and the KYC provider simulator: submitted
//! documents go to the provider, its signed callback verifies or rejects the customer; a
//! provider that never answers leaves the customer in manual review once the deadline passes.

#![allow(clippy::unwrap_used)]

use fixtures::kyc_provider::{KycBehaviour, KycProviderConfig};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{App, eventually};

/// `velka serve`'s default `VELKA_KYC_WEBHOOK_SECRET`.
const SECRET: &str = "velka-development-kyc-secret";
const DEADLINE: Duration = Duration::from_secs(20);

async fn provider(behaviour: KycBehaviour) -> fixtures::kyc_provider::RunningKycProvider {
    fixtures::kyc_provider::start(
        "127.0.0.1:0".parse().unwrap(),
        KycProviderConfig {
            secret: SECRET.to_owned(),
            seed: Some(5),
            behaviour,
        },
    )
    .await
    .unwrap()
}

/// Customer `n` registers and submits documents; returns their id.
async fn submit(app: &App, n: u32) -> String {
    let registered = app
        .post(
            "/v1/customers",
            None,
            &json!({
                "name": "Ольга Смирнова",
                "phone": format!("+7916555{n:04}"),
                "email": format!("olga{n}@example.ru"),
                "birth_date": "1990-05-17",
                "licence": {"number": format!("77 00 {n:06}"), "issued_on": "2014-05-20",
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
            &json!({
                "passport": {"series": "45 10", "number": format!("{n:06}"),
                             "issued_on": "2010-06-01",
                             "issued_by": "ОВД Тверского района г. Москвы"},
                "licence": {"number": format!("99 01 {n:06}"), "issued_on": "2016-03-10",
                            "expires_on": "2036-03-10", "categories": ["B"]},
                "birth_date": "1990-05-17",
            }),
        )
        .await
        .unwrap();
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.body);
    customer_id
}

/// The customer 360 once `check` holds.
async fn customer_when(app: &App, customer_id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let support = app.token(Role::Support, "agent-1");
    eventually(DEADLINE, || async {
        let answer = app
            .get(
                &format!("/v1/support/customers/{customer_id}"),
                Some(&support),
            )
            .await?;
        Ok((answer.status == StatusCode::OK && check(&answer.body)).then_some(answer.body))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_providers_answer_verifies_or_rejects_the_customer() {
    let kyc = provider(KycBehaviour {
        delay_ms: 50,
        ..KycBehaviour::default()
    })
    .await;
    let app = App::spawn_with(&[
        ("VELKA_KYC_PROVIDER_URL", &kyc.url()),
        ("VELKA_SAGA_RETRY_MS", "50"),
    ])
    .await
    .unwrap();
    let approved = submit(&app, 1).await;
    customer_when(&app, &approved, |c| {
        c["verification"]["status"] == "verified"
    })
    .await;

    // Every check from now on is rejected.
    reqwest::Client::new()
        .post(format!("{}/control/behaviour", kyc.url()))
        .json(&json!({ "rejected_rate": 1.0, "delay_ms": 50 }))
        .send()
        .await
        .unwrap();
    let rejected = submit(&app, 2).await;
    customer_when(&app, &rejected, |c| {
        c["verification"]["status"] == "rejected"
    })
    .await;
}

#[tokio::test]
async fn silence_past_the_deadline_asks_for_manual_review() {
    let kyc = provider(KycBehaviour {
        drop_rate: 1.0,
        ..KycBehaviour::default()
    })
    .await;
    let app = App::spawn_with(&[
        ("VELKA_KYC_PROVIDER_URL", &kyc.url()),
        ("VELKA_KYC_DEADLINE_HOURS", "1"),
        ("VELKA_SAGA_RETRY_MS", "50"),
    ])
    .await
    .unwrap();
    let customer_id = submit(&app, 3).await;
    // The check was sent (the provider has it) but nobody answers.
    eventually(DEADLINE, || async {
        let checks: Value = reqwest::Client::new()
            .get(format!("{}/control/checks", kyc.url()))
            .send()
            .await?
            .json()
            .await?;
        Ok((checks["checks"].as_array().map(Vec::len) == Some(1)).then_some(()))
    })
    .await
    .unwrap();
    let before = customer_when(&app, &customer_id, |_| true).await;
    assert!(
        before["verification"]["manual_review_reason"].is_null(),
        "{before}"
    );

    app.advance_clock(3_601).await.unwrap();
    let after = customer_when(&app, &customer_id, |c| {
        !c["verification"]["manual_review_reason"].is_null()
    })
    .await;
    assert_eq!(after["verification"]["status"], "pending", "{after}");
}
