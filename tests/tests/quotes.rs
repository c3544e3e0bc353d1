//! Quotes over HTTP: a price multiplied by the demand in the car's zone, recorded with the
//! numbers behind it, used exactly by a trip started with it, and refused when expired, someone
//! else's or for another car.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tests::{App, eventually};

/// Two points a few hundred metres apart in one pricing zone (0.02° × 0.03° cells) on
/// Tverskaya: row ⌊55.764 / 0.02⌋ = 2788, col ⌊37.605 / 0.03⌋ = 1253.
const TVERSKAYA: (f64, f64) = (55.7648, 37.6056);
const PUSHKINSKAYA: (f64, f64) = (55.7652, 37.6040);

#[tokio::test]
async fn a_quote_multiplies_by_the_zones_demand_and_a_trip_on_it_uses_exactly_that_tariff() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let me = app.token(Role::Customer, &anna);
    let car = app.car(1, TVERSKAYA).await.unwrap();
    let other_car = app.car(2, PUSHKINSKAYA).await.unwrap();

    // Alone with two free cars (once the read model has both): 1 customer per 2 cars, below
    // the 0.8× floor.
    let quiet = eventually(Duration::from_secs(10), || async {
        let answer = app
            .post("/v1/quotes", Some(&me), &json!({"vehicle_id": car}))
            .await?;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        Ok((answer.body["observed"]["free_cars"] == json!(2)).then_some(answer.body))
    })
    .await
    .unwrap();
    assert_eq!(quiet["multiplier_permille"], json!(800));

    // Two other customers ask for the other car: 3 customers for 2 free cars = 1.5×.
    for n in [2, 3] {
        let other = app.verified_customer(n).await.unwrap();
        let token = app.token(Role::Customer, &other);
        let asked = app
            .post(
                "/v1/quotes",
                Some(&token),
                &json!({"vehicle_id": other_car}),
            )
            .await
            .unwrap();
        assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.body);
    }
    let quote = eventually(Duration::from_secs(10), || async {
        let answer = app
            .post("/v1/quotes", Some(&me), &json!({"vehicle_id": car}))
            .await?;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        Ok((answer.body["multiplier_permille"] == json!(1500)).then_some(answer.body))
    })
    .await
    .unwrap();
    assert_eq!(quote["observed"]["free_cars"], json!(2));
    assert_eq!(quote["observed"]["recent_customers"], json!(2));
    assert_eq!(quote["zone"], json!({"row": 2788, "col": 1253}));
    // Per-minute rates × 1.5 (9.90 → 14.85, 3.50 → 5.25, waiting 3.00 → 4.50); not the per-km
    // rate, the included distance or the free minutes.
    assert_eq!(quote["tariff"]["driving_kopecks_per_minute"], json!(1485));
    assert_eq!(quote["tariff"]["parking_kopecks_per_minute"], json!(525));
    // The app's list of nearby cars shows her the same price now.
    let nearby = |token: String| {
        let (app, car) = (&app, &car);
        async move {
            let answer = app
                .get(
                    "/v1/vehicles/available?lat=55.7648&lon=37.6056&radius_m=500",
                    Some(&token),
                )
                .await
                .unwrap();
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            answer.body["vehicles"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["vehicle_id"] == json!(car))
                .cloned()
                .unwrap()
        }
    };
    let listed = nearby(me.clone()).await;
    assert_eq!(listed["price"]["zone"], "r2788c1253");
    assert_eq!(listed["price"]["multiplier_permille"], json!(1500));
    assert_eq!(listed["price"]["driving_kopecks_per_minute"], json!(1485));
    assert_eq!(listed["price"]["parking_kopecks_per_minute"], json!(525));
    assert!(listed["range_km"].as_u64().unwrap() > 0, "{listed}");
    // Support sees the zone's demand with all three customers in it: 4 per 2 cars = 2.0×.
    let seen_by_support = nearby(app.token(Role::Support, "agent-7")).await;
    assert_eq!(seen_by_support["price"]["multiplier_permille"], json!(2000));
    assert_eq!(quote["tariff"]["kopecks_per_extra_km"], json!(1200));
    assert_eq!(quote["tariff"]["included_km"], json!(70));
    assert_eq!(quote["waiting"]["kopecks_per_minute"], json!(450));
    assert_eq!(quote["waiting"]["free_minutes"], json!(15));
    let issued: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(quote["issued_at"].clone()).unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(quote["expires_at"].clone()).unwrap();
    assert_eq!(expires - issued, chrono::Duration::minutes(5));

    // The event explains the price: the observations, the multiplier, base and offered terms.
    let quote_id = quote["quote_id"].as_str().unwrap().to_owned();
    let auditor = app.token(Role::Auditor, "auditor");
    let history = app
        .get(
            &format!("/v1/streams/quote-{quote_id}/events"),
            Some(&auditor),
        )
        .await
        .unwrap();
    let event = &history.body["events"][0];
    assert_eq!(event["type"], "QuoteIssued");
    assert_eq!(event["data"]["multiplier_permille"], json!(1500));
    assert_eq!(event["data"]["observed"]["recent_customers"], json!(2));
    assert_eq!(
        event["data"]["base"]["tariff"]["driving_kopecks_per_minute"],
        json!(990)
    );

    // A trip started with the quote uses exactly its tariff, and records the quote.
    let started = app
        .post(
            "/v1/trips",
            Some(&me),
            &json!({"vehicle_id": car, "quote_id": quote_id}),
        )
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
    assert_eq!(trip["tariff"], quote["tariff"]);
    app.advance_clock(600).await.unwrap();
    let ended = app
        .post(&format!("{trip_path}/end"), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    assert_eq!(ended.body["price"]["total_kopecks"], json!(10 * 1485));
}

