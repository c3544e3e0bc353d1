//! `GET /v1/reservations/{reservation_id}`: one reservation for its customer or support, with
//! the waiting it was charged once ended, or the waiting so far while it holds the car.

use crate::QueryContext;
use crate::error::QueryError;
use crate::params::InvalidParam;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::geo::GeoPoint;
use domain::ids::{CustomerId, ReservationId, VehicleId};
use domain::money::Kopecks;
use domain::pricing::RentalTerms;
use domain::reservation::{ReservationDetails, WaitingCharge, waiting_charge};
use http_edge::ProblemType;
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use sqlx::types::Json as Jsonb;
use uuid::Uuid;

/// A row of `reservations_view`.
#[derive(Debug, sqlx::FromRow)]
struct ReservationRow {
    reservation_id: Uuid,
    customer_id: Uuid,
    vehicle_id: Uuid,
    quote_id: Option<Uuid>,
    status: String,
    made_at: DateTime<Utc>,
    free_until: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    trip_id: Option<Uuid>,
    terms: Jsonb<RentalTerms>,
    lat: f64,
    lon: f64,
    waited_s: Option<i64>,
    paid_minutes: Option<i64>,
    paid_waiting_kopecks: Option<i64>,
}

/// The reservation as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ReservationResponse {
    reservation_id: Uuid,
    customer_id: Uuid,
    vehicle_id: Uuid,
    /// The quote whose terms apply, if any.
    quote_id: Option<Uuid>,
    /// `active`, `converted`, `cancelled` or `expired`.
    status: String,
    made_at: DateTime<Utc>,
    /// Waiting is free until then.
    free_until: DateTime<Utc>,
    /// The reservation expires then.
    expires_at: DateTime<Utc>,
    /// When it ended; `null` while active.
    ended_at: Option<DateTime<Utc>>,
    /// The trip it turned into, once converted.
    trip_id: Option<Uuid>,
    /// The waiting tariff and the tariff of the trip it turns into.
    terms: RentalTerms,
    /// The waiting charged once ended, or the waiting so far (at `as_of`) while active.
    waiting: WaitingCharge,
    /// The time the waiting so far is computed at.
    as_of: DateTime<Utc>,
}

/// One reservation: its customer and support may read it.
#[utoipa::path(
    get,
    path = "/v1/reservations/{reservation_id}",
    operation_id = "get_reservation",
    tag = "reservations",
    params(("reservation_id" = Uuid, Path, description = "The reservation")),
    responses((status = 200, description = "The reservation", body = ReservationResponse), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn get_reservation(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ReservationResponse>, Problem> {
    caller.require(&[Role::Customer, Role::Support])?;
    let reservation_id = parse_id(path)?;
    let row: Option<ReservationRow> = sqlx::query_as(
        "SELECT reservation_id, customer_id, vehicle_id, quote_id, status, made_at, free_until,
                expires_at, ended_at, trip_id, terms, lat, lon, waited_s, paid_minutes,
                paid_waiting_kopecks
         FROM reservations_view WHERE reservation_id = $1",
    )
    .bind(reservation_id)
    .fetch_optional(&context.pool)
    .await
    .map_err(QueryError::from)?;
    let Some(row) = row else {
        return Err(Problem::not_found(
            ProblemType::ReservationNotFound,
            format!("there is no reservation {reservation_id}"),
        ));
    };
    if caller.role == Role::Customer && caller.subject.parse::<Uuid>().ok() != Some(row.customer_id)
    {
        return Err(Problem::forbidden(format!(
            "reservation {reservation_id} belongs to another customer"
        )));
    }
    Ok(Json(respond(row, context.clock.now())?))
}

fn parse_id(path: Result<Path<String>, PathRejection>) -> Result<Uuid, InvalidParam> {
    let Path(raw) =
        path.map_err(|rejection| InvalidParam::new("reservation_id", rejection.body_text()))?;
    raw.parse().map_err(|_| {
        InvalidParam::new(
            "reservation_id",
            format!("must be a UUID (like 0194f5a0-0000-7000-8000-000000000001), not {raw:?}"),
        )
    })
}

/// The response for `row` at `now`. While the reservation holds the car, the waiting so far is
/// computed by the domain's own rule ([`waiting_charge`]), exactly what cancelling now would
/// charge.
fn respond(row: ReservationRow, now: DateTime<Utc>) -> Result<ReservationResponse, QueryError> {
    let terms = row.terms.0;
    let count = |what: &str, value: Option<i64>| {
        value.and_then(|v| u64::try_from(v).ok()).ok_or_else(|| {
            QueryError::Corrupt(format!("{what} of an ended reservation: {value:?}"))
        })
    };
    let waiting = if row.status == "active" {
        let details = ReservationDetails {
            reservation_id: ReservationId(row.reservation_id),
            customer_id: CustomerId(row.customer_id),
            vehicle_id: VehicleId(row.vehicle_id),
            position: GeoPoint {
                lat: row.lat,
                lon: row.lon,
            },
            quote_id: None,
            terms: terms.clone(),
            made_at: row.made_at,
            free_until: row.free_until,
            expires_at: row.expires_at,
        };
        waiting_charge(&details, now)
    } else {
        WaitingCharge {
            waited_s: count("waited_s", row.waited_s)?,
            free_minutes: terms.waiting.free_minutes,
            paid_minutes: count("paid_minutes", row.paid_minutes)?,
            waiting_kopecks_per_minute: terms.waiting.kopecks_per_minute,
            paid_waiting_kopecks: Kopecks(row.paid_waiting_kopecks.unwrap_or_default()),
        }
    };
    Ok(ReservationResponse {
        reservation_id: row.reservation_id,
        customer_id: row.customer_id,
        vehicle_id: row.vehicle_id,
        quote_id: row.quote_id,
        status: row.status,
        made_at: row.made_at,
        free_until: row.free_until,
        expires_at: row.expires_at,
        ended_at: row.ended_at,
        trip_id: row.trip_id,
        terms,
        waiting,
        as_of: now,
    })
}
