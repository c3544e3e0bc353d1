//! Fleet operations over HTTP: service tasks take a car out of rotation until the last one is
//! completed, a low tank after a trip opens a refuel task by itself, and damage reports with
//! photo URLs — each route's happy path, a refusal that appends nothing, and the wrong role.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{App, eventually};

/// Tverskaya street, inside the operating area.
const TVERSKAYA: (f64, f64) = (55.7648, 37.6056);

/// Whether the car is listed as available near Tverskaya, once the read model has caught up
/// with `want`.
async fn listed_becomes(app: &App, vehicle_id: &str, want: bool) {
    let token = app.token(Role::Fleet, "fleet-1");
    eventually(Duration::from_secs(10), || async {
        let answer = app
            .get(
                "/v1/vehicles/available?lat=55.7648&lon=37.6056&radius_m=500",
                Some(&token),
            )
            .await?;
        let listed = answer.body["vehicles"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .any(|v| v["vehicle_id"] == json!(vehicle_id));
        Ok((listed == want).then_some(()))
    })
    .await
    .unwrap();
}

async fn stream_events(app: &App, stream_id: &str) -> Vec<Value> {
    let auditor = app.token(Role::Auditor, "auditor-1");
    let answer = app
        .get(&format!("/v1/streams/{stream_id}/events"), Some(&auditor))
        .await
        .unwrap();
    answer.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_car_in_service_cannot_be_rented_until_its_last_task_is_completed() {
    let app = App::spawn().await.unwrap();
    let vehicle_id = app.car(1, TVERSKAYA).await.unwrap();
    let customer_id = app.verified_customer(1).await.unwrap();
    let me = app.token(Role::Customer, &customer_id);
    let dispatcher = app.token(Role::Fleet, "dispatcher-1");
    let washer = app.token(Role::Fleet, "fleet-7");
    let other_staff = app.token(Role::Fleet, "fleet-9");
    let support = app.token(Role::Support, "agent-7");
    listed_becomes(&app, &vehicle_id, true).await;

    // Open two tasks on the car.
    let tasks_path = format!("/v1/vehicles/{vehicle_id}/service-tasks");
    let forbidden = app
        .post(&tasks_path, Some(&me), &json!({"kind": "wash"}))
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let wash = app
        .post(
            &tasks_path,
            Some(&dispatcher),
            &json!({"kind": "wash", "note": "Mud on the doors"}),
        )
        .await
        .unwrap();
    assert_eq!(wash.status, StatusCode::CREATED, "{}", wash.body);
    assert_eq!(wash.body["vehicle_status"], "in_service");
    let wash_id = wash.str("task_id");
    let relocate = app
        .post(&tasks_path, Some(&dispatcher), &json!({"kind": "relocate"}))
        .await
        .unwrap();
    assert_eq!(relocate.status, StatusCode::CREATED, "{}", relocate.body);
    let relocate_id = relocate.str("task_id");
    listed_becomes(&app, &vehicle_id, false).await;

    // Nobody can take it now.
    let before = app.caller_event_count().await.unwrap();
    let start = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::CONFLICT, "{}", start.body);
    assert_eq!(start.body["rule"], "vehicle-not-available");
    let bad_kind = app
        .post(&tasks_path, Some(&dispatcher), &json!({"kind": "paint"}))
        .await
        .unwrap();
    assert_eq!(bad_kind.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_kind.body["field"], "kind");
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    // Assign, start and complete the wash; refusals along the way append nothing.
    let task = |id: &str, step: &str| format!("/v1/service-tasks/{id}/{step}");
    let early = app
        .post(&task(&wash_id, "start"), Some(&washer), &json!({}))
        .await
        .unwrap();
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.body["rule"], "service-task-not-assigned");
    let forbidden = app
        .post(
            &task(&wash_id, "assign"),
            Some(&support),
            &json!({"staff_id": "fleet-7"}),
        )
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(app.caller_event_count().await.unwrap(), before);
    let assigned = app
        .post(
            &task(&wash_id, "assign"),
            Some(&dispatcher),
            &json!({"staff_id": "fleet-7"}),
        )
        .await
        .unwrap();
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    assert_eq!(assigned.body["status"], "assigned");
    let before = app.caller_event_count().await.unwrap();
    let twice = app
        .post(
            &task(&wash_id, "assign"),
            Some(&dispatcher),
            &json!({"staff_id": "fleet-7"}),
        )
        .await
        .unwrap();
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.body["rule"], "service-task-already-assigned");
    let not_theirs = app
        .post(&task(&wash_id, "start"), Some(&other_staff), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        not_theirs.status,
        StatusCode::FORBIDDEN,
        "{}",
        not_theirs.body
    );
    assert_eq!(not_theirs.body["rule"], "service-task-assigned-to-another");
    let forbidden = app
        .post(&task(&wash_id, "start"), Some(&support), &json!({}))
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let unknown = app
        .post(
            &task(&uuid::Uuid::now_v7().to_string(), "start"),
            Some(&washer),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["rule"], "service-task-not-found");
    let too_soon = app
        .post(&task(&wash_id, "complete"), Some(&washer), &json!({}))
        .await
        .unwrap();
    assert_eq!(too_soon.status, StatusCode::CONFLICT);
    assert_eq!(too_soon.body["rule"], "service-task-not-started");
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    let started = app
        .post(&task(&wash_id, "start"), Some(&washer), &json!({}))
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    assert_eq!(started.body["status"], "in_progress");
    let forbidden = app
        .post(&task(&wash_id, "complete"), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let done = app
        .post(
            &task(&wash_id, "complete"),
            Some(&washer),
            &json!({"note": "Washed"}),
        )
        .await
        .unwrap();
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["status"], "completed");
    assert_eq!(
        done.body["vehicle_status"], "in_service",
        "the relocation is still open"
    );
    let again = app
        .post(&task(&wash_id, "complete"), Some(&washer), &json!({}))
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["rule"], "service-task-already-completed");

    // The last open task done, the car is back in rotation.
    for step in ["assign", "start", "complete"] {
        let body = if step == "assign" {
            json!({"staff_id": "fleet-9"})
        } else {
            json!({})
        };
        let token = if step == "assign" {
            &dispatcher
        } else {
            &other_staff
        };
        let answer = app
            .post(&task(&relocate_id, step), Some(token), &body)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{step}: {}", answer.body);
    }
    listed_becomes(&app, &vehicle_id, true).await;
    let start = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::CREATED, "{}", start.body);

    // A car in a trip cannot be sent to service.
    let before = app.caller_event_count().await.unwrap();
    let busy = app
        .post(&tasks_path, Some(&dispatcher), &json!({"kind": "repair"}))
        .await
        .unwrap();
    assert_eq!(busy.status, StatusCode::CONFLICT, "{}", busy.body);
    assert_eq!(busy.body["rule"], "vehicle-in-use");
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    // Fleet staff read the task from its read model; a customer may not.
    let read = eventually(Duration::from_secs(10), || async {
        let answer = app
            .get(&format!("/v1/service-tasks/{wash_id}"), Some(&dispatcher))
            .await?;
        Ok(
            (answer.status == StatusCode::OK && answer.body["status"] == "completed")
                .then_some(answer.body),
        )
    })
    .await
    .unwrap();
    assert_eq!(read["staff_id"], "fleet-7");
    assert_eq!(read["kind"], "wash");
    assert_eq!(read["note"], "Mud on the doors");
    assert_eq!(read["completion_note"], "Washed");
    let forbidden = app
        .get(&format!("/v1/service-tasks/{wash_id}"), Some(&me))
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    // The task's history names who did what.
    let history = stream_events(&app, &format!("service_task-{wash_id}")).await;
    let actors: Vec<(&str, &str)> = history
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["metadata"]["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actors,
        [
            ("ServiceTaskOpened", "fleet:dispatcher-1"),
            ("ServiceTaskAssigned", "fleet:dispatcher-1"),
            ("ServiceTaskStarted", "fleet:fleet-7"),
            ("ServiceTaskCompleted", "fleet:fleet-7"),
        ]
    );
}

