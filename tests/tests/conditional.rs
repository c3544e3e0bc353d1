//! Polled reads are conditional: an answer carries an `ETag`; sending it back in `If-None-Match`
//! gets an empty 304 while nothing changed, and the new state with a new tag once it has.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tests::{App, eventually};

const CENTRE: (f64, f64) = (55.7600, 37.6200);

#[tokio::test]
async fn a_polled_trip_answers_304_until_it_changes() {
    let app = App::spawn().await.unwrap();
    let customer = app.verified_customer(1).await.unwrap();
    let me = app.token(Role::Customer, &customer);
    let car = app.car(1, CENTRE).await.unwrap();
    let started = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": car}))
        .await
        .unwrap();
    let trip = format!("/v1/trips/{}", started.str("trip_id"));
    let first = eventually(Duration::from_secs(10), || async {
        let answer = app.get(&trip, Some(&me)).await?;
        Ok((answer.status == StatusCode::OK).then_some(answer))
    })
    .await
    .unwrap();
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    assert_eq!(first.headers["cache-control"], "private, no-cache");
    assert_eq!(first.headers["vary"], "Authorization");

    let conditional = |tag: String| {
        let (app, me, trip) = (&app, &me, &trip);
        async move {
            app.send(
                Method::GET,
                trip,
                Some(me),
                &[("if-none-match", tag.as_str())],
                None,
            )
            .await
            .unwrap()
        }
    };
    let unchanged = conditional(etag.clone()).await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.body, Value::Null);
    assert_eq!(unchanged.headers["etag"].to_str().unwrap(), etag);
    // Another tag is not this answer: the whole body comes back.
    let other = conditional("\"something-else\"".to_owned()).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, first.body);

    // Parked: the state changed, so the old tag gets the new answer and a new tag.
    let parked = app
        .post(&format!("{trip}/park"), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(parked.status, StatusCode::OK, "{}", parked.body);
    let changed = eventually(Duration::from_secs(10), || async {
        let answer = conditional(etag.clone()).await;
        Ok((answer.status == StatusCode::OK).then_some(answer))
    })
    .await
    .unwrap();
    assert_eq!(changed.body["status"], "parked");
    assert_ne!(changed.headers["etag"].to_str().unwrap(), etag);
}
