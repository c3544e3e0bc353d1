//! `GET /v1/vehicles/available?lat=&lon=&radius_m=&limit=`: the available cars nearest a point,
//! for any signed-in caller.

use crate::QueryContext;
use crate::error::QueryError;
use crate::params::QueryParams;
use crate::search_area::{EARTH_RADIUS_M, LonLatBox, bounding_boxes};
use axum::Json;
use axum::extract::State;
use domain::geo::GeoPoint;
use domain::pricing::{PricingZone, apply_multiplier};
use http_edge::{Caller, Problem};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// The search radius when none is given, in metres.
const DEFAULT_RADIUS_M: u32 = 1_000;
/// The largest search radius, in metres: a city district, not the whole fleet.
const MAX_RADIUS_M: u32 = 50_000;
/// How many cars when no limit is given.
const DEFAULT_LIMIT: u32 = 50;
/// The most cars one answer lists.
const MAX_LIMIT: u32 = 200;

/// One car in the answer.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub(crate) struct AvailableVehicle {
    vehicle_id: Uuid,
    plate: String,
    model: String,
    lat: f64,
    lon: f64,
    fuel_percent: i16,
    /// Great-circle distance from the requested point, in metres.
    distance_m: f64,
    /// How far the fuel left goes, roughly, in kilometres.
    #[sqlx(skip)]
    range_km: u32,
    /// What a trip in this car costs now, at its pricing zone's demand; a quote
    /// (`POST /v1/quotes`) fixes it for a few minutes.
    #[sqlx(skip)]
    price: Option<CurrentPrice>,
}

/// A car's price now: the standard tariff's per-minute rates times its zone's multiplier.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct CurrentPrice {
    /// The pricing zone (grid cell).
    zone: String,
    /// The demand multiplier in permille (1000 = 1.0×).
    multiplier_permille: u32,
    driving_kopecks_per_minute: i64,
    parking_kopecks_per_minute: i64,
}

/// The answer: cars ordered by distance, nearest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AvailableResponse {
    vehicles: Vec<AvailableVehicle>,
}

/// Available cars near a point, nearest first (any role).
#[utoipa::path(
    get,
    path = "/v1/vehicles/available",
    operation_id = "available_vehicles",
    tag = "vehicles",
    params(
        ("lat" = f64, Query, description = "Latitude, -90 to 90"),
        ("lon" = f64, Query, description = "Longitude, -180 to 180"),
        ("radius_m" = Option<u32>, Query, description = "Search radius in metres, 1 to 50000 (default 1000)"),
        ("limit" = Option<u32>, Query, description = "At most this many cars, 1 to 200 (default 50)"),
    ),
    responses((status = 200, description = "Cars by distance", body = AvailableResponse), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn available(
    State(context): State<QueryContext>,
    caller: Caller,
    params: QueryParams,
) -> Result<Json<AvailableResponse>, Problem> {
    let center = GeoPoint {
        lat: params.required_number_in("lat", -90.0..=90.0)?,
        lon: params.required_number_in("lon", -180.0..=180.0)?,
    };
    let radius_m = params
        .number_in("radius_m", 1..=MAX_RADIUS_M)?
        .unwrap_or(DEFAULT_RADIUS_M);
    let limit = params
        .number_in("limit", 1..=MAX_LIMIT)?
        .unwrap_or(DEFAULT_LIMIT);
    let mut vehicles = available_near(&context.pool, center, f64::from(radius_m), limit).await?;
    // A customer's own recent quotes do not raise the price they see, as in their quote.
    let customer = match caller.role {
        http_edge::Role::Customer => caller.subject.parse().ok().map(domain::ids::CustomerId),
        _ => None,
    };
    let policy = &context.pricing;
    let tariff = &context.gbfs.tariff;
    let now = context.clock.now();
    let zone_of = |vehicle: &AvailableVehicle| {
        policy.zone_grid.zone_of(&GeoPoint {
            lat: vehicle.lat,
            lon: vehicle.lon,
        })
    };
    let zones: Vec<PricingZone> = vehicles.iter().map(zone_of).collect();
    let observed = projectors::demand::observe_zones(&context.pool, policy, &zones, customer, now)
        .await
        .map_err(QueryError::from)?;
    for (vehicle, zone) in vehicles.iter_mut().zip(&zones) {
        vehicle.range_km = (f64::from(vehicle.fuel_percent.clamp(0, 100)) / 100.0
            * crate::gbfs::FULL_TANK_RANGE_M
            / 1000.0)
            .round() as u32;
        vehicle.price = observed.get(zone).map(|observation| {
            let permille = policy.multiplier_permille(observation);
            CurrentPrice {
                zone: zone.to_string(),
                multiplier_permille: permille,
                driving_kopecks_per_minute: apply_multiplier(
                    tariff.driving_kopecks_per_minute,
                    permille,
                )
                .get(),
                parking_kopecks_per_minute: apply_multiplier(
                    tariff.parking_kopecks_per_minute,
                    permille,
                )
                .get(),
            }
        });
    }
    Ok(Json(AvailableResponse { vehicles }))
}

/// The exact distance from `($1, $2)` (lat, lon) to the row's position: the domain's haversine
/// (`domain::geo::GeoPoint::distance_m`), same formula and Earth radius.
fn distance_sql() -> String {
    format!(
        "2 * {EARTH_RADIUS_M} * asin(least(1, sqrt(
             power(sin(radians(lat - $1) / 2), 2)
             + cos(radians($1)) * cos(radians(lat)) * power(sin(radians(lon - $2) / 2), 2))))"
    )
}