#[tokio::test]
async fn a_trip_ended_with_a_low_tank_sends_the_car_to_refuel_in_the_same_append() {
    let app = App::spawn().await.unwrap();
    let vehicle_id = app.car(1, TVERSKAYA).await.unwrap();
    let customer_id = app.verified_customer(1).await.unwrap();
    let other_id = app.verified_customer(2).await.unwrap();
    let me = app.token(Role::Customer, &customer_id);
    let trip = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap();
    let trip_id = trip.str("trip_id");
    let unit = app.token(Role::Service, "telematics");
    let reading = app
        .post(
            &format!("/v1/vehicles/{vehicle_id}/telemetry"),
            Some(&unit),
            &json!({"lat": TVERSKAYA.0, "lon": TVERSKAYA.1, "fuel_percent": 12,
                    "odometer_km": 12010.0, "doors_locked": true}),
        )
        .await
        .unwrap();
    assert_eq!(reading.status, StatusCode::OK, "{}", reading.body);
    app.advance_clock(600).await.unwrap();
    let ended = app
        .post(&format!("/v1/trips/{trip_id}/end"), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);

    let car = stream_events(&app, &format!("vehicle-{vehicle_id}")).await;
    let last_two: Vec<&Value> = car.iter().rev().take(2).rev().collect();
    assert_eq!(last_two[0]["type"], "VehicleReturned");
    assert_eq!(last_two[1]["type"], "VehicleSentToService");
    assert_eq!(last_two[1]["data"]["kind"], "refuel");
    assert_eq!(
        last_two[0]["metadata"]["command_id"], last_two[1]["metadata"]["command_id"],
        "one command, one append"
    );
    let task_id = last_two[1]["data"]["task_id"].as_str().unwrap().to_owned();
    let task = stream_events(&app, &format!("service_task-{task_id}")).await;
    assert_eq!(task.len(), 1);
    assert_eq!(task[0]["data"]["after_trip_id"], json!(trip_id));
    assert_eq!(
        task[0]["metadata"]["command_id"],
        last_two[0]["metadata"]["command_id"]
    );

    let other = app.token(Role::Customer, &other_id);
    let refused = app
        .post(
            "/v1/trips",
            Some(&other),
            &json!({"vehicle_id": vehicle_id}),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["rule"], "vehicle-not-available");
}

