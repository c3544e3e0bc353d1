//! `GET /v1/fines/{fine_id}`: one imported traffic fine and its status, for support and auditors.
//! Read from `fines_view`.
//!
//! Bitemporal: `occurred_at` is when the offence happened (from the resolution), `received_at`
//! when Velka learned of it (the `FineReceived` event's time, the axis of as-of queries), and
//! `decided_at` when it was matched and charged or assigned to the fleet. A fine that arrives in
//! December for a November trip shows both months.

use crate::QueryContext;
use crate::accounts::parse_id;
use crate::error::QueryError;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDate, Utc};
use http_edge::ProblemType;
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use uuid::Uuid;

/// A fine as the API shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub(crate) struct FineResponse {
    fine_id: Uuid,
    /// The resolution's number (UIN).
    resolution_number: String,
    /// The fined car's plate.
    plate: String,
    /// When and where the offence happened (valid time: when it was true in the world).
    occurred_at: DateTime<Utc>,
    lat: f64,
    lon: f64,
    amount_kopecks: i64,
    /// The day the resolution was issued.
    issued_on: NaiveDate,
    /// `open` (not yet matched), `matched` (charged to the trip's payer) or `assigned_to_fleet`
    /// (no trip had the car: for review).
    status: String,
    /// When the feed delivered it: when Velka learned of it (transaction time). The state as of
    /// any earlier moment does not know the fine, however early `occurred_at` is.
    received_at: DateTime<Utc>,
    /// When it was matched to a trip (and charged) or assigned to the fleet; absent while open.
    decided_at: Option<DateTime<Utc>>,
    /// Once matched: the trip that had the car, its driver, and the account charged.
    trip_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    account_id: Option<String>,
}

/// One fine: support and auditors may read it.
#[utoipa::path(
    get,
    path = "/v1/fines/{fine_id}",
    operation_id = "get_fine",
    tag = "fines",
    params(("fine_id" = Uuid, Path, description = "The fine")),
    responses((status = 200, description = "The fine", body = FineResponse), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn get_fine(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<FineResponse>, Problem> {
    caller.require(&[Role::Support, Role::Auditor])?;
    let fine_id = parse_id(path, "fine_id")?;
    let fine: Option<FineResponse> = sqlx::query_as(
        "SELECT fine_id, resolution_number, plate, occurred_at, lat, lon, amount_kopecks,
                issued_on, status, received_at, decided_at, trip_id, customer_id, account_id
         FROM fines_view WHERE fine_id = $1",
    )
    .bind(fine_id)
    .fetch_optional(&context.pool)
    .await
    .map_err(QueryError::from)?;
    fine.map(Json).ok_or_else(|| {
        Problem::not_found(
            ProblemType::FineNotFound,
            format!("there is no fine {fine_id}"),
        )
    })
}
