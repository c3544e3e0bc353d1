//! `GET /v1/streams/{stream_id}/events`: a stream's stored events with their metadata, for
//! support and auditors only.

use crate::helpers::*;
use http_edge::Role;
use projectors::testing::{RED_SQUARE, at};
use serde_json::json;

#[tokio::test]
async fn auditors_read_a_stream_with_its_metadata_page_by_page() {
    let app = spawn_app().await;
    let ivan = customer();
    let car = app.add_car(1, RED_SQUARE).await;
    let trip = app.start_trip(ivan, car, RED_SQUARE, at(T0)).await;
    app.park(trip, at("2026-11-25T10:07:00Z")).await;
    let stored = app.store.read_stream(&trip.stream_id(), 0).await.unwrap();
    let auditor = app.token(Role::Auditor, "regulator-1");
    let path = format!("/v1/streams/{}/events", trip.stream_id());

    let body = app.get_ok(&path, &auditor).await;
    assert_eq!(body["stream_id"], trip.stream_id());
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    for (event, stored) in events.iter().zip(&stored) {
        assert_eq!(event["position"], stored.position);
        assert_eq!(event["version"], stored.stream_version);
        assert_eq!(event["event_id"], json!(stored.event_id));
        assert_eq!(event["type"], stored.event_type);
        assert_eq!(event["schema_version"], 1);
        assert_eq!(event["data"], stored.data);
        assert_eq!(event["metadata"]["actor"], "service:test");
        assert_eq!(
            event["metadata"]["correlation_id"],
            json!(stored.metadata.correlation_id)
        );
        assert_eq!(
            event["metadata"]["command_id"],
            json!(stored.metadata.command_id)
        );
        assert_eq!(event["metadata"]["causation_id"], json!(null));
        assert_eq!(event["occurred_at"], json!(stored.occurred_at));
        assert_eq!(event["recorded_at"], json!(stored.recorded_at));
    }
    assert_eq!(events[0]["type"], "TripStarted");
    assert_eq!(events[1]["type"], "TripParked");

    // Pages.
    let body = app
        .get_ok(&format!("{path}?after_version=0&limit=1"), &auditor)
        .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    assert_eq!(body["events"][0]["version"], 1);
    let body = app
        .get_ok(&format!("{path}?after_version=1"), &auditor)
        .await;
    assert_eq!(body["events"][0]["version"], 2);
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    for after in [2, 9] {
        let body = app
            .get_ok(&format!("{path}?after_version={after}"), &auditor)
            .await;
        assert_eq!(body["events"], json!([]), "after_version={after}");
    }
    // Support may read it too.
    app.get_ok(&path, &app.token(Role::Support, "agent-7"))
        .await;
}

#[tokio::test]
async fn customers_may_not_read_streams_and_unknown_streams_are_404() {
    let app = spawn_app().await;
    let ivan = customer();
    let car = app.add_car(1, RED_SQUARE).await;
    let trip = app.start_trip(ivan, car, RED_SQUARE, at(T0)).await;
    let path = format!("/v1/streams/{}/events", trip.stream_id());

    let problem = app
        .get_problem(&path, Some(&app.customer_token(ivan)), 403)
        .await;
    assert!(
        problem.detail.contains("support, auditor"),
        "{}",
        problem.detail
    );
    app.get_problem(&path, None, 401).await;

    let auditor = app.token(Role::Auditor, "regulator-1");
    let unknown = app
        .get_problem("/v1/streams/trip-nobody/events", Some(&auditor), 404)
        .await;
    assert_eq!(unknown.rule, "stream-not-found");
    let unknown_later = app
        .get_problem(
            "/v1/streams/trip-nobody/events?after_version=5",
            Some(&auditor),
            404,
        )
        .await;
    assert_eq!(unknown_later.rule, "stream-not-found");
    for (query, field) in [
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("after_version=-1", "after_version"),
        ("after_version=x", "after_version"),
    ] {
        let problem = app
            .get_problem(&format!("{path}?{query}"), Some(&auditor), 422)
            .await;
        assert_eq!(problem.field.as_deref(), Some(field), "{query}");
    }
}
