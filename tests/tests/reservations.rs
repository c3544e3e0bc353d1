//! Reservations over HTTP: hold a car, pay for waiting after the free minutes, turn the
//! reservation into a trip in one append, cancel, or let it expire by itself when the clock
//! passes its limit — and nobody else can take a held car.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{App, eventually, sqlx_scalar};

const CENTRE: (f64, f64) = (55.7600, 37.6200);
/// The standard waiting tariff (fixtures): 15 free minutes, 3 RUB a started minute, 35 minutes.
const WAITING_KOPECKS_PER_MINUTE: i64 = 300;

async fn reserve(app: &App, token: &str, vehicle_id: &str) -> tests::Answer {
    app.post(
        "/v1/reservations",
        Some(token),
        &json!({"vehicle_id": vehicle_id}),
    )
    .await
    .unwrap()
}

/// Waits until the reservation's read model satisfies `done`, and returns it.
async fn reservation_when(
    app: &App,
    token: &str,
    reservation_id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    eventually(Duration::from_secs(10), || async {
        let answer = app
            .get(&format!("/v1/reservations/{reservation_id}"), Some(token))
            .await?;
        Ok((answer.status == StatusCode::OK && done(&answer.body)).then_some(answer.body))
    })
    .await
    .unwrap()
}

/// Whether the car is listed as available near the centre.
async fn listed(app: &App, token: &str, vehicle_id: &str) -> bool {
    let answer = app
        .get(
            "/v1/vehicles/available?lat=55.76&lon=37.62&radius_m=1000",
            Some(token),
        )
        .await
        .unwrap();
    answer.body["vehicles"]
        .as_array()
        .is_some_and(|cars| cars.iter().any(|c| c["vehicle_id"] == json!(vehicle_id)))
}

#[tokio::test]
async fn a_reserved_car_is_held_for_its_customer_who_turns_it_into_a_trip_in_one_append() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let boris = app.verified_customer(2).await.unwrap();
    let (me, other) = (
        app.token(Role::Customer, &anna),
        app.token(Role::Customer, &boris),
    );
    let car = app.car(1, CENTRE).await.unwrap();

    let reserved = reserve(&app, &me, &car).await;
    assert_eq!(reserved.status, StatusCode::CREATED, "{}", reserved.body);
    let reservation_id = reserved.str("reservation_id");
    let made: chrono::DateTime<chrono::Utc> = serde_json::from_value(
        reservation_when(&app, &me, &reservation_id, |_| true).await["made_at"].clone(),
    )
    .unwrap();
    let free_until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(reserved.body["free_until"].clone()).unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(reserved.body["expires_at"].clone()).unwrap();
    assert_eq!(free_until - made, chrono::Duration::minutes(15));
    assert_eq!(expires_at - made, chrono::Duration::minutes(35));

    // Nobody else may take or reserve it, and it is not listed as available.
    let before = app.caller_event_count().await.unwrap();
    for path in ["/v1/trips", "/v1/reservations"] {
        let refused = app
            .post(path, Some(&other), &json!({"vehicle_id": car}))
            .await
            .unwrap();
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{path}: {}",
            refused.body
        );
        assert_eq!(refused.body["rule"], "vehicle-not-available");
    }
    assert_eq!(app.caller_event_count().await.unwrap(), before);
    eventually(Duration::from_secs(10), || async {
        Ok((!listed(&app, &me, &car).await).then_some(()))
    })
    .await
    .unwrap();

    // 20 minutes later Anna starts the trip: 5 paid minutes of waiting.
    app.advance_clock(20 * 60).await.unwrap();
    let started = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_id = started.str("trip_id");

    // One append: the trip started, the car rented and the reservation converted together.
    let appends = sqlx_scalar(
        &app,
        "SELECT count(DISTINCT transaction_id::text) FROM events
         WHERE event_type IN ('TripStarted', 'VehicleRented', 'ReservationConverted')",
    )
    .await
    .unwrap();
    assert_eq!(appends, 1);
    let converted =
        reservation_when(&app, &me, &reservation_id, |r| r["status"] == "converted").await;
    assert_eq!(converted["trip_id"], json!(trip_id));
    assert_eq!(converted["waiting"]["paid_minutes"], json!(5));
    assert_eq!(
        converted["waiting"]["paid_waiting_kopecks"],
        json!(5 * WAITING_KOPECKS_PER_MINUTE)
    );
    let auditor = app.token(Role::Auditor, "auditor");
    let history = app
        .get(
            &format!("/v1/streams/reservation-{reservation_id}/events"),
            Some(&auditor),
        )
        .await
        .unwrap();
    let last = history.body["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "ReservationConverted");
    assert_eq!(last["data"]["paid_waiting_kopecks"], json!(1500));
}