#[tokio::test]
async fn an_expired_a_foreign_or_another_cars_quote_is_refused_and_appends_nothing() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let boris = app.verified_customer(2).await.unwrap();
    let (anna_token, boris_token) = (
        app.token(Role::Customer, &anna),
        app.token(Role::Customer, &boris),
    );
    let car = app.car(1, TVERSKAYA).await.unwrap();
    let other_car = app.car(2, PUSHKINSKAYA).await.unwrap();
    let quote = app
        .post("/v1/quotes", Some(&anna_token), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(quote.status, StatusCode::CREATED, "{}", quote.body);
    let quote_id = quote.str("quote_id");
    let before = app.caller_event_count().await.unwrap();

    let refusals = [
        (&boris_token, &car, "/v1/trips", "quote-of-another-customer"),
        (
            &anna_token,
            &other_car,
            "/v1/trips",
            "quote-for-another-vehicle",
        ),
        (
            &boris_token,
            &car,
            "/v1/reservations",
            "quote-of-another-customer",
        ),
        (
            &anna_token,
            &other_car,
            "/v1/reservations",
            "quote-for-another-vehicle",
        ),
    ];
    for (token, vehicle, path, rule) in refusals {
        let answer = app
            .post(
                path,
                Some(token),
                &json!({"vehicle_id": vehicle, "quote_id": quote_id}),
            )
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::CONFLICT,
            "{path}: {}",
            answer.body
        );
        assert_eq!(answer.body["rule"], rule, "{path}: {}", answer.body);
        assert_eq!(answer.body["field"], "quote_id");
        assert_eq!(answer.content_type(), "application/problem+json");
    }

    app.advance_clock(300).await.unwrap();
    let expired = app
        .post(
            "/v1/trips",
            Some(&anna_token),
            &json!({"vehicle_id": car, "quote_id": quote_id}),
        )
        .await
        .unwrap();
    assert_eq!(expired.status, StatusCode::CONFLICT, "{}", expired.body);
    assert_eq!(expired.body["rule"], "quote-expired");

    let unknown = app
        .post(
            "/v1/trips",
            Some(&anna_token),
            &json!({"vehicle_id": car, "quote_id": uuid::Uuid::now_v7()}),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(unknown.body["rule"], "quote-not-found");
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    // Without a quote, the standard tariff still applies.
    let standard = app
        .post("/v1/trips", Some(&anna_token), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(standard.status, StatusCode::CREATED, "{}", standard.body);
}

#[tokio::test]
async fn only_customers_ask_for_quotes_and_only_for_an_available_car() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let boris = app.verified_customer(2).await.unwrap();
    let car = app.car(1, TVERSKAYA).await.unwrap();
    let before = app.caller_event_count().await.unwrap();

    let fleet = app.token(Role::Fleet, "fleet-1");
    let wrong_role = app
        .post("/v1/quotes", Some(&fleet), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(wrong_role.status, StatusCode::FORBIDDEN);
    let unknown_car = app
        .post(
            "/v1/quotes",
            Some(&app.token(Role::Customer, &anna)),
            &json!({"vehicle_id": uuid::Uuid::now_v7()}),
        )
        .await
        .unwrap();
    assert_eq!(unknown_car.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_car.body["rule"], "vehicle-not-found");
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    let taken = app
        .post(
            "/v1/trips",
            Some(&app.token(Role::Customer, &boris)),
            &json!({"vehicle_id": car}),
        )
        .await
        .unwrap();
    assert_eq!(taken.status, StatusCode::CREATED);
    let in_trip = app
        .post(
            "/v1/quotes",
            Some(&app.token(Role::Customer, &anna)),
            &json!({"vehicle_id": car}),
        )
        .await
        .unwrap();
    assert_eq!(in_trip.status, StatusCode::CONFLICT);
    assert_eq!(in_trip.body["rule"], "vehicle-not-available");
}
