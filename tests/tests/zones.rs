//! Where a trip may end, over HTTP: inside the MKAD ring, or at an airport outside it for the
//! airport's surcharge, shown in the price breakdown; never in the Kremlin or out in the
//! suburbs. The zones come from the fixture, not from code.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::StatusCode;
use serde_json::json;
use tests::App;

const CENTRE: (f64, f64) = (55.7600, 37.6200);
/// Sheremetyevo's terminal B, outside MKAD, in the airport's surcharge zone.
const SHEREMETYEVO_B: (f64, f64) = (55.9800, 37.4150);
/// Inside the Kremlin walls: a forbidden zone.
const KREMLIN: (f64, f64) = (55.7520, 37.6175);
/// Zelenograd: outside the ring and outside every surcharge zone.
const ZELENOGRAD: (f64, f64) = (55.9825, 37.1750);

#[tokio::test]
async fn ending_at_an_airport_adds_its_surcharge_and_forbidden_or_outside_places_are_refused() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let me = app.token(Role::Customer, &anna);
    let car = app.car(1, CENTRE).await.unwrap();
    let started = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED);
    let end_path = format!("/v1/trips/{}/end", started.str("trip_id"));
    app.advance_clock(40 * 60).await.unwrap();

    for (place, odometer_km) in [(KREMLIN, 12_010.0), (ZELENOGRAD, 12_050.0)] {
        let reading = app.telemetry(&car, place, odometer_km, true).await.unwrap();
        assert_eq!(reading.status, StatusCode::OK);
        let before = app.caller_event_count().await.unwrap();
        let refused = app.post(&end_path, Some(&me), &json!({})).await.unwrap();
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
        assert_eq!(refused.body["rule"], "vehicle-outside-operating-zone");
        assert_eq!(app.caller_event_count().await.unwrap(), before);
    }

    app.telemetry(&car, SHEREMETYEVO_B, 12_060.0, true)
        .await
        .unwrap();
    let ended = app.post(&end_path, Some(&me), &json!({})).await.unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    let price = &ended.body["price"];
    assert_eq!(price["surcharge_zone"], "Sheremetyevo");
    assert_eq!(price["surcharge_kopecks"], json!(30_000));
    // 40 driving minutes at 9.90 RUB, 60 km within the 70 included, and the airport's 300 RUB.
    assert_eq!(price["total_kopecks"], json!(40 * 990 + 30_000));
}
