//! What a quote observes in the car's pricing zone: free cars (from `vehicles_view`) and the
//! other customers who asked for a quote or reserved there lately (from `demand_activity`).
//!
//! These are the one input of a command that comes from read models. They are observations, not
//! rules: the quote records them in `QuoteIssued`, with the multiplier they gave, so the price is
//! explained by the event alone, and a read model a moment behind only shifts a price by the
//! demand of that moment.

use crate::pipeline::CommandError;
use chrono::{DateTime, Duration, Utc};
use domain::ids::CustomerId;
use domain::pricing::{DemandObservation, PricingPolicy, PricingZone};
use event_store::StoreError;
use sqlx::PgPool;

/// The cell test shared by both counts: the same floor division as `domain::pricing::ZoneGrid`,
/// after a bounding-box test the `vehicles_view` position index can answer.
const IN_ZONE: &str = "point(lon, lat) <@ box(point($3, $1), point($4, $2))
     AND floor(lat / $5)::bigint = $6 AND floor(lon / $7)::bigint = $8";

/// Counts free cars and other recent customers in `zone` at `now`.
pub(crate) async fn observe(
    pool: &PgPool,
    policy: &PricingPolicy,
    zone: PricingZone,
    customer_id: CustomerId,
    now: DateTime<Utc>,
) -> Result<DemandObservation, CommandError> {
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
    .await
    .map_err(store_error)?;
    let since = now - Duration::seconds(i64::from(policy.demand_window_s));
    let recent_customers: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT customer_id) FROM demand_activity
         WHERE occurred_at > $9 AND occurred_at <= $10 AND customer_id <> $11 AND {IN_ZONE}"
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
    .bind(customer_id.0)
    .fetch_one(pool)
    .await
    .map_err(store_error)?;
    Ok(DemandObservation {
        free_cars: u32::try_from(free_cars).unwrap_or(u32::MAX),
        recent_customers: u32::try_from(recent_customers).unwrap_or(u32::MAX),
        window_s: policy.demand_window_s,
    })
}

fn store_error(error: sqlx::Error) -> CommandError {
    CommandError::Store(StoreError::from(error))
}
