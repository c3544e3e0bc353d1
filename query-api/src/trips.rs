//! `GET /v1/trips/{trip_id}`: one trip for its customer, support or an auditor, with its final
//! price once ended, or the price so far while it runs.

use crate::QueryContext;
use crate::error::QueryError;
use crate::params::InvalidParam;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::trip::{PriceBreakdown, Tariff, TripPhase, TripState};
use http_edge::ProblemType;
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use sqlx::types::Json as Jsonb;
use uuid::Uuid;

/// A row of `trips_view`, the columns this route shows.
#[derive(Debug, sqlx::FromRow)]
struct TripRow {
    trip_id: Uuid,
    customer_id: Uuid,
    vehicle_id: Uuid,
    status: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    phase_since: DateTime<Utc>,
    driving_s: i64,
    parking_s: i64,
    tariff: Jsonb<Tariff>,
    price: Option<Jsonb<PriceBreakdown>>,
}

/// The trip as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TripResponse {
    trip_id: Uuid,
    customer_id: Uuid,
    vehicle_id: Uuid,
    /// `driving`, `parked` or `ended`.
    status: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    /// Seconds driven and parked: so far while the trip runs, billed once it ended.
    driving_s: u64,
    parking_s: u64,
    /// The rates fixed when the trip started.
    tariff: Tariff,
    /// The final price, once ended; `null` before.
    price: Option<PriceBreakdown>,
    /// While the trip runs: what it would cost if it ended at `as_of`, by time only (the
    /// distance is known only at the end). `null` once ended.
    running_price: Option<PriceBreakdown>,
    /// The time `running_price` and the durations are computed at.
    as_of: DateTime<Utc>,
}

/// One trip: its owner, support and auditors may read it.
#[utoipa::path(
    get,
    path = "/v1/trips/{trip_id}",
    operation_id = "get_trip",
    tag = "trips",
    params(("trip_id" = Uuid, Path, description = "The trip")),
    responses((status = 200, description = "The trip", body = TripResponse), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn get_trip(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TripResponse>, Problem> {
    caller.require(&[Role::Customer, Role::Support, Role::Auditor])?;
    let trip_id = parse_trip_id(path)?;
    let row: Option<TripRow> = sqlx::query_as(
        "SELECT trip_id, customer_id, vehicle_id, status, started_at, ended_at, phase_since,
                driving_s, parking_s, tariff, price
         FROM trips_view WHERE trip_id = $1",
    )
    .bind(trip_id)
    .fetch_optional(&context.pool)
    .await
    .map_err(QueryError::from)?;
    let Some(row) = row else {
        return Err(Problem::not_found(
            ProblemType::TripNotFound,
            format!("there is no trip {trip_id}"),
        ));
    };
    // A customer sees only their own trips. The trip's existence is not secret from them (ids
    // are random UUIDs, not guessable), so someone else's trip is a 403, an unknown one a 404.
    if caller.role == Role::Customer && caller.subject.parse::<Uuid>().ok() != Some(row.customer_id)
    {
        return Err(Problem::forbidden(format!(
            "trip {trip_id} belongs to another customer"
        )));
    }
    Ok(Json(respond(row, context.clock.now())?))
}

fn parse_trip_id(path: Result<Path<String>, PathRejection>) -> Result<Uuid, InvalidParam> {
    let Path(raw) =
        path.map_err(|rejection| InvalidParam::new("trip_id", rejection.body_text()))?;
    raw.parse().map_err(|_| {
        InvalidParam::new(
            "trip_id",
            format!("must be a UUID (like 0194f5a0-0000-7000-8000-000000000001), not {raw:?}"),
        )
    })
}

/// The response for `row` at `now`. The time so far is counted by the domain's own rule
/// ([`TripState::durations_until`]) and priced by the domain's [`domain::trip::price`], so the
/// running price is exactly what the trip would be billed for time if it ended now.
fn respond(row: TripRow, now: DateTime<Utc>) -> Result<TripResponse, QueryError> {
    let seconds = |what: &str, value: i64| {
        u64::try_from(value).map_err(|_| QueryError::Corrupt(format!("{what} {value} < 0")))
    };
    let phase = match row.status.as_str() {
        "driving" => TripPhase::Driving {
            since: row.phase_since,
        },
        "parked" => TripPhase::Parked {
            since: row.phase_since,
        },
        "ended" => TripPhase::Ended {
            ended_at: row.ended_at.unwrap_or(row.phase_since),
        },
        other => {
            return Err(QueryError::Corrupt(format!(
                "trip {} has status {other:?}",
                row.trip_id
            )));
        }
    };
    let state = TripState {
        phase,
        driving_s: seconds("driving_s", row.driving_s)?,
        parking_s: seconds("parking_s", row.parking_s)?,
        ..TripState::default()
    };
    let (driving_s, parking_s) = state.durations_until(now);
    let tariff = row.tariff.0;
    let price = row.price.map(|price| price.0);
    let running_price = state
        .is_active()
        .then(|| domain::trip::price(&tariff, driving_s, parking_s, 0));
    Ok(TripResponse {
        trip_id: row.trip_id,
        customer_id: row.customer_id,
        vehicle_id: row.vehicle_id,
        status: row.status,
        started_at: row.started_at,
        ended_at: row.ended_at,
        driving_s,
        parking_s,
        tariff,
        price,
        running_price,
        as_of: now,
    })
}
