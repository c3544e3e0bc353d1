//! Reservations under concurrency, over HTTP against the real binary: when 50 customers race to
//! reserve one car, exactly one wins and the log agrees; when one customer races to reserve 50
//! cars, they get exactly one.

#![allow(clippy::unwrap_used)]

use futures::future::join_all;
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use tests::{App, sqlx_scalar};

const RACERS: u32 = 50;
const CENTRE: (f64, f64) = (55.7600, 37.6200);

fn tally(answers: &[tests::Answer]) -> BTreeMap<(u16, String), usize> {
    let mut counts = BTreeMap::new();
    for answer in answers {
        let rule = answer.body["rule"].as_str().unwrap_or("").to_owned();
        *counts.entry((answer.status.as_u16(), rule)).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_customers_race_to_reserve_one_car_and_exactly_one_wins() {
    let app = App::spawn().await.unwrap();
    let vehicle_id = app.car(1, CENTRE).await.unwrap();
    let mut tokens = Vec::new();
    for n in 0..RACERS {
        let customer_id = app.verified_customer(100 + n).await.unwrap();
        tokens.push(app.token(Role::Customer, &customer_id));
    }

    let body = json!({ "vehicle_id": vehicle_id });
    let answers = join_all(
        tokens
            .iter()
            .map(|token| app.post("/v1/reservations", Some(token), &body)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .unwrap();

    let won = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(won, 1, "{:?}", tally(&answers));
    for lost in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        assert_eq!(lost.status, StatusCode::CONFLICT, "{}", lost.body);
        assert_eq!(lost.body["rule"], "vehicle-not-available", "{}", lost.body);
    }
    for (event_type, expected) in [("ReservationMade", 1), ("VehicleReserved", 1)] {
        let count = sqlx_scalar(
            &app,
            &format!("SELECT count(*) FROM events WHERE event_type = '{event_type}'"),
        )
        .await
        .unwrap();
        assert_eq!(count, expected, "{event_type}");
    }
    let claims = sqlx_scalar(
        &app,
        "SELECT count(*) FROM exclusive_claims WHERE claim LIKE 'active-reservation:vehicle:%'",
    )
    .await
    .unwrap();
    assert_eq!(claims, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_customer_races_to_reserve_fifty_cars_and_holds_exactly_one() {
    let app = App::spawn().await.unwrap();
    let customer_id = app.verified_customer(1).await.unwrap();
    let token = app.token(Role::Customer, &customer_id);
    let mut cars = Vec::new();
    for n in 0..RACERS {
        cars.push(app.car(200 + n, CENTRE).await.unwrap());
    }

    let bodies: Vec<_> = cars.iter().map(|id| json!({ "vehicle_id": id })).collect();
    let answers = join_all(
        bodies
            .iter()
            .map(|body| app.post("/v1/reservations", Some(&token), body)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .unwrap();

    let won = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(won, 1, "{:?}", tally(&answers));
    for lost in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        assert_eq!(lost.status, StatusCode::CONFLICT, "{}", lost.body);
        assert_eq!(
            lost.body["rule"], "customer-has-active-reservation",
            "{}",
            lost.body
        );
    }
    let reserved = sqlx_scalar(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'VehicleReserved'",
    )
    .await
    .unwrap();
    assert_eq!(reserved, 1);
}
