//! The walking skeleton, end to end over HTTP against the real binary: a customer registers, is
//! verified, takes a car, drives, parks, drives on, ends the trip and sees the exact price; the
//! trip's stream shows what happened and who did it.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{App, eventually};

/// Tverskaya street, inside the operating area.
const TVERSKAYA: (f64, f64) = (55.7648, 37.6056);
/// Near Kurskaya station, inside the operating area.
const KURSKAYA: (f64, f64) = (55.7580, 37.6590);
/// Khimki, outside the MKAD ring.
const KHIMKI: (f64, f64) = (55.8970, 37.4297);

async fn telemetry(
    app: &App,
    vehicle_id: &str,
    at: (f64, f64),
    odometer_km: f64,
    locked: bool,
) -> Value {
    let answer = app
        .telemetry(vehicle_id, at, odometer_km, locked)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

#[tokio::test]
async fn a_customer_takes_a_car_drives_parks_ends_and_sees_the_exact_price() {
    let app = App::spawn().await.unwrap();
    let customer_id = app.verified_customer(1).await.unwrap();
    let vehicle_id = app.car(1, TVERSKAYA).await.unwrap();
    let me = app.token(Role::Customer, &customer_id);

    // A changed reading (fuel 80 % → 74 %) is an event; the same reading again is not.
    let changed = telemetry(&app, &vehicle_id, TVERSKAYA, 12000.0, true).await;
    assert_eq!(changed["recorded"], json!(true));
    let same = telemetry(&app, &vehicle_id, TVERSKAYA, 12000.0, true).await;
    assert_eq!(same["recorded"], json!(false));

    // The car is listed near Tverskaya.
    let nearby = eventually(Duration::from_secs(10), || async {
        let answer = app
            .get(
                "/v1/vehicles/available?lat=55.7650&lon=37.6060&radius_m=1000",
                Some(&me),
            )
            .await?;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let listed = answer.body["vehicles"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(listed
            .iter()
            .any(|v| v["vehicle_id"] == json!(vehicle_id))
            .then_some(listed))
    })
    .await
    .unwrap();
    assert!(nearby[0]["distance_m"].as_f64().unwrap() < 100.0);

    let started = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_id = started.str("trip_id");
    let trip_path = format!("/v1/trips/{trip_id}");

    // 10 minutes driving, 5 parked, 2.5 driving: 750 s driving = 13 started minutes.
    app.advance_clock(600).await.unwrap();
    let parked = app
        .post(&format!("{trip_path}/park"), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(parked.status, StatusCode::OK, "{}", parked.body);
    app.advance_clock(300).await.unwrap();
    let resumed = app
        .post(&format!("{trip_path}/resume"), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    app.advance_clock(150).await.unwrap();

    // Outside the zone, or unlocked, the trip cannot end.
    telemetry(&app, &vehicle_id, KHIMKI, 12030.0, true).await;
    let outside = app
        .post(&format!("{trip_path}/end"), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(outside.status, StatusCode::CONFLICT);
    assert_eq!(outside.body["rule"], "vehicle-outside-operating-zone");
    telemetry(&app, &vehicle_id, KURSKAYA, 12042.3, false).await;
    let unlocked = app
        .post(&format!("{trip_path}/end"), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(unlocked.status, StatusCode::CONFLICT);
    assert_eq!(unlocked.body["rule"], "vehicle-not-locked");
    assert_eq!(unlocked.content_type(), "application/problem+json");

    telemetry(&app, &vehicle_id, KURSKAYA, 12042.3, true).await;
    let ended = app
        .post(&format!("{trip_path}/end"), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    // Standard tariff: 9.90 RUB a driving minute, 3.50 RUB a parked minute, 70 km included.
    let expected_total = 13 * 990 + 5 * 350;
    assert_eq!(ended.body["price"]["total_kopecks"], json!(expected_total));

    // The read model shows the ended trip with the same price and its breakdown.
    let trip = eventually(Duration::from_secs(10), || async {
        let answer = app.get(&trip_path, Some(&me)).await?;
        // 404 until the read model has the trip at all.
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        Ok((answer.body["status"] == "ended").then_some(answer.body))
    })
    .await
    .unwrap();
    let price = &trip["price"];
    assert_eq!(price["total_kopecks"], json!(expected_total));
    assert_eq!(price["driving_minutes"], json!(13));
    assert_eq!(price["driving_kopecks"], json!(13 * 990));
    assert_eq!(price["parking_minutes"], json!(5));
    assert_eq!(price["parking_kopecks"], json!(5 * 350));
    assert_eq!(price["distance_m"], json!(42_300));
    assert_eq!(price["distance_kopecks"], json!(0));
    assert_eq!(trip["customer_id"], json!(customer_id));
    assert_eq!(trip["vehicle_id"], json!(vehicle_id));

    // The auditor reads the trip's history, with who did what.
    let auditor = app.token(Role::Auditor, "auditor-1");
    let history = app
        .get(
            &format!("/v1/streams/trip-{trip_id}/events"),
            Some(&auditor),
        )
        .await
        .unwrap();
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let events = history.body["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["TripStarted", "TripParked", "TripResumed", "TripEnded"]
    );
    let versions: Vec<u64> = events
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    for event in events {
        assert_eq!(
            event["metadata"]["actor"],
            json!(format!("customer:{customer_id}"))
        );
        assert!(event["position"].as_i64().unwrap() > 0);
        assert!(event["metadata"]["correlation_id"].is_string());
    }
    assert_eq!(
        events[3]["data"]["price"]["total_kopecks"],
        json!(expected_total)
    );

    // The car is available again, where it was left.
    let back = eventually(Duration::from_secs(10), || async {
        let answer = app
            .get(
                "/v1/vehicles/available?lat=55.7580&lon=37.6590&radius_m=500",
                Some(&me),
            )
            .await?;
        let listed = answer.body["vehicles"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(listed
            .iter()
            .any(|v| v["vehicle_id"] == json!(vehicle_id))
            .then_some(()))
    })
    .await;
    assert!(back.is_ok(), "the returned car is listed at its new place");
}
