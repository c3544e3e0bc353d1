//! The fleet's read models: `vehicles_view` follows a car into service and back (while it has
//! an open service task it is `in_service`, so never listed as available; the release after its
//! last task makes it available again), and `service_tasks_view` follows a task's life.

#![allow(clippy::unwrap_used)]

mod support;

use domain::ids::{ServiceTaskId, VehicleId};
use domain::service_task::{ServiceTaskEvent, ServiceTaskKind, ServiceTaskOpening, StaffId};
use domain::vehicle::VehicleEvent;
use event_store::testing::TestDatabase;
use projectors::testing::*;
use projectors::{Projections, Projector, Shutdown};
use sqlx::Row;
use support::{DEADLINE, fast};
use uuid::Uuid;

async fn status(pool: &sqlx::PgPool, car: VehicleId) -> (String, i64) {
    let row = sqlx::query("SELECT status, stream_version FROM vehicles_view WHERE vehicle_id = $1")
        .bind(car.0)
        .fetch_one(pool)
        .await
        .unwrap();
    (row.get("status"), row.get("stream_version"))
}

#[tokio::test]
async fn a_car_is_in_service_while_it_has_open_tasks() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let car = VehicleId(Uuid::now_v7());
    let stream = car.stream_id();
    let (wash, refuel) = (ServiceTaskId(Uuid::now_v7()), ServiceTaskId(Uuid::now_v7()));
    let t0 = at("2026-11-25T09:00:00Z");
    Append::at(t0)
        .events(&stream, &[vehicle_added(car, 1, RED_SQUARE, 1_000, t0)])
        .commit(&store)
        .await;
    let sent = |task_id, kind| VehicleEvent::VehicleSentToService {
        vehicle_id: car,
        task_id,
        kind,
        sent_at: at("2026-11-25T09:10:00Z"),
    };
    Append::at(at("2026-11-25T09:10:00Z"))
        .events(
            &stream,
            &[
                sent(wash, ServiceTaskKind::Wash),
                sent(refuel, ServiceTaskKind::Refuel),
            ],
        )
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    assert_eq!(status(db.pool(), car).await, ("in_service".to_owned(), 3));

    let closed = |task_id| VehicleEvent::VehicleServiceTaskClosed {
        vehicle_id: car,
        task_id,
        closed_at: at("2026-11-25T09:40:00Z"),
    };
    Append::at(at("2026-11-25T09:40:00Z"))
        .events(&stream, &[closed(wash)])
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    assert_eq!(status(db.pool(), car).await, ("in_service".to_owned(), 4));

    Append::at(at("2026-11-25T10:00:00Z"))
        .events(
            &stream,
            &[
                closed(refuel),
                VehicleEvent::VehicleReleasedFromService {
                    vehicle_id: car,
                    released_at: at("2026-11-25T10:00:00Z"),
                },
            ],
        )
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    assert_eq!(status(db.pool(), car).await, ("available".to_owned(), 6));
    let updated: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT updated_at FROM vehicles_view WHERE vehicle_id = $1")
            .bind(car.0)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(updated, at("2026-11-25T10:00:00Z"));
    shutdown.trigger();
    running.stopped().await;
}

#[tokio::test]
async fn a_task_row_follows_the_task_and_a_replay_changes_nothing() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let task = ServiceTaskId(Uuid::now_v7());
    let car = VehicleId(Uuid::now_v7());
    let stream = task.stream_id();
    let staff = StaffId::parse("staff_id", "fleet-7").unwrap();
    let opened_at = at("2026-11-25T09:00:00Z");
    let history = [
        ServiceTaskEvent::ServiceTaskOpened {
            opening: ServiceTaskOpening {
                task_id: task,
                vehicle_id: car,
                kind: ServiceTaskKind::Repair,
                note: Some("Left mirror cracked".to_owned()),
                after_trip_id: None,
            },
            opened_at,
        },
        ServiceTaskEvent::ServiceTaskAssigned {
            task_id: task,
            staff_id: staff.clone(),
            assigned_at: at("2026-11-25T09:05:00Z"),
        },
        ServiceTaskEvent::ServiceTaskStarted {
            task_id: task,
            staff_id: staff.clone(),
            started_at: at("2026-11-25T09:30:00Z"),
        },
        ServiceTaskEvent::ServiceTaskCompleted {
            task_id: task,
            vehicle_id: car,
            staff_id: staff,
            note: None,
            completed_at: at("2026-11-25T10:30:00Z"),
        },
    ];
    let row = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, serde_json::Value>(
            "SELECT to_jsonb(t) - 'task_id' - 'vehicle_id' FROM service_tasks_view t
             WHERE task_id = $1",
        )
        .bind(task.0)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    Append::at(opened_at)
        .events(&stream, &history[..2])
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let assigned = row(db.pool().clone()).await;
    assert_eq!(assigned["status"], "assigned");
    assert_eq!(assigned["staff_id"], "fleet-7");
    assert_eq!(assigned["note"], "Left mirror cracked");
    assert_eq!(assigned["stream_version"], 2);

    Append::at(at("2026-11-25T10:30:00Z"))
        .events(&stream, &history[2..])
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let completed = row(db.pool().clone()).await;
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["kind"], "repair");
    assert_eq!(completed["stream_version"], 4);
    assert_eq!(completed["completion_note"], serde_json::Value::Null);
    shutdown.trigger();
    running.stopped().await;

    // Applying the old events again (a rebuild over existing rows) leaves the row as it is.
    let mut conn = db.pool().acquire().await.unwrap();
    for event in support::log(&store).await {
        if event.stream_id == stream {
            projectors::ServiceTasksProjector
                .apply(&mut conn, &[&event])
                .await
                .unwrap();
        }
    }
    drop(conn);
    assert_eq!(row(db.pool().clone()).await, completed);
}
