//! `GET /v1/support/customers/{customer_id}`: the customer 360 of the support console — profile,
//! verification, active blocks, company, the last trips, the account's totals, and a timeline of
//! what happened to the customer with who did it.
//!
//! The timeline is read from the event store itself (the `events` table, by stream id): the
//! customer's stream, the streams of their latest trips and their account's stream, newest
//! first. A customer has one trip at a time, so the newest events of all their trips are among
//! those of their latest [`TIMELINE_LIMIT`] trips.

use super::uuid_param;
use crate::QueryContext;
use crate::error::QueryError;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDate, Utc};
use domain::account::AccountId;
use domain::ids::{CustomerId, TripId};
use http_edge::ProblemType;
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use uuid::Uuid;

/// Trips shown.
const RECENT_TRIPS: i64 = 20;
/// Timeline entries shown.
const TIMELINE_LIMIT: i64 = 50;

/// The customer as support sees them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Customer360 {
    customer_id: Uuid,
    profile: Profile,
    /// `pending`, `verified` or `rejected`, and why if rejected.
    verification: Verification,
    /// Active blocks: `debt`, `fraud`, `documents`, `support`.
    blocks: Vec<String>,
    /// The company the customer is an employee of, if any.
    company_id: Option<Uuid>,
    /// The last trips, newest first.
    recent_trips: Vec<RecentTrip>,
    /// The customer's own account (`customer:<uuid>`), in kopecks.
    account: AccountTotals,
    /// What happened, newest first: the customer's, their trips' and their account's events.
    timeline: Vec<TimelineEntry>,
}

/// Who the customer is. Once their personal data is erased (152-FZ, GDPR) the personal fields
/// are null and `erased` is true.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Profile {
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    birth_date: Option<NaiveDate>,
    licence_number: Option<String>,
    registered_at: DateTime<Utc>,
    /// Whether the personal data was erased.
    erased: bool,
    /// When, if it was.
    erased_at: Option<DateTime<Utc>>,
}

/// Where the customer stands with KYC.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Verification {
    status: String,
    rejection_reason: Option<String>,
    /// Why the pending documents await a person's review (the KYC provider asked for it, or did
    /// not answer in time), while they do.
    manual_review_reason: Option<String>,
}

/// One of the customer's trips.
#[derive(Debug, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub(crate) struct RecentTrip {
    trip_id: Uuid,
    vehicle_id: Uuid,
    status: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    total_kopecks: Option<i64>,
}

/// The sums of the customer's account.
#[derive(Debug, Default, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub(crate) struct AccountTotals {
    charged_kopecks: i64,
    refunded_kopecks: i64,
    waived_kopecks: i64,
    open_kopecks: i64,
}

/// One event of the timeline.
#[derive(Debug, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub(crate) struct TimelineEntry {
    #[serde(rename = "type")]
    event_type: String,
    occurred_at: DateTime<Utc>,
    /// Who: `customer:<id>`, `support:<agent>`, `service:<name>`.
    actor: String,
    stream_id: String,
    /// Its position in the whole log.
    position: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct CustomerRow {
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    birth_date: Option<NaiveDate>,
    licence_number: Option<String>,
    erased_at: Option<DateTime<Utc>>,
    verification: String,
    rejection_reason: Option<String>,
    manual_review_reason: Option<String>,
    blocks: Vec<String>,
    company_id: Option<Uuid>,
    registered_at: DateTime<Utc>,
}

/// A customer's profile, state, trips, account and history (support, auditor).
#[utoipa::path(
    get,
    path = "/v1/support/customers/{customer_id}",
    operation_id = "customer_360",
    tag = "support",
    params(("customer_id" = Uuid, Path, description = "The customer")),
    responses((status = 200, description = "The customer 360", body = Customer360), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn customer_360(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Customer360>, Problem> {
    caller.require(&[Role::Support, Role::Auditor])?;
    let customer_id = uuid_param("customer_id", path)?;
    let pool = &context.pool;
    let row: Option<CustomerRow> = sqlx::query_as(
        "SELECT name, phone, email, birth_date, licence_number, verification, rejection_reason,
                manual_review_reason, blocks, company_id, registered_at, erased_at
         FROM customers_view WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await
    .map_err(QueryError::from)?;
    let Some(row) = row else {
        return Err(Problem::not_found(
            ProblemType::CustomerNotFound,
            format!("there is no customer {customer_id}"),
        ));
    };
    let recent_trips: Vec<RecentTrip> = sqlx::query_as(
        "SELECT trip_id, vehicle_id, status, started_at, ended_at, total_kopecks
         FROM trips_view WHERE customer_id = $1
         ORDER BY started_at DESC, trip_id DESC LIMIT $2",
    )
    .bind(customer_id)
    .bind(RECENT_TRIPS)
    .fetch_all(pool)
    .await
    .map_err(QueryError::from)?;
    let account_id = AccountId::Customer(CustomerId(customer_id));
    let account: AccountTotals = sqlx::query_as(
        "SELECT charged_kopecks, refunded_kopecks, waived_kopecks, open_kopecks
         FROM accounts_view WHERE account_id = $1",
    )
    .bind(account_id.to_string())
    .fetch_optional(pool)
    .await
    .map_err(QueryError::from)?
    .unwrap_or_default();

    let timeline_trips: Vec<Uuid> = sqlx::query_scalar(
        "SELECT trip_id FROM trips_view WHERE customer_id = $1
         ORDER BY started_at DESC, trip_id DESC LIMIT $2",
    )
    .bind(customer_id)
    .bind(TIMELINE_LIMIT)
    .fetch_all(pool)
    .await
    .map_err(QueryError::from)?;
    let mut streams = vec![CustomerId(customer_id).stream_id(), account_id.stream_id()];
    streams.extend(timeline_trips.into_iter().map(|id| TripId(id).stream_id()));
    let timeline: Vec<TimelineEntry> = context
        .store
        .latest_headers(&streams, TIMELINE_LIMIT)
        .await
        .map_err(QueryError::from)?
        .into_iter()
        .map(|header| TimelineEntry {
            event_type: header.event_type,
            occurred_at: header.occurred_at,
            actor: header.actor,
            stream_id: header.stream_id,
            position: header.position,
        })
        .collect();

    Ok(Json(Customer360 {
        customer_id,
        profile: Profile {
            name: row.name,
            phone: row.phone,
            email: row.email,
            birth_date: row.birth_date,
            licence_number: row.licence_number,
            registered_at: row.registered_at,
            erased: row.erased_at.is_some(),
            erased_at: row.erased_at,
        },
        verification: Verification {
            status: row.verification,
            rejection_reason: row.rejection_reason,
            manual_review_reason: row.manual_review_reason,
        },
        blocks: row.blocks,
        company_id: row.company_id,
        recent_trips,
        account,
        timeline,
    }))
}
