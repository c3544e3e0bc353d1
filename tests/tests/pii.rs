//! Personal data (152-FZ, GDPR) against the real binary: a customer's name, phone, e-mail and
//! documents never reach the events table or the uniqueness claims in plaintext, support still
//! finds the customer by phone while their key exists, and erasing them (over HTTP, and with
//! `velka customer erase`) leaves them erased in the read models — also after a rebuild from the
//! log — while their trip and its money stay as they were and the audit chain still verifies.

#![allow(clippy::unwrap_used)]

mod money;

use http_edge::Role;
use money::{CENTRE, DEADLINE};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{App, eventually, sqlx_scalar, velka_binary};

const NAME: &str = "Ксения Шредерова";
const PHONE: &str = "+79167770311";
const EMAIL: &str = "ksenia.shred@example.ru";
const PASSPORT_NUMBER: &str = "918273";
const ISSUED_BY: &str = "ОВД Хамовнического района";

/// `path` as `token` reads it, once `ready` holds for a 200 answer.
async fn read_when(app: &App, path: &str, token: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually(DEADLINE, || async {
        let answer = app.get(path, Some(token)).await?;
        Ok((answer.status == StatusCode::OK && ready(&answer.body)).then_some(answer.body))
    })
    .await
    .unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Runs the binary with `args` on the app's database: (success, stdout, stderr).
async fn velka(app: &App, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(velka_binary().unwrap())
        .args(args)
        .env("DATABASE_URL", app.db.url())
        .env("VELKA_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// How many stored events mention `text` anywhere in their data.
async fn events_mentioning(app: &App, text: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE strpos(data::text, $1) > 0")
        .bind(text)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

async fn register(app: &App, name: &str, phone: &str, email: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/customers", app.base))
        .json(&json!({
            "name": name, "phone": phone, "email": email, "birth_date": "1991-07-08",
            "licence": {"number": "77 00 555001", "issued_on": "2014-05-20",
                        "expires_on": "2034-05-20"},
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn erasing_a_customer_shreds_their_personal_data_and_keeps_trips_money_and_the_chain() {
    let app = App::spawn().await.unwrap();
    let support = app.token(Role::Support, "agent-9");

    // A customer registers, submits documents, is verified and drives a priced trip.
    let registered = register(&app, NAME, PHONE, EMAIL).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let customer: Value = registered.json().await.unwrap();
    let customer = customer["customer_id"].as_str().unwrap().to_owned();
    let token = app.token(Role::Customer, &customer);
    let documents = app
        .post(
            &format!("/v1/customers/{customer}/documents"),
            Some(&token),
            &json!({
                "passport": {"series": "45 10", "number": PASSPORT_NUMBER,
                             "issued_on": "2011-06-01", "issued_by": ISSUED_BY},
                "licence": {"number": "99 01 654777", "issued_on": "2016-03-10",
                            "expires_on": "2036-03-10", "categories": ["B"]},
                "birth_date": "1991-07-08",
            }),
        )
        .await
        .unwrap();
    assert_eq!(documents.status, StatusCode::OK, "{}", documents.body);
    let verified = app
        .post(
            &format!("/v1/customers/{customer}/verification"),
            Some(&support),
            &json!({"decision": "approved"}),
        )
        .await
        .unwrap();
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    let car = app.car(1, CENTRE).await.unwrap();
    let started = app
        .post("/v1/trips", Some(&token), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_id = started.str("trip_id");
    app.advance_clock(12 * 60).await.unwrap();
    let locked = app.telemetry(&car, CENTRE, 12_004.0, true).await.unwrap();
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
    let ended = app
        .post(
            &format!("/v1/trips/{trip_id}/end"),
            Some(&token),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    let total = ended.body["price"]["total_kopecks"].as_i64().unwrap();
    assert!(total > 0, "the trip costs something: {}", ended.body);

    // The log and the claims hold no plaintext personal data; the events hold ciphertext.
    for text in [NAME, PHONE, EMAIL, PASSPORT_NUMBER, ISSUED_BY, "654777"] {
        assert_eq!(
            events_mentioning(&app, text).await,
            0,
            "{text} is in events"
        );
    }
    assert!(events_mentioning(&app, "pii:v1:").await >= 2);
    let plain_claims = sqlx_scalar(
        &app,
        "SELECT count(*) FROM exclusive_claims
         WHERE claim LIKE '%79167770311%' OR claim LIKE '%ksenia.shred%'",
    )
    .await
    .unwrap();
    assert_eq!(plain_claims, 0);
    let identity_claims = format!(
        "SELECT count(*) FROM exclusive_claims WHERE holder_stream = 'customer-{customer}'
         AND (claim LIKE 'customer-phone:%' OR claim LIKE 'customer-email:%')"
    );
    assert_eq!(sqlx_scalar(&app, &identity_claims).await.unwrap(), 2);

    // While the key exists: a second registration with the phone is refused naming the phone,
    // support finds the customer by phone and sees them in full.
    let twin = register(
        &app,
        "Другой Человек",
        "8 916 777-03-11",
        "other@example.ru",
    )
    .await;
    assert_eq!(twin.status(), StatusCode::CONFLICT);
    let twin: Value = twin.json().await.unwrap();
    assert_eq!(twin["field"], "phone", "{twin}");
    let found = read_when(&app, "/v1/support/search?q=%2B79167770311", &support, |b| {
        !b["hits"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(found["hits"][0]["id"], customer.as_str());
    let path_360 = format!("/v1/support/customers/{customer}");
    let before = read_when(&app, &path_360, &support, |b| {
        b["verification"]["status"] == "verified" && b["account"]["charged_kopecks"] == total
    })
    .await;
    assert_eq!(before["profile"]["phone"], PHONE);
    assert_eq!(before["profile"]["name"], NAME);
    assert_eq!(before["profile"]["erased"], false);

    let path_erase = format!("/v1/customers/{customer}/erase");
    // Erasing needs support and a reason: a blank one is refused as every invalid field is
    // (422 problem+json naming it), a missing one as every unreadable body (400).
    let missing = app
        .post(&path_erase, Some(&support), &json!({}))
        .await
        .unwrap();
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(missing.body["field"], "reason", "{}", missing.body);
    let no_reason = app
        .post(&path_erase, Some(&support), &json!({"reason": "  "}))
        .await
        .unwrap();
    assert_eq!(
        no_reason.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        no_reason.body
    );
    assert_eq!(no_reason.content_type(), "application/problem+json");
    assert_eq!(no_reason.body["field"], "reason");
    let by_customer = app
        .post(&path_erase, Some(&token), &json!({"reason": "me"}))
        .await
        .unwrap();
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN);
    let request = json!({"reason": "the customer's written request, ticket 4711"});
    let keyed = [("Idempotency-Key", "erase-4711")];
    let erased = app
        .send(
            reqwest::Method::POST,
            &path_erase,
            Some(&support),
            &keyed,
            Some(&request),
        )
        .await
        .unwrap();
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.body);
    let retried = app
        .send(
            reqwest::Method::POST,
            &path_erase,
            Some(&support),
            &keyed,
            Some(&request),
        )
        .await
        .unwrap();
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.body, erased.body);
    assert_eq!(retried.headers["idempotent-replayed"], "true");
    let again = app
        .post(&path_erase, Some(&support), &json!({"reason": "again"}))
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(
        again.str("type").ends_with("customer-erased"),
        "{}",
        again.body
    );

    // The key is gone (who and why stay), and so are the phone and e-mail claims: the phone
    // registers again.
    let (key_left, erased_by, reason): (Option<Vec<u8>>, String, String) = sqlx::query_as(
        "SELECT key, erased_by, reason FROM customer_keys WHERE customer_id = $1::uuid",
    )
    .bind(&customer)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(key_left, None);
    assert_eq!(erased_by, "support:agent-9");
    assert_eq!(reason, "the customer's written request, ticket 4711");
    assert_eq!(sqlx_scalar(&app, &identity_claims).await.unwrap(), 0);
    let reuse = register(&app, "Новый Владелец", PHONE, "new.owner@example.ru").await;
    assert_eq!(reuse.status(), StatusCode::CREATED);

    // Support sees the customer as erased, with their trip and money intact, and no longer
    // finds them by phone.
    let after = read_when(&app, &path_360, &support, |b| {
        b["profile"]["erased"] == true
    })
    .await;
    for field in ["name", "phone", "email", "birth_date", "licence_number"] {
        assert_eq!(after["profile"][field], Value::Null, "{field}: {after}");
    }
    assert_eq!(after["account"], before["account"]);
    assert_eq!(after["recent_trips"], before["recent_trips"]);
    assert_eq!(after["recent_trips"][0]["total_kopecks"], total);
    assert!(
        after["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "CustomerErased" && e["actor"] == "support:agent-9"),
        "{after}"
    );
    let trip = app
        .get(&format!("/v1/trips/{trip_id}"), Some(&token))
        .await
        .unwrap();
    assert_eq!(trip.status, StatusCode::OK, "{}", trip.body);
    let search = app
        .get(
            "/v1/support/search?q=ksenia.shred%40example.ru",
            Some(&support),
        )
        .await
        .unwrap();
    assert_eq!(search.body["hits"], json!([]), "{}", search.body);

    // A second customer, erased from the command line.
    let other = register(&app, "Пётр Стёртый", "+79167770999", "petr.gone@example.ru").await;
    let other: Value = other.json().await.unwrap();
    let other = other["customer_id"].as_str().unwrap().to_owned();
    let (ok, stdout, stderr) = velka(
        &app,
        &[
            "customer",
            "erase",
            &other,
            "--reason",
            "regulator's order 12",
            "--by",
            "dpo",
        ],
    )
    .await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("erased customer"), "{stdout}");
    read_when(
        &app,
        &format!("/v1/support/customers/{other}"),
        &support,
        |b| b["profile"]["erased"] == true && b["profile"]["name"].is_null(),
    )
    .await;

    // A rebuild replays the log without the keys: both still read as erased, the trip as it was.
    let (ok, stdout, stderr) = velka(&app, &["projections", "rebuild", "customers_view"]).await;
    assert!(ok, "{stdout}{stderr}");
    let (ok, stdout, stderr) = velka(&app, &["projections", "rebuild", "trips_view"]).await;
    assert!(ok, "{stdout}{stderr}");
    let rebuilt = read_when(&app, &path_360, &support, |b| {
        b["profile"]["erased"] == true
    })
    .await;
    assert_eq!(rebuilt["profile"], after["profile"]);
    assert_eq!(rebuilt["recent_trips"], before["recent_trips"]);
    assert_eq!(rebuilt["account"], before["account"]);
    let names: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customers_view WHERE name IS NOT NULL AND customer_id = ANY($1)",
    )
    .bind(vec![
        uuid::Uuid::parse_str(&customer).unwrap(),
        uuid::Uuid::parse_str(&other).unwrap(),
    ])
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(names, 0);

    // No event was changed: the audit chain verifies.
    eventually(DEADLINE, || async {
        let events = sqlx_scalar(&app, "SELECT count(*) FROM events").await?;
        let sealed = sqlx_scalar(&app, "SELECT count(*) FROM event_chain").await?;
        Ok((events == sealed).then_some(()))
    })
    .await
    .unwrap();
    let (ok, stdout, stderr) = velka(&app, &["audit", "verify"]).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("intact up to position"), "{stdout}");
}
