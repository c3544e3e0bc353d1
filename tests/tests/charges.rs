//! Every amount owed becomes a charge in the same append as its cause, over HTTP against the real
//! binary: a trip's price on its payer's account (the customer's, or their company's for an
//! employee), and a reservation's paid waiting on the customer's account however it ends —
//! cancelled, expired by the worker, or turned into a trip.

#![allow(clippy::unwrap_used)]

mod money;

use http_edge::Role;
use money::{CENTRE, DEADLINE, account_at, stream};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{App, eventually, sqlx_scalar};

/// The standard waiting tariff (fixtures): 15 free minutes, then 3 RUB a started minute.
const WAITING_KOPECKS_PER_MINUTE: i64 = 300;

/// Starts a trip for `token` in `vehicle_id`, drives 20 minutes and 5 km, and ends it; returns
/// the end's answer.
async fn drive_20_minutes(app: &App, token: &str, vehicle_id: &str) -> Value {
    let started = app
        .post("/v1/trips", Some(token), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_id = started.str("trip_id");
    app.advance_clock(20 * 60).await.unwrap();
    let locked = app
        .telemetry(vehicle_id, CENTRE, 12_005.0, true)
        .await
        .unwrap();
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
    let ended = app
        .post(&format!("/v1/trips/{trip_id}/end"), Some(token), &json!({}))
        .await
        .unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    ended.body
}

/// The account at `path_id` (a customer id or `company:<uuid>`) once it shows `version` events.
async fn account(app: &App, path_id: &str, token: &str, version: i64) -> Value {
    account_at(app, path_id, token, version).await.unwrap()
}

#[tokio::test]
async fn ending_a_trip_charges_its_price_to_the_customer_in_the_same_append() {
    let app = App::spawn().await.unwrap();
    let customer = app.verified_customer(1).await.unwrap();
    let token = app.token(Role::Customer, &customer);
    let car = app.car(1, CENTRE).await.unwrap();

    let ended = drive_20_minutes(&app, &token, &car).await;
    let price = ended["price"]["total_kopecks"].as_i64().unwrap();
    assert!(price > 0, "{ended}");
    assert_eq!(
        ended["charge"]["account_id"],
        format!("customer:{customer}")
    );

    let account = account(&app, &customer, &token, 1).await;
    assert_eq!(account["charges"].as_array().unwrap().len(), 1, "{account}");
    let charge = &account["charges"][0];
    assert_eq!(charge["charge_id"], ended["charge"]["charge_id"]);
    assert_eq!(charge["reason"], "trip_price");
    assert_eq!(charge["source"]["kind"], "trip");
    assert_eq!(charge["source"]["id"], ended["trip_id"]);
    assert_eq!(charge["amount_kopecks"], price);
    assert_eq!(account["totals"]["open_kopecks"], price);

    // The trip's end and its charge are one command, one append.
    let trip_events = stream(
        &app,
        &format!("trip-{}", ended["trip_id"].as_str().unwrap()),
    )
    .await
    .unwrap();
    let account_events = stream(&app, &format!("account-{customer}")).await.unwrap();
    let trip_ended = trip_events.last().unwrap();
    assert_eq!(trip_ended["type"], "TripEnded");
    assert_eq!(
        trip_ended["metadata"]["command_id"],
        account_events[0]["metadata"]["command_id"]
    );
}

#[tokio::test]
async fn an_employees_trip_is_billed_to_the_company_and_only_support_reads_its_account() {
    let app = App::spawn().await.unwrap();
    let support = app.token(Role::Support, "agent-7");
    let company = app
        .post(
            "/v1/companies",
            Some(&support),
            &json!({"name": "ООО «Ромашка»", "inn": "7707083893",
                    "billing_email": "billing@romashka.example"}),
        )
        .await
        .unwrap();
    assert_eq!(company.status, StatusCode::CREATED, "{}", company.body);
    let company_id = company.str("company_id");
    let employee = app.verified_customer(1).await.unwrap();
    let joined = app
        .post(
            &format!("/v1/companies/{company_id}/employees"),
            Some(&support),
            &json!({"customer_id": employee}),
        )
        .await
        .unwrap();
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    let token = app.token(Role::Customer, &employee);
    let car = app.car(1, CENTRE).await.unwrap();

    let ended = drive_20_minutes(&app, &token, &car).await;
    let price = ended["price"]["total_kopecks"].as_i64().unwrap();
    let company_account = format!("company:{company_id}");
    assert_eq!(ended["charge"]["account_id"], company_account);

    let account = account(&app, &company_account, &support, 1).await;
    assert_eq!(account["company_id"], company_id.as_str());
    assert!(account.get("customer_id").is_none(), "{account}");
    let charge = &account["charges"][0];
    assert_eq!(charge["reason"], "trip_price");
    assert_eq!(charge["amount_kopecks"], price);
    // The charge names the employee who drove.
    assert_eq!(charge["customer_id"], employee.as_str());
    // Nothing on the employee's own account.
    let own = app
        .get(&format!("/v1/accounts/{employee}"), Some(&token))
        .await
        .unwrap();
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["charges"], json!([]));
    // The employee may not read the company's account.
    let forbidden = app
        .get(&format!("/v1/accounts/{company_account}"), Some(&token))
        .await
        .unwrap();
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.body
    );
    // Support refunds on the company's account like on anyone's.
    let charge_id = charge["charge_id"].as_str().unwrap();
    let refund = app
        .post(
            &format!("/v1/accounts/{company_account}/charges/{charge_id}/refunds"),
            Some(&support),
            &json!({"amount_kopecks": 100, "reason": "Goodwill"}),
        )
        .await
        .unwrap();
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.body);
    // A malformed account id names the field.
    let malformed = app
        .get("/v1/accounts/company:not-a-uuid", Some(&support))
        .await
        .unwrap();
    assert_eq!(
        malformed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        malformed.body
    );
    assert_eq!(malformed.body["field"], "account_id");
}

