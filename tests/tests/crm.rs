//! Support, CRM and app reads against the real binary: who had a car at a moment (by id and by
//! plate), support search by phone, e-mail, licence and plate, a customer's trips a page at a
//! time, the customer 360 with its timeline, and the fleet's status by zone — each with a bad
//! parameter (problem+json naming it) and a caller who may not read it.

#![allow(clippy::unwrap_used)]

mod money;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use http_edge::Role;
use money::{CENTRE, DEADLINE, server_now};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{Answer, App, eventually};

/// `customer` takes `vehicle`, drives `minutes` of the manual clock, locks it and ends the trip;
/// returns the trip id.
async fn drive(app: &App, customer: &str, vehicle: &str, minutes: i64) -> String {
    let token = app.token(Role::Customer, customer);
    let started = app
        .post("/v1/trips", Some(&token), &json!({ "vehicle_id": vehicle }))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_id = started.str("trip_id");
    app.advance_clock(minutes * 60).await.unwrap();
    let locked = app
        .telemetry(vehicle, CENTRE, 12_000.0, true)
        .await
        .unwrap();
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
    trip_id
}

/// `path` as `token` reads it, once `ready` holds for a 200 answer.
async fn read_when(app: &App, path: &str, token: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually(DEADLINE, || async {
        let answer = app.get(path, Some(token)).await?;
        Ok((answer.status == StatusCode::OK && ready(&answer.body)).then_some(answer.body))
    })
    .await
    .unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn assert_problem(answer: &Answer, status: StatusCode, field: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/problem+json");
    if let Some(field) = field {
        assert_eq!(answer.body["field"], field, "{}", answer.body);
    }
}

#[tokio::test]
async fn the_holder_of_a_car_at_a_moment_is_found_by_id_and_by_plate() {
    let app = App::spawn().await.unwrap();
    let ivan = app.verified_customer(1).await.unwrap();
    let car = app.car(1, CENTRE).await.unwrap();
    let started_at = server_now(&app).await.unwrap();
    let trip = drive(&app, &ivan, &car, 10).await;
    let support = app.token(Role::Support, "agent-1");
    let during = rfc3339(started_at + Duration::minutes(5));

    let by_id = read_when(
        &app,
        &format!("/v1/vehicles/{car}/holder?at={during}"),
        &support,
        |body| !body["ended_at"].is_null(),
    )
    .await;
    assert_eq!(by_id["trip_id"], trip);
    assert_eq!(by_id["customer"]["customer_id"], ivan);
    assert_eq!(by_id["payer_account_id"], format!("customer:{ivan}"));
    assert_eq!(by_id["plate"], "А001ВС077");
    assert_eq!(
        by_id["ended_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        started_at + Duration::minutes(10)
    );

    // The plate as a fine feed may type it, in Latin letters and lower case.
    let auditor = app.token(Role::Auditor, "auditor-1");
    let by_plate = app
        .get(
            &format!("/v1/vehicles/by-plate/a001bc077/holder?at={during}"),
            Some(&auditor),
        )
        .await
        .unwrap();
    assert_eq!(by_plate.status, StatusCode::OK, "{}", by_plate.body);
    assert_eq!(by_plate.body["trip_id"], trip);
    assert_eq!(by_plate.body["vehicle_id"], car);

    // After the trip nobody had it.
    let after = rfc3339(started_at + Duration::minutes(11));
    let nobody = app
        .get(
            &format!("/v1/vehicles/{car}/holder?at={after}"),
            Some(&support),
        )
        .await
        .unwrap();
    assert_problem(&nobody, StatusCode::NOT_FOUND, None);
    assert_eq!(nobody.body["rule"], "no-holder-at-time");
    let unknown_plate = app
        .get(
            &format!("/v1/vehicles/by-plate/Х999ХХ999/holder?at={during}"),
            Some(&support),
        )
        .await
        .unwrap();
    assert_problem(&unknown_plate, StatusCode::NOT_FOUND, None);

    // Bad input names the parameter; a customer may not ask.
    let bad_time = app
        .get(
            &format!("/v1/vehicles/{car}/holder?at=yesterday"),
            Some(&support),
        )
        .await
        .unwrap();
    assert_problem(&bad_time, StatusCode::UNPROCESSABLE_ENTITY, Some("at"));
    let no_time = app
        .get(&format!("/v1/vehicles/{car}/holder"), Some(&support))
        .await
        .unwrap();
    assert_problem(&no_time, StatusCode::UNPROCESSABLE_ENTITY, Some("at"));
    let bad_plate = app
        .get(
            &format!("/v1/vehicles/by-plate/a-1/holder?at={during}"),
            Some(&support),
        )
        .await
        .unwrap();
    assert_problem(&bad_plate, StatusCode::UNPROCESSABLE_ENTITY, Some("plate"));
    let customer = app.token(Role::Customer, &ivan);
    let refused = app
        .get(
            &format!("/v1/vehicles/{car}/holder?at={during}"),
            Some(&customer),
        )
        .await
        .unwrap();
    assert_problem(&refused, StatusCode::FORBIDDEN, None);
    let anonymous = app
        .get(&format!("/v1/vehicles/{car}/holder?at={during}"), None)
        .await
        .unwrap();
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn support_finds_customers_and_cars_and_the_fleet_sees_its_status() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let olga = app.verified_customer(2).await.unwrap();
    app.car(1, CENTRE).await.unwrap();
    let rented = app.car(2, CENTRE).await.unwrap();
    let started = app
        .post(
            "/v1/trips",
            Some(&app.token(Role::Customer, &olga)),
            &json!({ "vehicle_id": rented }),
        )
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let support = app.token(Role::Support, "agent-1");

    // A phone typed the Russian way, an e-mail in capitals, a licence with spaces.
    let by_phone = read_when(
        &app,
        "/v1/support/search?q=8%20916%20000-00-01",
        &support,
        |b| !b["hits"].as_array().unwrap().is_empty(),
    )
    .await;
    assert_eq!(by_phone["hits"][0]["kind"], "customer");
    assert_eq!(by_phone["hits"][0]["id"], anna);
    assert_eq!(by_phone["hits"][0]["matched"], "phone");
    assert_eq!(by_phone["hits"].as_array().unwrap().len(), 1);
    // Olga may be projected a batch after Anna: wait for her too.
    let by_email = read_when(
        &app,
        "/v1/support/search?q=ANNA2@Example.ru",
        &support,
        |b| !b["hits"].as_array().unwrap().is_empty(),
    )
    .await;
    assert_eq!(by_email["hits"][0]["id"], olga);
    assert_eq!(by_email["hits"][0]["matched"], "email");
    let by_licence = app
        .get("/v1/support/search?q=77%2000%20000001", Some(&support))
        .await
        .unwrap();
    assert_eq!(
        by_licence.body["hits"][0]["id"], anna,
        "{}",
        by_licence.body
    );
    assert_eq!(by_licence.body["hits"][0]["matched"], "licence_number");
    let by_plate = read_when(&app, "/v1/support/search?q=a002bc077", &support, |b| {
        !b["hits"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        by_plate["hits"],
        json!([{"kind": "vehicle", "id": rented, "label": "А002ВС077, Kia Rio",
                "matched": "plate"}])
    );
    let nothing = app
        .get("/v1/support/search?q=%2B79990000000", Some(&support))
        .await
        .unwrap();
    assert_eq!(nothing.body["hits"], json!([]), "{}", nothing.body);

    let empty = app
        .get("/v1/support/search?q=", Some(&support))
        .await
        .unwrap();
    assert_problem(&empty, StatusCode::UNPROCESSABLE_ENTITY, Some("q"));
    let junk = app
        .get("/v1/support/search?q=%21%3F", Some(&support))
        .await
        .unwrap();
    assert_problem(&junk, StatusCode::UNPROCESSABLE_ENTITY, Some("q"));
    let auditor = app.token(Role::Auditor, "auditor-1");
    let refused = app
        .get("/v1/support/search?q=a002bc077", Some(&auditor))
        .await
        .unwrap();
    assert_problem(&refused, StatusCode::FORBIDDEN, None);

    // The fleet: one car free, one in a trip, both in the pricing zone of the centre.
    let fleet = app.token(Role::Fleet, "fleet-1");
    let status = read_when(&app, "/v1/fleet/status", &fleet, |b| {
        b["totals"]["in_trip"] == 1 && b["totals"]["total"] == 2
    })
    .await;
    assert_eq!(
        status["totals"],
        json!({"available": 1, "reserved": 0, "in_trip": 1, "in_service": 0, "total": 2})
    );
    let zones = status["zones"].as_array().unwrap();
    assert_eq!(zones.len(), 1, "{status}");
    // 55.7648 / 0.02 and 37.6056 / 0.03, rounded down.
    assert_eq!(zones[0]["zone"], "r2788c1253");
    assert_eq!(zones[0]["available"], 1);
    assert_eq!(zones[0]["in_trip"], 1);
    let support_reads = app.get("/v1/fleet/status", Some(&support)).await.unwrap();
    assert_eq!(support_reads.status, StatusCode::OK);
    let customer = app.token(Role::Customer, &anna);
    let refused = app.get("/v1/fleet/status", Some(&customer)).await.unwrap();
    assert_problem(&refused, StatusCode::FORBIDDEN, None);
}

#[tokio::test]
async fn a_customer_pages_through_their_trips_and_support_sees_the_customer_360() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let olga = app.verified_customer(2).await.unwrap();
    let car = app.car(1, CENTRE).await.unwrap();
    let mut trips = Vec::new();
    for minutes in [3, 4, 5] {
        trips.push(drive(&app, &anna, &car, minutes).await);
        app.advance_clock(60).await.unwrap();
    }
    let token = app.token(Role::Customer, &anna);
    let base = format!("/v1/customers/{anna}/trips");

    // Newest first, two to a page.
    let first = read_when(&app, &format!("{base}?limit=2"), &token, |b| {
        b["trips"][0]["status"] == "ended" && b["trips"][0]["trip_id"] == trips[2].as_str()
    })
    .await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("{base}?limit=2&cursor={cursor}"), Some(&token))
        .await
        .unwrap();
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["next_cursor"], Value::Null);
    let paged: Vec<&str> = first["trips"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second.body["trips"].as_array().unwrap())
        .map(|trip| trip["trip_id"].as_str().unwrap())
        .collect();
    assert_eq!(paged, [&trips[2], &trips[1], &trips[0]]);

    let bad_limit = app
        .get(&format!("{base}?limit=0"), Some(&token))
        .await
        .unwrap();
    assert_problem(&bad_limit, StatusCode::UNPROCESSABLE_ENTITY, Some("limit"));
    // Filtered by state.
    let ended = app
        .get(&format!("{base}?status=ended"), Some(&token))
        .await
        .unwrap();
    assert_eq!(ended.body["trips"].as_array().unwrap().len(), 3);
    let driving = app
        .get(&format!("{base}?status=driving"), Some(&token))
        .await
        .unwrap();
    assert_eq!(driving.body["trips"], json!([]));
    let bad_status = app
        .get(&format!("{base}?status=flying"), Some(&token))
        .await
        .unwrap();
    assert_problem(
        &bad_status,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("status"),
    );
    let bad_cursor = app
        .get(&format!("{base}?cursor=not-a-cursor"), Some(&token))
        .await
        .unwrap();
    assert_problem(
        &bad_cursor,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("cursor"),
    );
    let someone_else = app
        .get(&base, Some(&app.token(Role::Customer, &olga)))
        .await
        .unwrap();
    assert_problem(&someone_else, StatusCode::FORBIDDEN, None);
    let support = app.token(Role::Support, "agent-1");
    let by_support = app.get(&base, Some(&support)).await.unwrap();
    assert_eq!(by_support.body["trips"].as_array().unwrap().len(), 3);

    // Support blocks Anna; the 360 shows it, her trips, her account and who did what.
    let blocked = app
        .post(
            &format!("/v1/customers/{anna}/blocks"),
            Some(&support),
            &json!({"reason": "support", "note": "Called about a scratch"}),
        )
        .await
        .unwrap();
    assert_eq!(blocked.status, StatusCode::CREATED, "{}", blocked.body);
    let path = format!("/v1/support/customers/{anna}");
    let charged: i64 = by_support.body["trips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|trip| trip["total_kopecks"].as_i64().unwrap())
        .sum();
    let view = read_when(&app, &path, &support, |b| {
        b["blocks"] == json!(["support"]) && b["account"]["charged_kopecks"] == charged
    })
    .await;
    assert_eq!(view["profile"]["phone"], "+79160000001");
    assert_eq!(view["verification"]["status"], "verified");
    assert_eq!(view["company_id"], Value::Null);
    assert_eq!(view["recent_trips"].as_array().unwrap().len(), 3);
    assert_eq!(view["recent_trips"][0]["trip_id"], trips[2]);
    assert_eq!(view["account"]["open_kopecks"], charged);
    let timeline = view["timeline"].as_array().unwrap();
    let positions: Vec<i64> = timeline
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "{positions:?}");
    assert_eq!(timeline[0]["type"], "CustomerBlocked");
    assert_eq!(timeline[0]["actor"], "support:agent-1");
    let has = |event_type: &str, stream: &str| {
        timeline
            .iter()
            .any(|e| e["type"] == event_type && e["stream_id"] == stream)
    };
    assert!(has("CustomerRegistered", &format!("customer-{anna}")));
    assert!(has("CustomerVerified", &format!("customer-{anna}")));
    assert!(has("TripStarted", &format!("trip-{}", trips[0])));
    assert!(has("TripEnded", &format!("trip-{}", trips[2])));
    assert!(has("ChargeAdded", &format!("account-{anna}")));
    assert!(
        timeline
            .iter()
            .filter(|e| e["type"] == "TripStarted")
            .all(|e| e["actor"] == format!("customer:{anna}"))
    );

    let auditor = app.token(Role::Auditor, "auditor-1");
    assert_eq!(
        app.get(&path, Some(&auditor)).await.unwrap().status,
        StatusCode::OK
    );
    let refused = app.get(&path, Some(&token)).await.unwrap();
    assert_problem(&refused, StatusCode::FORBIDDEN, None);
    let bad_id = app
        .get("/v1/support/customers/anna", Some(&support))
        .await
        .unwrap();
    assert_problem(
        &bad_id,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("customer_id"),
    );
    let unknown = app
        .get(
            "/v1/support/customers/0194f5a0-0000-7000-8000-000000000001",
            Some(&support),
        )
        .await
        .unwrap();
    assert_problem(&unknown, StatusCode::NOT_FOUND, None);
}
