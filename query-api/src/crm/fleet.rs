//! `GET /v1/fleet/status`: how many cars are available, reserved, in a trip or in service, over
//! the whole fleet and per pricing zone (the city's grid, which the binary hands over in the
//! pricing policy: the same cells quotes are priced in), for the fleet console and support. Read from
//! `vehicles_view`; the cell of a car is computed in SQL with the division the domain's
//! `ZoneGrid::zone_of` uses, so a new grid applies without a rebuild.

use crate::QueryContext;
use crate::error::QueryError;
use axum::Json;
use axum::extract::State;
use domain::pricing::PricingZone;
use http_edge::{Caller, Problem, Role};
use serde::Serialize;

/// Cars by status.
#[derive(Debug, Default, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub(crate) struct Counts {
    available: i64,
    reserved: i64,
    in_trip: i64,
    in_service: i64,
    total: i64,
}

/// One pricing zone's cars.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ZoneStatus {
    /// The cell's id, `r<row>c<col>` (as quotes name it).
    zone: String,
    row: i64,
    col: i64,
    #[serde(flatten)]
    counts: Counts,
}

/// The grid the zones are cells of.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Grid {
    lat_deg: f64,
    lon_deg: f64,
}

/// The fleet's status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FleetStatus {
    /// Over the whole fleet.
    totals: Counts,
    /// Per pricing zone with at least one car, by row then column.
    zones: Vec<ZoneStatus>,
    zone_grid: Grid,
}

#[derive(Debug, sqlx::FromRow)]
struct ZoneRow {
    row: i64,
    col: i64,
    #[sqlx(flatten)]
    counts: Counts,
}

/// Cars per status, over the fleet and per pricing zone (fleet, support).
#[utoipa::path(
    get,
    path = "/v1/fleet/status",
    operation_id = "fleet_status",
    tag = "fleet",
    responses((status = 200, description = "Cars per status and zone", body = FleetStatus), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn fleet_status(
    State(context): State<QueryContext>,
    caller: Caller,
) -> Result<Json<FleetStatus>, Problem> {
    caller.require(&[Role::Fleet, Role::Support])?;
    let grid = &context.pricing.zone_grid;
    let rows: Vec<ZoneRow> = sqlx::query_as(
        "SELECT floor(lat / $1)::bigint AS row, floor(lon / $2)::bigint AS col,
                count(*) FILTER (WHERE status = 'available') AS available,
                count(*) FILTER (WHERE status = 'reserved') AS reserved,
                count(*) FILTER (WHERE status = 'in_trip') AS in_trip,
                count(*) FILTER (WHERE status = 'in_service') AS in_service,
                count(*) AS total
         FROM vehicles_view
         GROUP BY 1, 2
         ORDER BY 1, 2",
    )
    .bind(grid.lat_deg)
    .bind(grid.lon_deg)
    .fetch_all(&context.pool)
    .await
    .map_err(QueryError::from)?;
    let mut totals = Counts::default();
    let zones = rows
        .into_iter()
        .map(|row| {
            totals.available += row.counts.available;
            totals.reserved += row.counts.reserved;
            totals.in_trip += row.counts.in_trip;
            totals.in_service += row.counts.in_service;
            totals.total += row.counts.total;
            ZoneStatus {
                zone: PricingZone {
                    row: row.row,
                    col: row.col,
                }
                .to_string(),
                row: row.row,
                col: row.col,
                counts: row.counts,
            }
        })
        .collect();
    Ok(Json(FleetStatus {
        totals,
        zones,
        zone_grid: Grid {
            lat_deg: grid.lat_deg,
            lon_deg: grid.lon_deg,
        },
    }))
}
