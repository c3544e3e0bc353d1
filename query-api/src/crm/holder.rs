//! `GET /v1/vehicles/{vehicle_id}/holder?at=` and `GET /v1/vehicles/by-plate/{plate}/holder?at=`:
//! who had a car at a moment — the trip and its customer — for traffic fines, support, auditors
//! and the fine-matching service. Read from `vehicle_possessions`, whose GiST index on
//! `(vehicle_id, during)` answers "this car, this instant" without scanning the car's history.

use super::uuid_param;
use crate::QueryContext;
use crate::error::QueryError;
use crate::params::{InvalidParam, QueryParams};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::value::Plate;
use http_edge::ProblemType;
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use uuid::Uuid;

/// Who may ask.
const ROLES: &[Role] = &[Role::Support, Role::Auditor, Role::Service];

/// The customer who had the car.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Holder {
    customer_id: Uuid,
    /// `null` if the customer's profile is not in the read model yet.
    name: Option<String>,
    phone: Option<String>,
}

/// Who had a car at a moment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct HolderResponse {
    vehicle_id: Uuid,
    /// The car's plate, normalised (Cyrillic letters).
    plate: Option<String>,
    /// The moment asked about.
    at: DateTime<Utc>,
    trip_id: Uuid,
    /// When the trip took the car.
    started_at: DateTime<Utc>,
    /// When it handed the car back; `null` while the trip runs.
    ended_at: Option<DateTime<Utc>>,
    /// The account that pays for the trip: `customer:<uuid>` or `company:<uuid>`.
    payer_account_id: String,
    /// The company the customer drove for, if any.
    company_id: Option<Uuid>,
    customer: Holder,
}

#[derive(Debug, sqlx::FromRow)]
struct HolderRow {
    trip_id: Uuid,
    customer_id: Uuid,
    payer_account_id: String,
    company_id: Option<Uuid>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    name: Option<String>,
    phone: Option<String>,
    plate: Option<String>,
}

/// Who had the car at `at` (support, auditor, service).
#[utoipa::path(
    get,
    path = "/v1/vehicles/{vehicle_id}/holder",
    operation_id = "vehicle_holder",
    tag = "support",
    params(
        ("vehicle_id" = Uuid, Path, description = "The car"),
        ("at" = String, Query, description = "The moment, RFC 3339 (`2026-11-25T14:05:00Z`)"),
    ),
    responses((status = 200, description = "The trip and customer that had the car", body = HolderResponse), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn vehicle_holder(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    params: QueryParams,
) -> Result<Json<HolderResponse>, Problem> {
    caller.require(ROLES)?;
    let vehicle_id = uuid_param("vehicle_id", path)?;
    let at = moment(&params)?;
    holder(&context, vehicle_id, at).await
}

/// Who had the car with this plate at `at` (support, auditor, service). The plate is read as the
/// domain reads plates: spaces dropped, upper-cased, Latin look-alikes as Cyrillic.
#[utoipa::path(
    get,
    path = "/v1/vehicles/by-plate/{plate}/holder",
    operation_id = "vehicle_holder_by_plate",
    tag = "support",
    params(
        ("plate" = String, Path, description = "The plate, in Cyrillic or Latin letters (`А123ВС777`)"),
        ("at" = String, Query, description = "The moment, RFC 3339 (`2026-11-25T14:05:00Z`)"),
    ),
    responses((status = 200, description = "The trip and customer that had the car", body = HolderResponse), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn vehicle_holder_by_plate(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    params: QueryParams,
) -> Result<Json<HolderResponse>, Problem> {
    caller.require(ROLES)?;
    let Path(raw) = path.map_err(|rejection| InvalidParam::new("plate", rejection.body_text()))?;
    let plate = Plate::parse("plate", &raw).map_err(InvalidParam)?;
    let at = moment(&params)?;
    let vehicle_id: Option<Uuid> =
        sqlx::query_scalar("SELECT vehicle_id FROM vehicle_plates WHERE plate = $1 LIMIT 1")
            .bind(plate.as_str())
            .fetch_optional(&context.pool)
            .await
            .map_err(QueryError::from)?;
    let Some(vehicle_id) = vehicle_id else {
        return Err(Problem::not_found(
            ProblemType::VehicleNotFound,
            format!("there is no car with plate {plate}"),
        ));
    };
    holder(&context, vehicle_id, at).await
}

/// The required `at` parameter.
fn moment(params: &QueryParams) -> Result<DateTime<Utc>, InvalidParam> {
    let raw = params
        .text("at")?
        .ok_or_else(|| InvalidParam::new("at", "at is required (an RFC 3339 time)"))?;
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| {
            InvalidParam::new(
                "at",
                format!("must be an RFC 3339 time like 2026-11-25T14:05:00Z, not {raw:?}"),
            )
        })
}

async fn holder(
    context: &QueryContext,
    vehicle_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Json<HolderResponse>, Problem> {
    // Ranges of one car never overlap; the order only makes the answer deterministic if a log
    // ever said otherwise.
    let row: Option<HolderRow> = sqlx::query_as(
        "SELECT p.trip_id, p.customer_id, p.payer_account_id, p.company_id,
                lower(p.during) AS started_at, upper(p.during) AS ended_at,
                c.name, c.phone, v.plate
         FROM vehicle_possessions p
         LEFT JOIN customers_view c ON c.customer_id = p.customer_id
         LEFT JOIN vehicle_plates v ON v.vehicle_id = p.vehicle_id
         WHERE p.vehicle_id = $1 AND p.during @> $2::timestamptz
         ORDER BY lower(p.during) DESC
         LIMIT 1",
    )
    .bind(vehicle_id)
    .bind(at)
    .fetch_optional(&context.pool)
    .await
    .map_err(QueryError::from)?;
    let Some(row) = row else {
        return Err(Problem::not_found(
            ProblemType::NoHolderAtTime,
            format!("nobody had car {vehicle_id} at {}", at.to_rfc3339()),
        ));
    };
    Ok(Json(HolderResponse {
        vehicle_id,
        plate: row.plate,
        at,
        trip_id: row.trip_id,
        started_at: row.started_at,
        ended_at: row.ended_at,
        payer_account_id: row.payer_account_id,
        company_id: row.company_id,
        customer: Holder {
            customer_id: row.customer_id,
            name: row.name,
            phone: row.phone,
        },
    }))
}
