//! `service_tasks_view`: one row per service task — its car, kind, status and who has it — for
//! fleet staff working through their tasks and for support.

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use crate::view::{Guarded, View};
use domain::service_task::ServiceTaskEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

/// Writes `service_tasks_view` from the `service_task` streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServiceTasksProjector;

impl Projector for ServiceTasksProjector {
    fn name(&self) -> &'static str {
        "service_tasks_view"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["service_tasks_view"]
    }

    fn categories(&self) -> &'static [&'static str] {
        &[domain::ids::ServiceTaskId::CATEGORY]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

async fn apply(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let task_event: ServiceTaskEvent = decode_event(event)?;
    let (task_id, written) = match &task_event {
        ServiceTaskEvent::ServiceTaskOpened { opening, opened_at } => {
            let written = sqlx::query(
                "INSERT INTO service_tasks_view (task_id, vehicle_id, kind, status, note,
                     after_trip_id, opened_at, updated_at, stream_version)
                 VALUES ($1, $2, $3, 'open', $4, $5, $6, $6, $7)
                 ON CONFLICT (task_id) DO NOTHING",
            )
            .bind(opening.task_id.0)
            .bind(opening.vehicle_id.0)
            .bind(opening.kind.as_str())
            .bind(opening.note.as_deref())
            .bind(opening.after_trip_id.map(|id| id.0))
            .bind(opened_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (opening.task_id, written)
        }
        ServiceTaskEvent::ServiceTaskAssigned {
            task_id,
            staff_id,
            assigned_at: at,
        }
        | ServiceTaskEvent::ServiceTaskStarted {
            task_id,
            staff_id,
            started_at: at,
        } => {
            let status = match &task_event {
                ServiceTaskEvent::ServiceTaskAssigned { .. } => "assigned",
                _ => "in_progress",
            };
            let written = sqlx::query(
                "UPDATE service_tasks_view
                 SET status = $2, staff_id = $3, updated_at = $4, stream_version = $5
                 WHERE task_id = $1 AND stream_version < $5",
            )
            .bind(task_id.0)
            .bind(status)
            .bind(staff_id.as_str())
            .bind(at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*task_id, written)
        }
        ServiceTaskEvent::ServiceTaskCompleted {
            task_id,
            staff_id,
            note,
            completed_at,
            ..
        } => {
            let written = sqlx::query(
                "UPDATE service_tasks_view
                 SET status = 'completed', staff_id = $2, completion_note = $3,
                     completed_at = $4, updated_at = $4, stream_version = $5
                 WHERE task_id = $1 AND stream_version < $5",
            )
            .bind(task_id.0)
            .bind(staff_id.as_str())
            .bind(note.as_deref())
            .bind(completed_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*task_id, written)
        }
    };
    Guarded {
        view: View::ServiceTasks,
        id: task_id.0,
        version,
        event_type: &event.event_type,
    }
    .check(conn, written.rows_affected())
    .await
}
