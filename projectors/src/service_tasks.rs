//! `service_tasks_view`: one row per service task — its car, kind, status and who has it — for
//! fleet staff working through their tasks and for support.

use crate::projector::{ProjectionError, Projector, decode_page, to_bigint};
use crate::rows::{Guard, Row, Rows, guard, micros};
use chrono::{DateTime, Utc};
use domain::service_task::ServiceTaskEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

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
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, events))
    }
}

/// A `service_tasks_view` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TaskRow {
    task_id: Uuid,
    vehicle_id: Uuid,
    kind: String,
    /// `open`, `assigned`, `in_progress` or `completed`.
    status: String,
    staff_id: Option<String>,
    note: Option<String>,
    completion_note: Option<String>,
    after_trip_id: Option<Uuid>,
    opened_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    stream_version: i64,
}

impl Row for TaskRow {
    const TABLE: &'static str = "service_tasks_view";
    const KEY: &'static str = "task_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.task_id
    }
}

fn task_of(event: &ServiceTaskEvent) -> Uuid {
    match event {
        ServiceTaskEvent::ServiceTaskOpened { opening, .. } => opening.task_id.0,
        ServiceTaskEvent::ServiceTaskAssigned { task_id, .. }
        | ServiceTaskEvent::ServiceTaskStarted { task_id, .. }
        | ServiceTaskEvent::ServiceTaskCompleted { task_id, .. } => task_id.0,
    }
}

async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    let decoded = decode_page::<ServiceTaskEvent>(events)?;
    let mut tasks = Rows::<TaskRow>::default();
    tasks
        .load(conn, decoded.iter().map(|(_, event)| task_of(event)))
        .await?;
    for (event, task_event) in &decoded {
        fold(&mut tasks, event, task_event).map_err(|error| error.at(event))?;
    }
    tasks.write(conn).await?;
    Ok(())
}

fn fold(
    tasks: &mut Rows<TaskRow>,
    event: &RecordedEvent,
    task_event: &ServiceTaskEvent,
) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let task_id = task_of(task_event);
    if let ServiceTaskEvent::ServiceTaskOpened { opening, opened_at } = task_event {
        if tasks.get(&task_id).is_none() {
            let at = micros(*opened_at);
            tasks.put(TaskRow {
                task_id,
                vehicle_id: opening.vehicle_id.0,
                kind: opening.kind.as_str().to_owned(),
                status: "open".to_owned(),
                staff_id: None,
                note: opening.note.clone(),
                completion_note: None,
                after_trip_id: opening.after_trip_id.map(|id| id.0),
                opened_at: at,
                completed_at: None,
                updated_at: at,
                stream_version: version,
            });
        }
        return Ok(());
    }
    let current = tasks.get(&task_id).map(|row| row.stream_version);
    if guard(
        "service_tasks_view",
        &task_id,
        current,
        version,
        &event.event_type,
    )? == Guard::Applied
    {
        return Ok(());
    }
    let Some(row) = tasks.get_mut(&task_id) else {
        return Ok(());
    };
    let at = match task_event {
        ServiceTaskEvent::ServiceTaskOpened { opened_at, .. } => *opened_at,
        ServiceTaskEvent::ServiceTaskAssigned {
            staff_id,
            assigned_at: at,
            ..
        }
        | ServiceTaskEvent::ServiceTaskStarted {
            staff_id,
            started_at: at,
            ..
        } => {
            row.status = match task_event {
                ServiceTaskEvent::ServiceTaskAssigned { .. } => "assigned",
                _ => "in_progress",
            }
            .to_owned();
            row.staff_id = Some(staff_id.as_str().to_owned());
            *at
        }
        ServiceTaskEvent::ServiceTaskCompleted {
            staff_id,
            note,
            completed_at,
            ..
        } => {
            let at = micros(*completed_at);
            row.status = "completed".to_owned();
            row.staff_id = Some(staff_id.as_str().to_owned());
            row.completion_note = note.clone();
            row.completed_at = Some(at);
            at
        }
    };
    row.updated_at = micros(at);
    row.stream_version = version;
    Ok(())
}