#[tokio::test]
async fn damage_is_reported_with_https_photos_by_the_driver_or_by_staff() {
    let app = App::spawn().await.unwrap();
    let vehicle_id = app.car(1, TVERSKAYA).await.unwrap();
    let customer_id = app.verified_customer(1).await.unwrap();
    let stranger_id = app.verified_customer(2).await.unwrap();
    let me = app.token(Role::Customer, &customer_id);
    let stranger = app.token(Role::Customer, &stranger_id);
    let path = format!("/v1/vehicles/{vehicle_id}/damage-reports");
    let report = json!({
        "description": "Scratch on the rear bumper, left side",
        "photo_urls": ["https://photos.velka.example/d/1.jpg", "https://photos.velka.example/d/2.jpg"],
    });
    let trip_id = app
        .post("/v1/trips", Some(&me), &json!({"vehicle_id": vehicle_id}))
        .await
        .unwrap()
        .str("trip_id");

    // Refusals append nothing.
    let before = app.caller_event_count().await.unwrap();
    let not_theirs = app.post(&path, Some(&stranger), &report).await.unwrap();
    assert_eq!(
        not_theirs.status,
        StatusCode::FORBIDDEN,
        "{}",
        not_theirs.body
    );
    assert_eq!(not_theirs.body["rule"], "vehicle-not-rented-by-customer");
    let mut plain_http = report.clone();
    plain_http["photo_urls"][1] = json!("http://photos.velka.example/d/2.jpg");
    let insecure = app.post(&path, Some(&me), &plain_http).await.unwrap();
    assert_eq!(
        insecure.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        insecure.body
    );
    assert_eq!(insecure.body["field"], "photo_urls[1]");
    let mut no_photos = report.clone();
    no_photos["photo_urls"] = json!([]);
    let answer = app.post(&path, Some(&me), &no_photos).await.unwrap();
    assert_eq!(answer.body["field"], "photo_urls");
    let auditor = app.token(Role::Auditor, "auditor-1");
    let forbidden = app.post(&path, Some(&auditor), &report).await.unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    let filed = app.post(&path, Some(&me), &report).await.unwrap();
    assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.body);
    assert_eq!(
        filed.body["trip_id"],
        json!(trip_id),
        "tied to the current trip"
    );
    let report_id = filed.str("report_id");
    let stored = stream_events(&app, &format!("damage_report-{report_id}")).await;
    assert_eq!(stored[0]["type"], "DamageReported");
    assert_eq!(stored[0]["data"]["photo_urls"], report["photo_urls"]);

    // Fleet staff may report on any car, naming the trip; a trip of another car is refused.
    let fleet = app.token(Role::Fleet, "fleet-7");
    let mut by_staff = report.clone();
    by_staff["trip_id"] = json!(trip_id);
    let filed = app.post(&path, Some(&fleet), &by_staff).await.unwrap();
    assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.body);
    let other_car = app.car(2, TVERSKAYA).await.unwrap();
    let wrong_car = app
        .post(
            &format!("/v1/vehicles/{other_car}/damage-reports"),
            Some(&fleet),
            &by_staff,
        )
        .await
        .unwrap();
    assert_eq!(wrong_car.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_car.body["field"], "trip_id");
}
