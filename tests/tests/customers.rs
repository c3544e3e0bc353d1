//! Customers over HTTP: KYC documents, the age, experience and licence rules of approval, and
//! blocks put and lifted by support — each route's happy path, a refusal that appends nothing,
//! and the wrong role.

#![allow(clippy::unwrap_used)]

use chrono::{Days, Months, NaiveDate, Utc};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::App;

const CENTRE: (f64, f64) = (55.7600, 37.6200);

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A registration body for customer `n`, born on `birth_date`, licensed from `issued_on` to
/// `expires_on`.
fn registration(
    n: u32,
    birth_date: NaiveDate,
    issued_on: NaiveDate,
    expires_on: NaiveDate,
) -> Value {
    json!({
        "name": format!("Олег Смирнов {n}"),
        "phone": format!("+7925{n:07}"),
        "email": format!("oleg{n}@example.ru"),
        "birth_date": birth_date,
        "licence": {"number": format!("50{n:08}"), "issued_on": issued_on, "expires_on": expires_on},
    })
}

async fn register(app: &App, body: &Value) -> String {
    let answer = app.post("/v1/customers", None, body).await.unwrap();
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer.str("customer_id")
}

fn documents() -> Value {
    json!({
        "passport": {"series": "45 10", "number": "123456", "issued_on": "2010-06-01",
                     "issued_by": "ОВД Тверского района г. Москвы"},
        "licence": {"number": "99 01 654321", "issued_on": "2016-03-10",
                    "expires_on": "2036-03-10", "categories": ["B", "B1"]},
        "birth_date": "1990-05-17",
    })
}

/// The event types of a stream, oldest first, as support sees them.
async fn stream_types(app: &App, stream_id: &str) -> Vec<String> {
    let support = app.token(Role::Support, "agent-7");
    let answer = app
        .get(&format!("/v1/streams/{stream_id}/events"), Some(&support))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_customer_submits_documents_and_must_be_approved_again_before_the_next_trip() {
    let app = App::spawn().await.unwrap();
    let customer_id = app.verified_customer(1).await.unwrap();
    let other_id = app.verified_customer(2).await.unwrap();
    let vehicle_id = app.car(1, CENTRE).await.unwrap();
    let me = app.token(Role::Customer, &customer_id);
    let path = format!("/v1/customers/{customer_id}/documents");

    // Refusals first: nothing is appended by any of them.
    let before = app.caller_event_count().await.unwrap();
    let mut trucks_only = documents();
    trucks_only["licence"]["categories"] = json!(["C", "CE"]);
    let refused = app.post(&path, Some(&me), &trucks_only).await.unwrap();
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["field"], "licence.categories");
    assert_eq!(refused.content_type(), "application/problem+json");
    let mut bad_passport = documents();
    bad_passport["passport"]["series"] = json!("45");
    let refused = app.post(&path, Some(&me), &bad_passport).await.unwrap();
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["field"], "passport.series");
    let someone_else = app.token(Role::Customer, &other_id);
    let forbidden = app
        .post(&path, Some(&someone_else), &documents())
        .await
        .unwrap();
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.body
    );
    let fleet = app.token(Role::Fleet, "fleet-1");
    let forbidden = app.post(&path, Some(&fleet), &documents()).await.unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let unknown = app
        .post(
            &format!("/v1/customers/{}/documents", uuid::Uuid::now_v7()),
            Some(&app.token(Role::Support, "agent-7")),
            &documents(),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["rule"], "customer-not-found");
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    let submitted = app.post(&path, Some(&me), &documents()).await.unwrap();
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.body);
    assert_eq!(submitted.body["verification"], "pending");
    assert_eq!(
        stream_types(&app, &format!("customer-{customer_id}")).await,
        [
            "CustomerRegistered",
            "CustomerVerified",
            "KycDocumentsSubmitted"
        ]
    );

    // New documents are unreviewed: no trip until support approves them.
    let start = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::CONFLICT);
    assert_eq!(start.body["rule"], "customer-not-verified");
    let support = app.token(Role::Support, "agent-7");
    let approved = app
        .post(
            &format!("/v1/customers/{customer_id}/verification"),
            Some(&support),
            &json!({"decision": "approved"}),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let start = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::CREATED, "{}", start.body);

    // Support may submit on the customer's behalf; the agent is the event's actor.
    let by_support = app.post(&path, Some(&support), &documents()).await.unwrap();
    assert_eq!(by_support.status, StatusCode::OK, "{}", by_support.body);
}

#[tokio::test]
async fn approval_requires_the_minimum_age_driving_experience_and_a_valid_licence() {
    let app = App::spawn().await.unwrap();
    let support = app.token(Role::Support, "agent-7");
    let far = today().checked_add_days(Days::new(3650)).unwrap();
    // `years` years before today, then `days` days later.
    let years_ago = |years: u32, days: u64| {
        today()
            .checked_sub_months(Months::new(12 * years))
            .and_then(|day| day.checked_add_days(Days::new(days)))
            .unwrap()
    };
    // Turns 21 tomorrow; licensed 2 years ago tomorrow; licence expired yesterday.
    let cases = [
        (
            registration(1, years_ago(21, 1), years_ago(3, 0), far),
            "customer-too-young",
            "birth_date",
        ),
        (
            registration(2, years_ago(30, 0), years_ago(2, 1), far),
            "driving-experience-too-short",
            "licence.issued_on",
        ),
        (
            registration(
                3,
                years_ago(30, 0),
                years_ago(10, 0),
                today().checked_sub_days(Days::new(1)).unwrap(),
            ),
            "licence-expired",
            "licence.expires_on",
        ),
    ];
    for (body, rule, field) in cases {
        let customer_id = register(&app, &body).await;
        let before = app.caller_event_count().await.unwrap();
        let refused = app
            .post(
                &format!("/v1/customers/{customer_id}/verification"),
                Some(&support),
                &json!({"decision": "approved"}),
            )
            .await
            .unwrap();
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{rule}: {}",
            refused.body
        );
        assert_eq!(refused.body["rule"], rule);
        assert_eq!(refused.body["field"], field);
        assert_eq!(
            app.caller_event_count().await.unwrap(),
            before,
            "{rule} appended"
        );
    }

    // Exactly 21 with exactly 2 years of driving is enough.
    let customer_id = register(
        &app,
        &registration(4, years_ago(21, 0), years_ago(2, 0), far),
    )
    .await;
    let approved = app
        .post(
            &format!("/v1/customers/{customer_id}/verification"),
            Some(&support),
            &json!({"decision": "approved"}),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
}