/// Customer 1 reserves car 1 near the centre; returns (customer, token, car, reservation id).
async fn reserved(app: &App) -> (String, String, String, String) {
    let customer = app.verified_customer(1).await.unwrap();
    let token = app.token(Role::Customer, &customer);
    let car = app.car(1, CENTRE).await.unwrap();
    let reservation = app
        .post(
            "/v1/reservations",
            Some(&token),
            &json!({"vehicle_id": car}),
        )
        .await
        .unwrap();
    assert_eq!(
        reservation.status,
        StatusCode::CREATED,
        "{}",
        reservation.body
    );
    let reservation_id = reservation.str("reservation_id");
    (customer, token, car, reservation_id)
}

/// Asserts the account holds one paid-waiting charge of `minutes` for `reservation_id`.
fn assert_paid_waiting(account: &Value, reservation_id: &str, minutes: i64) {
    assert_eq!(account["charges"].as_array().unwrap().len(), 1, "{account}");
    let charge = &account["charges"][0];
    assert_eq!(charge["reason"], "paid_waiting");
    assert_eq!(charge["source"]["kind"], "reservation");
    assert_eq!(charge["source"]["id"], reservation_id);
    assert_eq!(
        charge["amount_kopecks"],
        minutes * WAITING_KOPECKS_PER_MINUTE
    );
}

#[tokio::test]
async fn cancelling_after_the_free_minutes_charges_the_paid_waiting() {
    let app = App::spawn().await.unwrap();
    let (customer, token, _car, reservation_id) = reserved(&app).await;
    app.advance_clock(20 * 60).await.unwrap();
    let cancelled = app
        .post(
            &format!("/v1/reservations/{reservation_id}/cancel"),
            Some(&token),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["waiting"]["paid_minutes"], 5);
    assert!(
        cancelled.body["charge_id"].is_string(),
        "{}",
        cancelled.body
    );
    let account = account(&app, &customer, &token, 1).await;
    assert_paid_waiting(&account, &reservation_id, 5);
    assert_eq!(
        account["charges"][0]["charge_id"],
        cancelled.body["charge_id"]
    );
}

#[tokio::test]
async fn cancelling_within_the_free_minutes_charges_nothing() {
    let app = App::spawn().await.unwrap();
    let (customer, token, _car, reservation_id) = reserved(&app).await;
    app.advance_clock(10 * 60).await.unwrap();
    let cancelled = app
        .post(
            &format!("/v1/reservations/{reservation_id}/cancel"),
            Some(&token),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert!(cancelled.body["charge_id"].is_null(), "{}", cancelled.body);
    let charges = sqlx_scalar(
        &app,
        &format!("SELECT count(*) FROM events WHERE stream_id = 'account-{customer}'"),
    )
    .await
    .unwrap();
    assert_eq!(charges, 0);
}

#[tokio::test]
async fn a_reservation_expired_by_the_worker_charges_the_waiting_up_to_its_limit() {
    let app = App::spawn().await.unwrap();
    let (customer, token, _car, reservation_id) = reserved(&app).await;
    // Past the 35-minute limit: 20 paid minutes, however late the worker notices.
    app.advance_clock(40 * 60).await.unwrap();
    let account = eventually(DEADLINE, || async {
        let account = account_at(&app, &customer, &token, 0).await?;
        Ok((account["charges"].as_array().map(Vec::len) == Some(1)).then_some(account))
    })
    .await
    .unwrap();
    assert_paid_waiting(&account, &reservation_id, 20);
    let events = stream(&app, &format!("account-{customer}")).await.unwrap();
    assert_eq!(events[0]["metadata"]["actor"], "service:reservation-expiry");
}

#[tokio::test]
async fn turning_a_reservation_into_a_trip_charges_the_paid_waiting_with_the_start() {
    let app = App::spawn().await.unwrap();
    let (customer, token, car, reservation_id) = reserved(&app).await;
    app.advance_clock(17 * 60 + 30).await.unwrap();
    let started = app
        .post("/v1/trips", Some(&token), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    // 17.5 minutes: 3 started paid minutes.
    let account = account(&app, &customer, &token, 1).await;
    assert_paid_waiting(&account, &reservation_id, 3);
    let trip_id = started.str("trip_id");
    let trip_events = stream(&app, &format!("trip-{trip_id}")).await.unwrap();
    let account_events = stream(&app, &format!("account-{customer}")).await.unwrap();
    assert_eq!(
        trip_events[0]["metadata"]["command_id"],
        account_events[0]["metadata"]["command_id"]
    );
}