#[tokio::test]
async fn cancelling_lets_the_car_go_and_charges_the_waiting_so_far() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let boris = app.verified_customer(2).await.unwrap();
    let me = app.token(Role::Customer, &anna);
    let car = app.car(1, CENTRE).await.unwrap();
    let reservation_id = reserve(&app, &me, &car).await.str("reservation_id");
    let cancel_path = format!("/v1/reservations/{reservation_id}/cancel");

    // Someone else's reservation, or the wrong role: 403, nothing appended.
    let before = app.caller_event_count().await.unwrap();
    let foreign = app
        .post(
            &cancel_path,
            Some(&app.token(Role::Customer, &boris)),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{}", foreign.body);
    let fleet = app
        .post(
            &cancel_path,
            Some(&app.token(Role::Fleet, "fleet")),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(fleet.status, StatusCode::FORBIDDEN);
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    // 16.5 minutes: 15 free, then 2 started minutes.
    app.advance_clock(16 * 60 + 30).await.unwrap();
    let cancelled = app.post(&cancel_path, Some(&me), &json!({})).await.unwrap();
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["waiting"]["paid_minutes"], json!(2));
    assert_eq!(
        cancelled.body["waiting"]["paid_waiting_kopecks"],
        json!(2 * WAITING_KOPECKS_PER_MINUTE)
    );

    let after = app.caller_event_count().await.unwrap();
    let again = app.post(&cancel_path, Some(&me), &json!({})).await.unwrap();
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["rule"], "reservation-not-active");
    assert_eq!(app.caller_event_count().await.unwrap(), after);

    let unknown = app
        .post(
            &format!("/v1/reservations/{}/cancel", uuid::Uuid::now_v7()),
            Some(&me),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["rule"], "reservation-not-found");

    eventually(Duration::from_secs(10), || async {
        Ok(listed(&app, &me, &car).await.then_some(()))
    })
    .await
    .unwrap();
    let shown = reservation_when(&app, &me, &reservation_id, |r| r["status"] == "cancelled").await;
    assert_eq!(shown["waiting"]["paid_waiting_kopecks"], json!(600));
}

#[tokio::test]
async fn a_reservation_expires_by_itself_once_the_clock_passes_its_limit() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let me = app.token(Role::Customer, &anna);
    let car = app.car(1, CENTRE).await.unwrap();
    let reservation_id = reserve(&app, &me, &car).await.str("reservation_id");

    // While it holds the car, the waiting so far is shown (nothing yet, at 10 minutes).
    app.advance_clock(10 * 60).await.unwrap();
    let active = reservation_when(&app, &me, &reservation_id, |r| r["status"] == "active").await;
    assert_eq!(active["waiting"]["paid_minutes"], json!(0));

    // Past the 35-minute limit the worker expires it: 20 paid minutes, and the car is free.
    app.advance_clock(26 * 60).await.unwrap();
    let expired = reservation_when(&app, &me, &reservation_id, |r| r["status"] == "expired").await;
    assert_eq!(expired["waiting"]["paid_minutes"], json!(20));
    assert_eq!(
        expired["waiting"]["paid_waiting_kopecks"],
        json!(20 * WAITING_KOPECKS_PER_MINUTE)
    );
    eventually(Duration::from_secs(10), || async {
        Ok(listed(&app, &me, &car).await.then_some(()))
    })
    .await
    .unwrap();
    let actor = sqlx_scalar(
        &app,
        "SELECT count(*) FROM events
         WHERE event_type = 'ReservationExpired' AND actor = 'service:reservation-expiry'",
    )
    .await
    .unwrap();
    assert_eq!(actor, 1);

    // The customer may reserve again.
    let again = reserve(&app, &me, &car).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}

