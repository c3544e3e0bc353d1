//! A customer sees and touches only their own data: another customer's token, given the ids of
//! Anna's trip, reservation, account and history, is refused on every customer route (403, or
//! 404 where an id's existence is not the caller's business), and nothing is appended.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use tests::{App, eventually};

const CENTRE: (f64, f64) = (55.7600, 37.6200);

#[tokio::test]
async fn another_customers_ids_are_refused_on_every_customer_route() {
    let app = App::spawn().await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let boris = app.verified_customer(2).await.unwrap();
    let annas = app.token(Role::Customer, &anna);
    let boriss = app.token(Role::Customer, &boris);
    let car = app.car(1, CENTRE).await.unwrap();
    let other_car = app.car(2, CENTRE).await.unwrap();

    // Anna's trip in car 1 (running) and, before it, a reservation of car 2 she cancelled.
    let reserved = app
        .post(
            "/v1/reservations",
            Some(&annas),
            &json!({"vehicle_id": other_car}),
        )
        .await
        .unwrap();
    assert_eq!(reserved.status, StatusCode::CREATED, "{}", reserved.body);
    let reservation_id = reserved.str("reservation_id");
    let cancelled = app
        .post(
            &format!("/v1/reservations/{reservation_id}/cancel"),
            Some(&annas),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let started = app
        .post("/v1/trips", Some(&annas), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_id = started.str("trip_id");
    // Her own reads work (once the read models have her data).
    for path in [
        format!("/v1/trips/{trip_id}"),
        format!("/v1/reservations/{reservation_id}"),
        format!("/v1/accounts/{anna}"),
        format!("/v1/customers/{anna}/trips"),
    ] {
        eventually(Duration::from_secs(10), || async {
            let answer = app.get(&path, Some(&annas)).await?;
            Ok((answer.status == StatusCode::OK).then_some(()))
        })
        .await
        .unwrap();
    }

    let before = app.caller_event_count().await.unwrap();
    let reads = [
        format!("/v1/trips/{trip_id}"),
        format!("/v1/reservations/{reservation_id}"),
        format!("/v1/accounts/{anna}"),
        format!("/v1/accounts/customer:{anna}"),
        format!("/v1/customers/{anna}/trips"),
        format!("/v1/support/customers/{anna}"),
        format!("/v1/streams/customer-{anna}/events"),
        format!("/v1/streams/trip-{trip_id}/events"),
        format!("/v1/vehicles/{car}/holder?at=2026-11-26T00:00:00Z"),
        "/v1/support/search?q=%2B79161234567".to_owned(),
    ];
    for path in &reads {
        let answer = app.get(path, Some(&boriss)).await.unwrap();
        assert!(
            matches!(answer.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "GET {path} answered {}: {}",
            answer.status,
            answer.body
        );
        assert_eq!(answer.content_type(), "application/problem+json", "{path}");
    }
    let writes = [
        (format!("/v1/trips/{trip_id}/park"), json!({})),
        (format!("/v1/trips/{trip_id}/resume"), json!({})),
        (format!("/v1/trips/{trip_id}/end"), json!({})),
        (
            format!("/v1/reservations/{reservation_id}/cancel"),
            json!({}),
        ),
        (
            format!("/v1/customers/{anna}/documents"),
            json!({"passport": {"series": "4510", "number": "123456",
                                "issued_on": "2015-01-01", "issued_by": "ОВД"},
                   "licence": {"number": "77 01 123456", "issued_on": "2015-06-01",
                               "expires_on": "2035-06-01", "categories": ["B"]},
                   "birth_date": "1990-04-12"}),
        ),
        (
            format!("/v1/vehicles/{car}/damage-reports"),
            json!({"description": "Scratched door", "trip_id": trip_id,
                   "photo_urls": ["https://photos.example/1.jpg"]}),
        ),
        (
            format!("/v1/customers/{anna}/verification"),
            json!({"decision": "rejected", "reason": "x"}),
        ),
    ];
    for (path, body) in &writes {
        let answer = app
            .send(Method::POST, path, Some(&boriss), &[], Some(body))
            .await
            .unwrap();
        assert!(
            matches!(answer.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "POST {path} answered {}: {}",
            answer.status,
            answer.body
        );
        assert_eq!(answer.content_type(), "application/problem+json", "{path}");
    }
    assert_eq!(app.caller_event_count().await.unwrap(), before);
}
