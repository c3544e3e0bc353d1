//! `demand_activity`: who asked for a car where and when — one row per quote issued and per
//! reservation made — so that the quote route can count the customers competing for cars in a
//! pricing zone (see `domain::pricing`).

use crate::projector::{ProjectionError, Projector, decode_event};
use chrono::{DateTime, Duration, Utc};
use domain::ids::CustomerId;
use domain::pricing::{DemandObservation, PricingPolicy, PricingZone};
use domain::quote::QuoteEvent;
use domain::reservation::ReservationEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::{PgConnection, PgPool};

/// How long rows are kept: far longer than any demand window.
const KEEP_HOURS: i64 = 24;

/// Writes `demand_activity` from the `quote` and `reservation` streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct DemandProjector;

impl Projector for DemandProjector {
    fn name(&self) -> &'static str {
        "demand_activity"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["demand_activity"]
    }

    fn categories(&self) -> &'static [&'static str] {
        &[
            domain::ids::QuoteId::CATEGORY,
            domain::ids::ReservationId::CATEGORY,
        ]
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
    let (kind, customer_id, position, occurred_at) = match event.category() {
        "quote" => match decode_event::<QuoteEvent>(event)? {
            QuoteEvent::QuoteIssued { details, issued_at } => {
                ("quote", details.customer_id, details.position, issued_at)
            }
        },
        _ => match decode_event::<ReservationEvent>(event)? {
            ReservationEvent::ReservationMade { details } => (
                "reservation",
                details.customer_id,
                details.position,
                details.made_at,
            ),
            // How a reservation ends says nothing about demand.
            _ => return Ok(()),
        },
    };
    sqlx::query(
        "INSERT INTO demand_activity (event_id, kind, customer_id, lat, lon, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event.event_id)
    .bind(kind)
    .bind(customer_id.0)
    .bind(position.lat)
    .bind(position.lon)
    .bind(occurred_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM demand_activity WHERE occurred_at < $1")
        .bind(occurred_at - chrono::Duration::hours(KEEP_HOURS))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The cell test shared by both counts: the same floor division as `domain::pricing::ZoneGrid`,
/// after a bounding-box test the `vehicles_view` position index can answer.
const IN_ZONE: &str = "point(lon, lat) <@ box(point($3, $1), point($4, $2))
     AND floor(lat / $5)::bigint = $6 AND floor(lon / $7)::bigint = $8";

/// Counts free cars and the recent customers (other than `customer_id`) in `zone` at `now`:
/// what a quote's demand multiplier is computed from, and what the app's list of nearby cars
/// shows the current price with.
pub async fn observe(
    pool: &PgPool,
    policy: &PricingPolicy,
    zone: PricingZone,
    customer_id: Option<CustomerId>,
    now: DateTime<Utc>,
) -> Result<DemandObservation, sqlx::Error> {
    let grid = policy.zone_grid;
    // The cell's edges, widened a hair so that rounding never drops a car on an edge from the
    // box; the floor test then decides exactly.
    let margin = 1e-9;
    let south = zone.row as f64 * grid.lat_deg - margin;
    let north = (zone.row + 1) as f64 * grid.lat_deg + margin;
    let west = zone.col as f64 * grid.lon_deg - margin;
    let east = (zone.col + 1) as f64 * grid.lon_deg + margin;
    let free_cars: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM vehicles_view WHERE status = 'available' AND {IN_ZONE}"
    ))
    .bind(south)
    .bind(north)
    .bind(west)
    .bind(east)
    .bind(grid.lat_deg)
    .bind(zone.row)
    .bind(grid.lon_deg)
    .bind(zone.col)
    .fetch_one(pool)
    .await?;
    let since = now - Duration::seconds(i64::from(policy.demand_window_s));
    let recent_customers: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT customer_id) FROM demand_activity
         WHERE occurred_at > $9 AND occurred_at <= $10
           AND customer_id IS DISTINCT FROM $11 AND {IN_ZONE}"
    ))
    .bind(south)
    .bind(north)
    .bind(west)
    .bind(east)
    .bind(grid.lat_deg)
    .bind(zone.row)
    .bind(grid.lon_deg)
    .bind(zone.col)
    .bind(since)
    .bind(now)
    .bind(customer_id.map(|id| id.0))
    .fetch_one(pool)
    .await?;
    Ok(DemandObservation {
        free_cars: u32::try_from(free_cars).unwrap_or(u32::MAX),
        recent_customers: u32::try_from(recent_customers).unwrap_or(u32::MAX),
        window_s: policy.demand_window_s,
    })
}