#[tokio::test]
async fn a_customer_holds_one_car_at_a_time() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let boris = app.verified_customer(2).await.unwrap();
    let me = app.token(Role::Customer, &anna);
    let boris_token = app.token(Role::Customer, &boris);
    let cars = [
        app.car(1, CENTRE).await.unwrap(),
        app.car(2, CENTRE).await.unwrap(),
        app.car(3, CENTRE).await.unwrap(),
    ];
    let reservation_id = reserve(&app, &me, &cars[0]).await.str("reservation_id");

    let before = app.caller_event_count().await.unwrap();
    for path in ["/v1/reservations", "/v1/trips"] {
        let refused = app
            .post(path, Some(&me), &json!({"vehicle_id": cars[1]}))
            .await
            .unwrap();
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{path}: {}",
            refused.body
        );
        assert_eq!(refused.body["rule"], "customer-has-active-reservation");
    }
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    // In a trip, no reservation either.
    let trip = app
        .post(
            "/v1/trips",
            Some(&boris_token),
            &json!({"vehicle_id": cars[2]}),
        )
        .await
        .unwrap();
    assert_eq!(trip.status, StatusCode::CREATED);
    let in_trip = reserve(&app, &boris_token, &cars[1]).await;
    assert_eq!(in_trip.status, StatusCode::CONFLICT, "{}", in_trip.body);
    assert_eq!(in_trip.body["rule"], "customer-has-active-trip");

    // Roles: only customers reserve; support reads any reservation, another customer none.
    let fleet = app
        .post(
            "/v1/reservations",
            Some(&app.token(Role::Fleet, "fleet")),
            &json!({"vehicle_id": cars[1]}),
        )
        .await
        .unwrap();
    assert_eq!(fleet.status, StatusCode::FORBIDDEN);
    reservation_when(&app, &me, &reservation_id, |_| true).await;
    let path = format!("/v1/reservations/{reservation_id}");
    let support = app
        .get(&path, Some(&app.token(Role::Support, "agent")))
        .await
        .unwrap();
    assert_eq!(support.status, StatusCode::OK);
    let foreign = app.get(&path, Some(&boris_token)).await.unwrap();
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let fleet_read = app
        .get(&path, Some(&app.token(Role::Fleet, "fleet")))
        .await
        .unwrap();
    assert_eq!(fleet_read.status, StatusCode::FORBIDDEN);
    let unknown = app
        .get(
            &format!("/v1/reservations/{}", uuid::Uuid::now_v7()),
            Some(&me),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["rule"], "reservation-not-found");
}

#[tokio::test]
async fn a_reservation_made_with_a_quote_carries_its_tariff_into_the_trip() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let me = app.token(Role::Customer, &anna);
    // Alone with two free cars in the zone: the 0.8× floor.
    let car = app.car(1, CENTRE).await.unwrap();
    app.car(2, CENTRE).await.unwrap();
    let quote = eventually(Duration::from_secs(10), || async {
        let answer = app
            .post("/v1/quotes", Some(&me), &json!({"vehicle_id": car}))
            .await?;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        Ok((answer.body["multiplier_permille"] == json!(800)).then_some(answer.body))
    })
    .await
    .unwrap();
    let reserved = app
        .post(
            "/v1/reservations",
            Some(&me),
            &json!({"vehicle_id": car, "quote_id": quote["quote_id"]}),
        )
        .await
        .unwrap();
    assert_eq!(reserved.status, StatusCode::CREATED, "{}", reserved.body);
    assert_eq!(reserved.body["terms"]["tariff"], quote["tariff"]);
    assert_eq!(
        reserved.body["terms"]["waiting"]["kopecks_per_minute"],
        json!(240)
    );

    // The quote's validity does not matter any more: the reservation fixed its terms.
    app.advance_clock(10 * 60).await.unwrap();
    let started = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_path = format!("/v1/trips/{}", started.str("trip_id"));
    let trip = eventually(Duration::from_secs(10), || async {
        let answer = app.get(&trip_path, Some(&me)).await?;
        Ok((answer.status == StatusCode::OK).then_some(answer.body))
    })
    .await
    .unwrap();
    assert_eq!(trip["tariff"]["driving_kopecks_per_minute"], json!(792));
}
