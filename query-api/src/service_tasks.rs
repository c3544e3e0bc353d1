//! `GET /v1/service-tasks/{task_id}`: one service task for fleet staff, support or an auditor:
//! its car, kind, status, who has it and its notes.

use crate::QueryContext;
use crate::error::QueryError;
use crate::params::InvalidParam;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use http_edge::ProblemType;
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use uuid::Uuid;

/// A service task as the API shows it (a row of `service_tasks_view`).
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub(crate) struct ServiceTaskResponse {
    task_id: Uuid,
    /// The car the task is about.
    vehicle_id: Uuid,
    /// `refuel`, `wash`, `relocate` or `repair`.
    kind: String,
    /// `open`, `assigned`, `in_progress` or `completed`.
    status: String,
    /// The staff member who has the task (or completed it); `null` while open.
    staff_id: Option<String>,
    /// The note given when the task was opened.
    note: Option<String>,
    /// The note given when it was completed.
    completion_note: Option<String>,
    /// The trip after which the system opened it (low fuel), if it did.
    after_trip_id: Option<Uuid>,
    opened_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

/// One service task: fleet staff, support and auditors may read it.
#[utoipa::path(
    get,
    path = "/v1/service-tasks/{task_id}",
    operation_id = "get_service_task",
    tag = "fleet",
    params(("task_id" = Uuid, Path, description = "The task")),
    responses((status = 200, description = "The task", body = ServiceTaskResponse), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn get_service_task(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ServiceTaskResponse>, Problem> {
    caller.require(&[Role::Fleet, Role::Support, Role::Auditor])?;
    let Path(raw) =
        path.map_err(|rejection| InvalidParam::new("task_id", rejection.body_text()))?;
    let task_id: Uuid = raw.parse().map_err(|_| {
        InvalidParam::new(
            "task_id",
            format!("must be a UUID (like 0194f5a0-0000-7000-8000-000000000001), not {raw:?}"),
        )
    })?;
    let row: Option<ServiceTaskResponse> = sqlx::query_as(
        "SELECT task_id, vehicle_id, kind, status, staff_id, note, completion_note,
                after_trip_id, opened_at, completed_at, updated_at
         FROM service_tasks_view WHERE task_id = $1",
    )
    .bind(task_id)
    .fetch_optional(&context.pool)
    .await
    .map_err(QueryError::from)?;
    row.map(Json).ok_or_else(|| {
        Problem::not_found(
            ProblemType::ServiceTaskNotFound,
            format!("there is no service task {task_id}"),
        )
    })
}
