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
use std::collections::BTreeMap;

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
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, events))
    }
}

/// One demand row.
#[derive(Debug)]
struct Activity {
    event_id: uuid::Uuid,
    kind: &'static str,
    customer_id: CustomerId,
    lat: f64,
    lon: f64,
    occurred_at: DateTime<Utc>,
}

/// Each event that says something about demand adds its row and then drops the rows more than a
/// day older than itself. A page does the same in two statements: a row is inserted unless an
/// event at or after it in the page would drop it, and the rows already stored are dropped by the
/// page's latest time — the rows event-at-a-time application would leave.
async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    let mut rows = Vec::new();
    for event in events {
        if let Some(row) = activity(event).map_err(|error| error.at(event))? {
            rows.push(row);
        }
    }
    let Some(latest) = rows.iter().map(|row| row.occurred_at).max() else {
        return Ok(());
    };
    // Walking back, the latest time from each row on is what drops the rows it adds.
    let mut kept = Vec::new();
    let mut later: Option<DateTime<Utc>> = None;
    for row in rows.iter().rev() {
        let drops_before =
            later.map_or(row.occurred_at, |later| later.max(row.occurred_at)) - keep();
        later = Some(later.map_or(row.occurred_at, |later| later.max(row.occurred_at)));
        if row.occurred_at >= drops_before {
            kept.push(row);
        }
    }
    kept.reverse();
    if !kept.is_empty() {
        sqlx::query(
            "INSERT INTO demand_activity (event_id, kind, customer_id, lat, lon, occurred_at)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::float8[], $5::float8[],
                                  $6::timestamptz[])
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(kept.iter().map(|row| row.event_id).collect::<Vec<_>>())
        .bind(kept.iter().map(|row| row.kind).collect::<Vec<_>>())
        .bind(kept.iter().map(|row| row.customer_id.0).collect::<Vec<_>>())
        .bind(kept.iter().map(|row| row.lat).collect::<Vec<_>>())
        .bind(kept.iter().map(|row| row.lon).collect::<Vec<_>>())
        .bind(kept.iter().map(|row| row.occurred_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM demand_activity WHERE occurred_at < $1")
        .bind(latest - keep())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn keep() -> Duration {
    Duration::hours(KEEP_HOURS)
}

/// The row an event adds, if it says something about demand.
fn activity(event: &RecordedEvent) -> Result<Option<Activity>, ProjectionError> {
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
            _ => return Ok(None),
        },
    };
    Ok(Some(Activity {
        event_id: event.event_id,
        kind,
        customer_id,
        lat: position.lat,
        lon: position.lon,
        occurred_at: crate::rows::micros(occurred_at),
    }))
}

/// Counts free cars and the recent customers (other than `customer_id`) in `zone` at `now`:
/// what a quote's demand multiplier is computed from.
pub async fn observe(
    pool: &PgPool,
    policy: &PricingPolicy,
    zone: PricingZone,
    customer_id: Option<CustomerId>,
    now: DateTime<Utc>,
) -> Result<DemandObservation, sqlx::Error> {
    let observed = observe_zones(pool, policy, &[zone], customer_id, now).await?;
    Ok(observed
        .get(&zone)
        .copied()
        .unwrap_or_else(|| nothing_observed(policy)))
}

/// [`observe`] for several zones at once, in two queries whatever their number (the app's list
/// of nearby cars prices every car in it): each zone of `zones` is in the answer.
pub async fn observe_zones(
    pool: &PgPool,
    policy: &PricingPolicy,
    zones: &[PricingZone],
    customer_id: Option<CustomerId>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<PricingZone, DemandObservation>, sqlx::Error> {
    let mut observed: BTreeMap<PricingZone, DemandObservation> = zones
        .iter()
        .map(|zone| (*zone, nothing_observed(policy)))
        .collect();
    let (Some(min_row), Some(max_row), Some(min_col), Some(max_col)) = (
        zones.iter().map(|z| z.row).min(),
        zones.iter().map(|z| z.row).max(),
        zones.iter().map(|z| z.col).min(),
        zones.iter().map(|z| z.col).max(),
    ) else {
        return Ok(observed);
    };
    let grid = policy.zone_grid;
    // The cells' outer edges, widened a hair so that rounding never drops a row on an edge from
    // the box (which the position indexes answer); the floor of each row then decides its cell
    // exactly, as `domain::pricing::ZoneGrid::zone_of` does.
    let margin = 1e-9;
    let south = min_row as f64 * grid.lat_deg - margin;
    let north = (max_row + 1) as f64 * grid.lat_deg + margin;
    let west = min_col as f64 * grid.lon_deg - margin;
    let east = (max_col + 1) as f64 * grid.lon_deg + margin;
    let cell = "floor(lat / $5)::bigint AS row, floor(lon / $6)::bigint AS col";
    let in_box = "point(lon, lat) <@ box(point($3, $1), point($4, $2))";
    let free_cars: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT {cell}, count(*) FROM vehicles_view
         WHERE status = 'available' AND {in_box} GROUP BY 1, 2"
    ))
    .bind(south)
    .bind(north)
    .bind(west)
    .bind(east)
    .bind(grid.lat_deg)
    .bind(grid.lon_deg)
    .fetch_all(pool)
    .await?;
    let since = now - Duration::seconds(i64::from(policy.demand_window_s));
    let recent_customers: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT {cell}, count(DISTINCT customer_id) FROM demand_activity
         WHERE occurred_at > $7 AND occurred_at <= $8
           AND customer_id IS DISTINCT FROM $9 AND {in_box} GROUP BY 1, 2"
    ))
    .bind(south)
    .bind(north)
    .bind(west)
    .bind(east)
    .bind(grid.lat_deg)
    .bind(grid.lon_deg)
    .bind(since)
    .bind(now)
    .bind(customer_id.map(|id| id.0))
    .fetch_all(pool)
    .await?;
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    for (row, col, n) in free_cars {
        if let Some(zone) = observed.get_mut(&PricingZone { row, col }) {
            zone.free_cars = count(n);
        }
    }
    for (row, col, n) in recent_customers {
        if let Some(zone) = observed.get_mut(&PricingZone { row, col }) {
            zone.recent_customers = count(n);
        }
    }
    Ok(observed)
}

/// No free car and no other customer seen.
fn nothing_observed(policy: &PricingPolicy) -> DemandObservation {
    DemandObservation {
        free_cars: 0,
        recent_customers: 0,
        window_s: policy.demand_window_s,
    }
}