#[tokio::test]
async fn a_licence_that_expires_after_approval_blocks_new_trips() {
    let app = App::spawn().await.unwrap();
    let tomorrow = today().checked_add_days(Days::new(1)).unwrap();
    let body = registration(
        5,
        "1990-01-01".parse().unwrap(),
        "2010-01-01".parse().unwrap(),
        tomorrow,
    );
    let customer_id = register(&app, &body).await;
    let support = app.token(Role::Support, "agent-7");
    let approved = app
        .post(
            &format!("/v1/customers/{customer_id}/verification"),
            Some(&support),
            &json!({"decision": "approved"}),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let vehicle_id = app.car(1, CENTRE).await.unwrap();
    app.advance_clock(3 * 24 * 3600).await.unwrap();
    let before = app.caller_event_count().await.unwrap();
    let me = app.token(Role::Customer, &customer_id);
    let start = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::CONFLICT, "{}", start.body);
    assert_eq!(start.body["rule"], "licence-expired");
    assert_eq!(app.caller_event_count().await.unwrap(), before);
}

#[tokio::test]
async fn support_blocks_for_independent_reasons_and_a_blocked_customer_cannot_rent() {
    let app = App::spawn().await.unwrap();
    let customer_id = app.verified_customer(1).await.unwrap();
    let vehicle_id = app.car(1, CENTRE).await.unwrap();
    let support = app.token(Role::Support, "agent-7");
    let me = app.token(Role::Customer, &customer_id);
    let blocks = format!("/v1/customers/{customer_id}/blocks");

    let blocked = app
        .post(
            &blocks,
            Some(&support),
            &json!({"reason": "debt", "note": "Capture declined"}),
        )
        .await
        .unwrap();
    assert_eq!(blocked.status, StatusCode::CREATED, "{}", blocked.body);
    assert_eq!(blocked.body["active_blocks"], json!(["debt"]));
    let blocked = app
        .post(
            &blocks,
            Some(&support),
            &json!({"reason": "fraud", "note": "Chargebacks"}),
        )
        .await
        .unwrap();
    assert_eq!(blocked.body["active_blocks"], json!(["debt", "fraud"]));

    // Refusals: the same reason twice, the wrong role, an unknown reason. Nothing appended.
    let before = app.caller_event_count().await.unwrap();
    let again = app
        .post(
            &blocks,
            Some(&support),
            &json!({"reason": "debt", "note": "again"}),
        )
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["rule"], "block-unchanged");
    let fleet = app.token(Role::Fleet, "fleet-1");
    let forbidden = app
        .post(
            &blocks,
            Some(&fleet),
            &json!({"reason": "support", "note": ""}),
        )
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let forbidden = app
        .post(
            &format!("{blocks}/debt/lift"),
            Some(&me),
            &json!({"note": "I paid"}),
        )
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let unknown = app
        .post(
            &blocks,
            Some(&support),
            &json!({"reason": "mood", "note": ""}),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["field"], "reason");
    let unknown = app
        .post(
            &format!("{blocks}/mood/lift"),
            Some(&support),
            &json!({"note": ""}),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.body["field"], "reason");
    let not_active = app
        .post(
            &format!("{blocks}/documents/lift"),
            Some(&support),
            &json!({"note": "?"}),
        )
        .await
        .unwrap();
    assert_eq!(not_active.status, StatusCode::CONFLICT);
    assert_eq!(not_active.body["rule"], "block-unchanged");
    let start = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::CONFLICT);
    assert_eq!(start.body["rule"], "customer-blocked");
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    // Lifting one reason leaves the other.
    let lifted = app
        .post(
            &format!("{blocks}/debt/lift"),
            Some(&support),
            &json!({"note": "Debt paid"}),
        )
        .await
        .unwrap();
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.body);
    assert_eq!(lifted.body["active_blocks"], json!(["fraud"]));
    let start = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(start.body["rule"], "customer-blocked");
    let lifted = app
        .post(
            &format!("{blocks}/fraud/lift"),
            Some(&support),
            &json!({"note": "Cleared"}),
        )
        .await
        .unwrap();
    assert_eq!(lifted.body["active_blocks"], json!([]));
    let start = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::CREATED, "{}", start.body);

    // The agent is the actor of the block events, and the notes are kept.
    let history = app
        .get(
            &format!("/v1/streams/customer-{customer_id}/events"),
            Some(&support),
        )
        .await
        .unwrap();
    let events = history.body["events"].as_array().unwrap();
    let unblocked: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "CustomerUnblocked")
        .collect();
    assert_eq!(unblocked.len(), 2);
    assert_eq!(unblocked[0]["data"]["note"], "Debt paid");
    assert_eq!(unblocked[0]["metadata"]["actor"], "support:agent-7");
}
