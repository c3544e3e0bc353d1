//! `GET /v1/customers/{customer_id}/trips?limit=&cursor=`: a customer's trips, newest first, a
//! page at a time, for the customer themselves (the app's history screen), support and auditors.
//!
//! Keyset pagination: the cursor is the `(started_at, trip_id)` of the last trip of the page,
//! and the next page is the trips strictly below it in that order, read from the index
//! `(customer_id, started_at DESC, trip_id DESC)`. A trip starting while someone pages never
//! shifts or repeats a page, and every page costs the same however deep it is.

use super::uuid_param;
use crate::QueryContext;
use crate::error::QueryError;
use crate::params::{InvalidParam, QueryParams};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use uuid::Uuid;

/// Trips per page when no limit is given.
const DEFAULT_LIMIT: i64 = 20;
/// The most trips one page holds.
const MAX_LIMIT: i64 = 100;

/// One trip in the list.
#[derive(Debug, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub(crate) struct TripSummary {
    trip_id: Uuid,
    vehicle_id: Uuid,
    /// `driving`, `parked` or `ended`.
    status: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    /// Seconds driven and parked in finished spells (the billed totals once ended).
    driving_s: i64,
    parking_s: i64,
    /// The price, once ended.
    total_kopecks: Option<i64>,
}

/// A page of a customer's trips.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TripPage {
    customer_id: Uuid,
    /// Newest first.
    trips: Vec<TripSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A customer's trips, newest first (the customer, support, auditor).
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_id}/trips",
    operation_id = "customer_trips",
    tag = "trips",
    params(
        ("customer_id" = Uuid, Path, description = "The customer"),
        ("limit" = Option<u32>, Query, description = "Trips per page, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("status" = Option<String>, Query, description = "Only trips in this state: `driving`, `parked` or `ended`"),
    ),
    responses((status = 200, description = "A page of trips", body = TripPage), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn customer_trips(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    params: QueryParams,
) -> Result<Json<TripPage>, Problem> {
    caller.require(&[Role::Customer, Role::Support, Role::Auditor])?;
    let customer_id = uuid_param("customer_id", path)?;
    if caller.role == Role::Customer && !caller.is_customer(&customer_id.to_string()) {
        return Err(Problem::forbidden(
            "a customer may list only their own trips",
        ));
    }
    let limit = params
        .number_in("limit", 1..=MAX_LIMIT)?
        .unwrap_or(DEFAULT_LIMIT);
    let after = params.text("cursor")?.map(Cursor::decode).transpose()?;
    let status = params.text("status")?;
    if let Some(status) = &status
        && !matches!(*status, "driving" | "parked" | "ended")
    {
        return Err(InvalidParam::new(
            "status",
            format!("must be driving, parked or ended, not {status:?}"),
        )
        .into());
    }
    let (after_started, after_trip) = match after {
        Some(Cursor {
            started_at,
            trip_id,
        }) => (Some(started_at), Some(trip_id)),
        None => (None, None),
    };
    // One more than the page, to know whether another page follows.
    let mut trips: Vec<TripSummary> = sqlx::query_as(
        "SELECT trip_id, vehicle_id, status, started_at, ended_at, driving_s, parking_s,
                total_kopecks
         FROM trips_view
         WHERE customer_id = $1
           AND ($2::timestamptz IS NULL OR (started_at, trip_id) < ($2, $3))
           AND ($5::text IS NULL OR status = $5)
         ORDER BY started_at DESC, trip_id DESC
         LIMIT $4",
    )
    .bind(customer_id)
    .bind(after_started)
    .bind(after_trip)
    .bind(limit + 1)
    .bind(status)
    .fetch_all(&context.pool)
    .await
    .map_err(QueryError::from)?;
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = trips.len() > page;
    trips.truncate(page);
    let next_cursor = if more {
        trips
            .last()
            .map(|last| Cursor::encode(last.started_at, last.trip_id))
    } else {
        None
    };
    Ok(Json(TripPage {
        customer_id,
        trips,
        next_cursor,
    }))
}

/// Where a page ends. On the wire it is opaque: hex of `<microseconds>.<trip id>`, so clients
/// pass it back rather than build it.
#[derive(Debug, PartialEq)]
struct Cursor {
    started_at: DateTime<Utc>,
    trip_id: Uuid,
}

impl Cursor {
    fn encode(started_at: DateTime<Utc>, trip_id: Uuid) -> String {
        format!("{}.{trip_id}", started_at.timestamp_micros())
            .bytes()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    fn decode(raw: &str) -> Result<Cursor, InvalidParam> {
        let invalid = || InvalidParam::new("cursor", "must be a next_cursor this API returned");
        if !raw.len().is_multiple_of(2) || !raw.is_ascii() {
            return Err(invalid());
        }
        let bytes = (0..raw.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&raw[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, trip_id) = text.split_once('.').ok_or_else(invalid)?;
        let started_at = micros
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(invalid)?;
        let trip_id = trip_id.parse().map_err(|_| invalid())?;
        Ok(Cursor {
            started_at,
            trip_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written_and_anything_else_is_refused() {
        let started_at = DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap();
        let trip_id = Uuid::now_v7();
        let raw = Cursor::encode(started_at, trip_id);
        assert_eq!(
            Cursor::decode(&raw).unwrap(),
            Cursor {
                started_at,
                trip_id
            }
        );
        for bad in ["", "zz", "abc", "2e", &raw[..raw.len() - 2]] {
            assert_eq!(Cursor::decode(bad).unwrap_err().0.field, "cursor", "{bad}");
        }
    }
}
