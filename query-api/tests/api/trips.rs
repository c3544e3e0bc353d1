//! `GET /v1/trips/{trip_id}`: who may see a trip, and its price while it runs and once it ended.

use crate::helpers::*;
use chrono::Duration;
use http_edge::Role;
use projectors::testing::{RED_SQUARE, TripEnd, at, offset, tariff};
use serde_json::json;

#[tokio::test]
async fn the_owner_support_and_auditors_see_a_trip_other_callers_do_not() {
    let app = spawn_app().await;
    let ivan = customer();
    let car = app.add_car(1, RED_SQUARE).await;
    let trip = app.start_trip(ivan, car, RED_SQUARE, at(T0)).await;
    app.caught_up().await;
    let path = format!("/v1/trips/{trip}");

    let body = app.get_ok(&path, &app.customer_token(ivan)).await;
    assert_eq!(body["trip_id"], json!(trip));
    assert_eq!(body["customer_id"], json!(ivan));
    assert_eq!(body["vehicle_id"], json!(car));
    assert_eq!(body["status"], "driving");
    assert_eq!(body["started_at"], "2026-11-25T10:00:00Z");
    assert_eq!(body["ended_at"], json!(null));
    assert_eq!(body["tariff"], serde_json::to_value(tariff()).unwrap());
    assert_eq!(body["price"], json!(null));

    for role in [Role::Support, Role::Auditor] {
        let body = app.get_ok(&path, &app.token(role, "agent-7")).await;
        assert_eq!(body["trip_id"], json!(trip), "{role}");
    }

    let other = app
        .get_problem(&path, Some(&app.customer_token(customer())), 403)
        .await;
    assert_eq!(other.rule, "forbidden");
    let fleet = app
        .get_problem(&path, Some(&app.token(Role::Fleet, "fleet-1")), 403)
        .await;
    assert!(
        fleet.detail.contains("customer, support, auditor"),
        "{}",
        fleet.detail
    );
    let anonymous = app.get_problem(&path, None, 401).await;
    assert_eq!(anonymous.rule, "unauthorized");
    let forged = app.get_problem(&path, Some("not-a-token"), 401).await;
    assert_eq!(forged.rule, "unauthorized");
}

#[tokio::test]
async fn an_unknown_trip_is_404_and_a_malformed_id_names_trip_id() {
    let app = spawn_app().await;
    let support = app.token(Role::Support, "agent-7");
    let unknown = app
        .get_problem(
            &format!("/v1/trips/{}", uuid::Uuid::now_v7()),
            Some(&support),
            404,
        )
        .await;
    assert_eq!(unknown.rule, "trip-not-found");
    let malformed = app
        .get_problem("/v1/trips/not-a-uuid", Some(&support), 422)
        .await;
    assert_eq!(malformed.field.as_deref(), Some("trip_id"));
}

#[tokio::test]
async fn the_running_price_advances_with_the_clock_and_the_final_price_replaces_it() {
    let app = spawn_app().await;
    let ivan = customer();
    let token = app.customer_token(ivan);
    let car = app.add_car(1, RED_SQUARE).await;
    let trip = app.start_trip(ivan, car, RED_SQUARE, at(T0)).await;
    app.caught_up().await;
    let path = format!("/v1/trips/{trip}");

    // At the start: nothing driven yet.
    let body = app.get_ok(&path, &token).await;
    assert_eq!(body["running_price"]["total_kopecks"], 0);
    assert_eq!(body["as_of"], "2026-11-25T10:00:00Z");

    // 7.5 minutes of driving: 8 started minutes at 12 RUB.
    app.clock.advance(Duration::seconds(450));
    let body = app.get_ok(&path, &token).await;
    assert_eq!(body["driving_s"], 450);
    assert_eq!(body["running_price"]["driving_minutes"], 8);
    assert_eq!(body["running_price"]["total_kopecks"], 8 * 1_200);

    // Parked at 10:07:30, and 3 minutes later: the parking rate runs, driving stands still.
    app.park(trip, at("2026-11-25T10:07:30Z")).await;
    app.caught_up().await;
    app.clock.advance(Duration::seconds(180));
    let body = app.get_ok(&path, &token).await;
    assert_eq!(body["status"], "parked");
    assert_eq!(
        (body["driving_s"].clone(), body["parking_s"].clone()),
        (json!(450), json!(180))
    );
    assert_eq!(body["running_price"]["total_kopecks"], 8 * 1_200 + 3 * 300);
    app.clock.advance(Duration::seconds(61));
    let body = app.get_ok(&path, &token).await;
    assert_eq!(body["running_price"]["total_kopecks"], 8 * 1_200 + 5 * 300);

    // Ended: the billed price, frozen however the clock moves.
    let price = app
        .end_trip(
            trip,
            ivan,
            car,
            TripEnd {
                position: offset(RED_SQUARE, 500.0, 0.0),
                start_odometer_m: ODOMETER_M,
                end_odometer_m: ODOMETER_M + 3_000,
                ended_at: at("2026-11-25T10:11:31Z"),
                driving_s: 450,
                parking_s: 241,
            },
        )
        .await;
    app.caught_up().await;
    app.clock.advance(Duration::hours(2));
    let body = app.get_ok(&path, &token).await;
    assert_eq!(body["status"], "ended");
    assert_eq!(body["ended_at"], "2026-11-25T10:11:31Z");
    assert_eq!(body["price"], serde_json::to_value(&price).unwrap());
    assert_eq!(body["running_price"], json!(null));
    assert_eq!(
        (body["driving_s"].clone(), body["parking_s"].clone()),
        (json!(450), json!(241))
    );
}
