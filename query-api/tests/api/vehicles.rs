//! `GET /v1/vehicles/available`: available cars within a radius, nearest first, and parameters
//! checked one by one.

use crate::helpers::*;
use http_edge::Role;
use projectors::testing::{RED_SQUARE, TripEnd, at, offset};
use serde_json::Value;

fn ids(body: &Value) -> Vec<String> {
    body["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|car| car["vehicle_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn available_cars_are_listed_nearest_first_without_rented_or_distant_ones() {
    let app = spawn_app().await;
    let ivan = customer();
    let north_100 = app.add_car(1, offset(RED_SQUARE, 100.0, 0.0)).await;
    let east_300 = app.add_car(2, offset(RED_SQUARE, 0.0, 300.0)).await;
    let south_west_700 = app.add_car(3, offset(RED_SQUARE, -495.0, -495.0)).await;
    let far_2000 = app.add_car(4, offset(RED_SQUARE, 2_000.0, 0.0)).await;
    let rented_50 = app.add_car(5, offset(RED_SQUARE, 0.0, 50.0)).await;
    let returned_200 = app.add_car(6, offset(RED_SQUARE, -200.0, 0.0)).await;
    app.start_trip(ivan, rented_50, offset(RED_SQUARE, 0.0, 50.0), at(T0))
        .await;
    let olga = customer();
    let trip = app
        .start_trip(olga, returned_200, offset(RED_SQUARE, -200.0, 0.0), at(T0))
        .await;
    app.end_trip(
        trip,
        olga,
        returned_200,
        TripEnd {
            position: offset(RED_SQUARE, -200.0, 0.0),
            start_odometer_m: ODOMETER_M,
            end_odometer_m: ODOMETER_M,
            ended_at: at("2026-11-25T10:05:00Z"),
            driving_s: 300,
            parking_s: 0,
        },
    )
    .await;
    app.caught_up().await;
    let token = app.customer_token(ivan);
    let near = |query: &str| {
        format!(
            "/v1/vehicles/available?lat={}&lon={}{query}",
            RED_SQUARE.lat, RED_SQUARE.lon
        )
    };

    let body = app.get_ok(&near(""), &token).await;
    assert_eq!(
        ids(&body),
        [north_100, returned_200, east_300, south_west_700].map(|id| id.to_string())
    );
    let first = &body["vehicles"][0];
    assert_eq!(first["plate"], "А001ВС777");
    assert_eq!(first["model"], "Kia Rio");
    assert_eq!(first["fuel_percent"], 80);
    let distance_m = first["distance_m"].as_f64().unwrap();
    assert!((distance_m - 100.0).abs() < 0.5, "{distance_m}");
    let distances: Vec<f64> = body["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|car| car["distance_m"].as_f64().unwrap())
        .collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");

    let body = app.get_ok(&near("&radius_m=150"), &token).await;
    assert_eq!(ids(&body), [north_100.to_string()]);
    let body = app.get_ok(&near("&radius_m=5000&limit=2"), &token).await;
    assert_eq!(
        ids(&body),
        [north_100, returned_200].map(|id| id.to_string())
    );
    let body = app.get_ok(&near("&radius_m=5000"), &token).await;
    assert!(ids(&body).contains(&far_2000.to_string()));
    assert!(!ids(&body).contains(&rented_50.to_string()));

    // Any signed-in caller may ask; no one else.
    app.get_ok(&near(""), &app.token(Role::Service, "partner-feed"))
        .await;
    app.get_problem(&near(""), None, 401).await;
}

#[tokio::test]
async fn bad_parameters_are_422_problems_naming_the_parameter() {
    let app = spawn_app().await;
    let token = app.customer_token(customer());
    let cases = [
        ("lon=37.6", "lat"),
        ("lat=55.7", "lon"),
        ("lat=91&lon=37.6", "lat"),
        ("lat=-90.5&lon=37.6", "lat"),
        ("lat=55.7&lon=180.1", "lon"),
        ("lat=55.7&lon=east", "lon"),
        ("lat=NaN&lon=37.6", "lat"),
        ("lat=55.7&lon=37.6&radius_m=0", "radius_m"),
        ("lat=55.7&lon=37.6&radius_m=50001", "radius_m"),
        ("lat=55.7&lon=37.6&radius_m=1.5", "radius_m"),
        ("lat=55.7&lon=37.6&limit=0", "limit"),
        ("lat=55.7&lon=37.6&limit=201", "limit"),
        ("lat=55.7&lon=37.6&limit=10&limit=20", "limit"),
    ];
    for (query, field) in cases {
        let problem = app
            .get_problem(
                &format!("/v1/vehicles/available?{query}"),
                Some(&token),
                422,
            )
            .await;
        assert_eq!(
            problem.field.as_deref(),
            Some(field),
            "{query}: {problem:?}"
        );
        assert_eq!(problem.rule, "invalid-field");
    }
    // The edges of every range are accepted.
    for query in [
        "lat=90&lon=180&radius_m=50000&limit=200",
        "lat=-90&lon=-180&radius_m=1&limit=1",
    ] {
        app.get_ok(&format!("/v1/vehicles/available?{query}"), &token)
            .await;
    }
}