/// The query for `boxes` bounding boxes. The boxes (binds from `$5` on, four per box) select
/// candidates through the partial GiST index `vehicles_view_available_position_idx` (see the
/// projectors migration for why that index and not earthdistance or PostGIS); only those few
/// rows get the exact distance, the radius check (`$3`) and the sort.
pub(crate) fn available_sql(boxes: usize) -> String {
    let in_boxes: Vec<String> = (0..boxes)
        .map(|i| {
            let p = 5 + 4 * i;
            format!(
                "point(lon, lat) <@ box(point(${}, ${}), point(${}, ${}))",
                p,
                p + 1,
                p + 2,
                p + 3
            )
        })
        .collect();
    format!(
        "SELECT vehicle_id, plate, model, lat, lon, fuel_percent, distance_m
         FROM (SELECT vehicle_id, plate, model, lat, lon, fuel_percent, {} AS distance_m
               FROM vehicles_view
               WHERE status = 'available' AND ({})) AS candidates
         WHERE distance_m <= $3
         ORDER BY distance_m, vehicle_id
         LIMIT $4",
        distance_sql(),
        in_boxes.join(" OR ")
    )
}

/// Binds a query from [`available_sql`] for `center`, `radius_m`, `limit` and `boxes`.
pub(crate) fn bind_available<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    center: GeoPoint,
    radius_m: f64,
    limit: u32,
    boxes: &[LonLatBox],
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    let mut query = query
        .bind(center.lat)
        .bind(center.lon)
        .bind(radius_m)
        .bind(i64::from(limit));
    for b in boxes {
        query = query
            .bind(b.min_lon)
            .bind(b.min_lat)
            .bind(b.max_lon)
            .bind(b.max_lat);
    }
    query
}

async fn available_near(
    pool: &PgPool,
    center: GeoPoint,
    radius_m: f64,
    limit: u32,
) -> Result<Vec<AvailableVehicle>, QueryError> {
    let boxes = bounding_boxes(center, radius_m);
    let sql = available_sql(boxes.len());
    let query = bind_available(sqlx::query_as(&sql), center, radius_m, limit, &boxes);
    Ok(query.fetch_all(pool).await?)
}

#[cfg(test)]
mod tests {
    //! The query's plan on a fleet large enough for the planner to care: it must go through the
    //! position index, never scan the table.

    use super::*;
    use event_store::testing::TestDatabase;

    #[tokio::test]
    async fn the_search_uses_the_position_index_not_a_table_scan() {
        let db = TestDatabase::new().await;
        // 20 000 cars spread over a 40 × 40 km square around Moscow, a quarter of them in trips.
        sqlx::query(
            "INSERT INTO vehicles_view (vehicle_id, plate, vin, model, lat, lon, fuel_percent,
                 odometer_m, doors_locked, status, current_trip_id, updated_at, stream_version)
             SELECT gen_random_uuid(), 'P' || n, 'V' || n, 'Kia Rio',
                    55.57 + random() * 0.36, 37.30 + random() * 0.64, 50, 0, true,
                    CASE WHEN n % 4 = 0 THEN 'in_trip' ELSE 'available' END,
                    CASE WHEN n % 4 = 0 THEN gen_random_uuid() END, now(), 1
             FROM generate_series(1, 20000) AS n",
        )
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query("ANALYZE vehicles_view")
            .execute(db.pool())
            .await
            .unwrap();

        let center = GeoPoint {
            lat: 55.75,
            lon: 37.62,
        };
        let boxes = bounding_boxes(center, 1_000.0);
        let sql = format!("EXPLAIN (FORMAT JSON) {}", available_sql(boxes.len()));
        let plan: (serde_json::Value,) =
            bind_available(sqlx::query_as(&sql), center, 1_000.0, 50, &boxes)
                .fetch_one(db.pool())
                .await
                .unwrap();
        let plan = plan.0.to_string();
        assert!(
            plan.contains("vehicles_view_available_position_idx"),
            "the plan does not use the index: {plan}"
        );
        assert!(
            !plan.contains("Seq Scan"),
            "the plan scans the table: {plan}"
        );

        // And it answers: every car returned is available and within the radius, nearest first.
        let cars = available_near(db.pool(), center, 1_000.0, 200)
            .await
            .unwrap();
        assert!(!cars.is_empty());
        assert!(cars.windows(2).all(|w| w[0].distance_m <= w[1].distance_m));
        for car in &cars {
            let exact = center.distance_m(&GeoPoint {
                lat: car.lat,
                lon: car.lon,
            });
            assert!(car.distance_m <= 1_000.0);
            assert!((car.distance_m - exact).abs() < 1e-6, "{car:?} vs {exact}");
        }
    }
}
