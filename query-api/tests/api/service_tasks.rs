//! `GET /v1/service-tasks/{task_id}`: a task through its life, who may read it, and bad ids.

use crate::helpers::*;
use domain::ids::{ServiceTaskId, TripId};
use domain::service_task::{ServiceTaskEvent, ServiceTaskKind, ServiceTaskOpening, StaffId};
use http_edge::Role;
use projectors::testing::{Append, RED_SQUARE, at};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn fleet_support_and_auditors_follow_a_task_from_open_to_completed() {
    let app = spawn_app().await;
    let car = app.add_car(1, RED_SQUARE).await;
    let task = ServiceTaskId(Uuid::now_v7());
    let trip = TripId(Uuid::now_v7());
    let stream = task.stream_id();
    let opened_at = at("2026-11-25T10:17:00Z");
    Append::at(opened_at)
        .events(
            &stream,
            &[ServiceTaskEvent::ServiceTaskOpened {
                opening: ServiceTaskOpening {
                    task_id: task,
                    vehicle_id: car,
                    kind: ServiceTaskKind::Refuel,
                    note: Some("fuel at 12 % after the trip, below 20 %".to_owned()),
                    after_trip_id: Some(trip),
                },
                opened_at,
            }],
        )
        .commit(&app.store)
        .await;
    app.caught_up().await;
    let path = format!("/v1/service-tasks/{task}");
    let fleet = app.token(Role::Fleet, "fleet-7");
    let body = app.get_ok(&path, &fleet).await;
    assert_eq!(body["status"], "open");
    assert_eq!(body["kind"], "refuel");
    assert_eq!(body["vehicle_id"], json!(car));
    assert_eq!(body["after_trip_id"], json!(trip));
    assert_eq!(body["staff_id"], json!(null));

    let staff = StaffId::parse("staff_id", "fleet-7").unwrap();
    let done_at = at("2026-11-25T11:00:00Z");
    Append::at(done_at)
        .events(
            &stream,
            &[
                ServiceTaskEvent::ServiceTaskAssigned {
                    task_id: task,
                    staff_id: staff.clone(),
                    assigned_at: at("2026-11-25T10:20:00Z"),
                },
                ServiceTaskEvent::ServiceTaskStarted {
                    task_id: task,
                    staff_id: staff.clone(),
                    started_at: at("2026-11-25T10:40:00Z"),
                },
                ServiceTaskEvent::ServiceTaskCompleted {
                    task_id: task,
                    vehicle_id: car,
                    staff_id: staff,
                    note: Some("Filled up, 45 l".to_owned()),
                    completed_at: done_at,
                },
            ],
        )
        .commit(&app.store)
        .await;
    app.caught_up().await;
    for role in [Role::Fleet, Role::Support, Role::Auditor] {
        let body = app.get_ok(&path, &app.token(role, "agent-7")).await;
        assert_eq!(body["status"], "completed", "{role}");
        assert_eq!(body["staff_id"], "fleet-7");
        assert_eq!(body["completion_note"], "Filled up, 45 l");
        assert_eq!(body["completed_at"], "2026-11-25T11:00:00Z");
    }

    let customer = app.customer_token(customer());
    let forbidden = app.get_problem(&path, Some(&customer), 403).await;
    assert_eq!(forbidden.rule, "forbidden");
    app.get_problem(&path, None, 401).await;
}

#[tokio::test]
async fn an_unknown_task_is_404_and_a_malformed_id_names_task_id() {
    let app = spawn_app().await;
    let fleet = app.token(Role::Fleet, "fleet-7");
    let unknown = app
        .get_problem(
            &format!("/v1/service-tasks/{}", Uuid::now_v7()),
            Some(&fleet),
            404,
        )
        .await;
    assert_eq!(unknown.rule, "service-task-not-found");
    let malformed = app
        .get_problem("/v1/service-tasks/not-a-uuid", Some(&fleet), 422)
        .await;
    assert_eq!(malformed.field.as_deref(), Some("task_id"));
}
