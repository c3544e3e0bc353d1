//! The NATS entry points, black-box: commands as request/reply on `<prefix>.commands.<name>` get
//! the same validation, authorization and idempotency as HTTP, and telemetry published on
//! `<prefix>.telemetry.<vehicle_id>` becomes events only when it changed meaningfully.

#![allow(clippy::unwrap_used)]

use async_nats::HeaderMap;
use http_edge::Role;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{App, eventually, nats_url};

const CENTRE: (f64, f64) = (55.7600, 37.6200);

async fn client() -> async_nats::Client {
    async_nats::connect(nats_url()).await.unwrap()
}

/// Sends a command and returns the reply `{status, headers, body}`; retries briefly while the
/// server's subscription is being set up.
async fn request(
    client: &async_nats::Client,
    app: &App,
    name: &str,
    headers: &[(&str, &str)],
    payload: Value,
) -> Value {
    let subject = format!("{}.commands.{name}", app.nats_prefix);
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, *v);
    }
    let bytes = serde_json::to_vec(&payload).unwrap();
    eventually(Duration::from_secs(10), || {
        let (subject, map, bytes) = (subject.clone(), map.clone(), bytes.clone());
        async move {
            match tokio::time::timeout(
                Duration::from_secs(2),
                client.request_with_headers(subject, map, bytes.into()),
            )
            .await
            {
                Ok(Ok(reply)) => Ok(Some(serde_json::from_slice::<Value>(&reply.payload)?)),
                // No responders yet: the server is still subscribing.
                _ => Ok(None),
            }
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn commands_over_nats_are_validated_authorized_and_idempotent_like_http() {
    let app = App::spawn().await.unwrap();
    let nats = client().await;
    let customer_id = app.verified_customer(1).await.unwrap();
    let vehicle_id = app.car(1, CENTRE).await.unwrap();
    let token = format!("Bearer {}", app.token(Role::Customer, &customer_id));

    // No token: 401, as over HTTP.
    let anonymous = request(
        &nats,
        &app,
        "start_trip",
        &[],
        json!({"vehicle_id": vehicle_id}),
    )
    .await;
    assert_eq!(anonymous["status"], 401, "{anonymous}");
    assert_eq!(
        anonymous["headers"]["content-type"],
        "application/problem+json"
    );

    // Bad input names the field.
    let bad = request(
        &nats,
        &app,
        "start_trip",
        &[("Authorization", &token)],
        json!({"vehicle_id": "nope"}),
    )
    .await;
    assert_eq!(bad["status"], 400);
    assert_eq!(bad["body"]["field"], "vehicle_id");

    // Started with an idempotency key; the retry returns the first answer and appends nothing.
    let key = [
        ("Authorization", token.as_str()),
        ("Idempotency-Key", "nats-start-1"),
    ];
    let started = request(
        &nats,
        &app,
        "start_trip",
        &key,
        json!({"vehicle_id": vehicle_id}),
    )
    .await;
    assert_eq!(started["status"], 201, "{started}");
    let trip_id = started["body"]["trip_id"].as_str().unwrap().to_owned();
    let events = app.caller_event_count().await.unwrap();
    let retried = request(
        &nats,
        &app,
        "start_trip",
        &key,
        json!({"vehicle_id": vehicle_id}),
    )
    .await;
    assert_eq!(retried["status"], 201);
    assert_eq!(retried["body"], started["body"]);
    assert_eq!(retried["headers"]["idempotent-replayed"], "true");
    assert_eq!(app.caller_event_count().await.unwrap(), events);

    // Path parameters travel in the payload.
    let parked = request(
        &nats,
        &app,
        "park_trip",
        &[("Authorization", &token)],
        json!({"trip_id": trip_id}),
    )
    .await;
    assert_eq!(parked["status"], 200, "{parked}");
    assert_eq!(parked["body"]["status"], "parked");

    // Someone else's trip: 403; a rule: 409 with its name.
    let other = app.verified_customer(2).await.unwrap();
    let other_token = format!("Bearer {}", app.token(Role::Customer, &other));
    let foreign = request(
        &nats,
        &app,
        "resume_trip",
        &[("Authorization", &other_token)],
        json!({"trip_id": trip_id}),
    )
    .await;
    assert_eq!(foreign["status"], 403);
    let twice = request(
        &nats,
        &app,
        "park_trip",
        &[("Authorization", &token)],
        json!({"trip_id": trip_id}),
    )
    .await;
    assert_eq!(twice["status"], 409);
    assert_eq!(twice["body"]["rule"], "trip-already-parked");

    // Unknown commands and missing path parameters are refused by the bridge itself.
    let unknown = request(&nats, &app, "launch_rocket", &[], json!({})).await;
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["body"]["rule"], "unknown-command");
    let no_trip = request(
        &nats,
        &app,
        "park_trip",
        &[("Authorization", &token)],
        json!({}),
    )
    .await;
    assert_eq!(no_trip["status"], 400);
    assert_eq!(no_trip["body"]["field"], "trip_id");
}

#[tokio::test]
async fn telemetry_published_on_nats_becomes_events_only_when_meaningful() {
    let app = App::spawn().await.unwrap();
    let nats = client().await;
    let vehicle_id = app.car(1, CENTRE).await.unwrap();
    let subject = format!("{}.telemetry.{vehicle_id}", app.nats_prefix);
    let auditor = app.token(Role::Auditor, "auditor");
    let history = || async {
        let answer = app
            .get(
                &format!("/v1/streams/vehicle-{vehicle_id}/events"),
                Some(&auditor),
            )
            .await?;
        Ok::<_, anyhow::Error>(
            answer.body["events"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        )
    };

    // A unit reports every second: jitter around the same spot, then a real move, then locking.
    let reading = |lat: f64, locked: bool| {
        serde_json::to_vec(&json!({"lat": lat, "lon": CENTRE.1, "fuel_percent": 80, "odometer_km": 12000.0, "doors_locked": locked})).unwrap()
    };
    // Wait until the bridge listens: a request with a reply subject answers once it does.
    let first = eventually(Duration::from_secs(10), || async {
        match tokio::time::timeout(
            Duration::from_secs(2),
            nats.request(subject.clone(), reading(CENTRE.0, true).into()),
        )
        .await
        {
            Ok(Ok(reply)) => Ok(Some(serde_json::from_slice::<Value>(&reply.payload)?)),
            _ => Ok(None),
        }
    })
    .await
    .unwrap();
    assert_eq!(first["status"], 200, "{first}");
    assert_eq!(
        first["body"]["recorded"], false,
        "the same reading as when the car was added"
    );
    for n in 0..20 {
        let jitter = CENTRE.0 + f64::from(n % 3) * 0.00003;
        nats.publish(subject.clone(), reading(jitter, true).into())
            .await
            .unwrap();
    }
    nats.publish(subject.clone(), reading(CENTRE.0 + 0.001, true).into())
        .await
        .unwrap();
    nats.publish(subject.clone(), reading(CENTRE.0 + 0.001, false).into())
        .await
        .unwrap();
    nats.flush().await.unwrap();

    let events = eventually(Duration::from_secs(10), || async {
        let events = history().await?;
        Ok((events.len() >= 3).then_some(events))
    })
    .await
    .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "VehicleAddedToFleet",
            "TelemetryRecorded",
            "TelemetryRecorded"
        ],
        "jitter recorded nothing"
    );
    assert_eq!(events[1]["metadata"]["actor"], "service:telematics");
    assert_eq!(events[2]["data"]["doors_locked"], false);
}
