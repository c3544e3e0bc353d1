//! The public GBFS v3.0 feed under `/gbfs/v3/`: `gbfs.json` and the files it lists
//! (`system_information`, `vehicle_types`, `vehicle_status`, `geofencing_zones`,
//! `system_pricing_plans`), for journey planners and city dashboards. No token: the feed is
//! public, and every answer says how long it may be cached (`Cache-Control: public, max-age` =
//! the file's `ttl`) and carries an `ETag`, so a poller that sends `If-None-Match` gets a 304.
//!
//! Where the data comes from:
//! - cars (`vehicle_status`) and their models (`vehicle_types`) from `vehicles_view`;
//! - zones and prices from the city's fixture, handed over in [`GbfsConfig`] at start.
//!
//! Privacy, as GBFS asks: a car in a rental (driving or parked mid-trip) or in service is not
//! listed, and a car's public `vehicle_id` is a keyed hash of its real id and the number of trips
//! it has finished (`trips_ended`), so it stays the same between polls while the car waits and
//! changes after every trip: a consumer cannot follow a car from one rental to the next. The
//! list is sorted by public id, not by anything stable.
//!
//! Tariff parts GBFS cannot express (the parking rate, airport fees, free reservation minutes)
//! are in the plan's `description` and in `_velka_`-prefixed extension fields.

use crate::QueryContext;
use crate::error::QueryError;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HOST, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use domain::geo::Polygon;
use domain::money::Kopecks;
use domain::pricing::WaitingTariff;
use domain::trip::Tariff;
use domain::zone::OperatingArea;
use hmac::{Hmac, Mac};
use http_edge::Problem;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The GBFS version every file conforms to.
pub const GBFS_VERSION: &str = "3.0";

/// Seconds each file may be cached: static data (from fixtures) for an hour, the fleet's models
/// for five minutes, where the cars are for fifteen seconds.
const TTL_GBFS: u32 = 3600;
const TTL_SYSTEM_INFORMATION: u32 = 3600;
const TTL_VEHICLE_TYPES: u32 = 300;
const TTL_VEHICLE_STATUS: u32 = 15;
const TTL_GEOFENCING_ZONES: u32 = 3600;
const TTL_SYSTEM_PRICING_PLANS: u32 = 3600;

/// The language of every translated string in the feed.
const LANGUAGE: &str = "ru";

/// A full tank takes a car-sharing compact (Kia Rio, Hyundai Solaris, VW Polo: 50 l at about
/// 7 l/100 km in town) this far. The fleet has no propulsion data, so every model is
/// `combustion` with this range, and a car's current range is its fuel share of it.
pub(crate) const FULL_TANK_RANGE_M: f64 = 600_000.0;

/// Everything the feed publishes that is not in a read model: who runs the system, its zones
/// and its prices, and the key that rotates vehicle ids.
#[derive(Clone, Debug)]
pub struct GbfsConfig {
    /// One `system_id` per city.
    pub system_id: String,
    /// The system's public name.
    pub name: String,
    /// The operator's name.
    pub operator: String,
    /// IANA time zone of the city.
    pub timezone: String,
    /// Where feed consumers report problems.
    pub feed_contact_email: String,
    /// `https://host[:port]` the feed's URLs start with; `None` takes `http://` and the request's
    /// `Host` header.
    pub public_url: Option<String>,
    /// Where trips may end and for what surcharge.
    pub area: OperatingArea,
    /// The tariff trips start on.
    pub tariff: Tariff,
    /// The waiting tariff of reservations.
    pub waiting: WaitingTariff,
    /// Hashes real vehicle ids into public ones.
    pub vehicle_ids: VehicleIdKey,
    /// `last_updated` of the files built from configuration alone: when the server started.
    pub published_at: DateTime<Utc>,
}

/// The secret that turns a car's real id and trip count into its public GBFS id (HMAC-SHA256).
#[derive(Clone)]
pub struct VehicleIdKey(Hmac<Sha256>);

impl std::fmt::Debug for VehicleIdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VehicleIdKey(..)")
    }
}

/// The vehicle id key could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the GBFS vehicle id secret is not a usable HMAC key")]
pub struct InvalidKey;

impl VehicleIdKey {
    /// A key from a secret of any length (`VELKA_GBFS_SECRET`).
    pub fn new(secret: &[u8]) -> Result<Self, InvalidKey> {
        Hmac::<Sha256>::new_from_slice(secret)
            .map(VehicleIdKey)
            .map_err(|_| InvalidKey)
    }

    /// A key derived from another secret (the token secret), so that a deployment that sets
    /// only that one still publishes ids nobody can reverse without it. Domain-separated: the
    /// derived key reveals nothing about the token secret.
    pub fn derived_from(secret: &[u8]) -> Result<Self, InvalidKey> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| InvalidKey)?;
        mac.update(b"velka gbfs vehicle id key v1");
        Self::new(&mac.finalize().into_bytes())
    }

    /// The public id of `vehicle_id` after `trips_ended` trips: 32 hex digits.
    pub fn public_id(&self, vehicle_id: Uuid, trips_ended: i64) -> String {
        let mut mac = self.0.clone();
        mac.update(b"vehicle:");
        mac.update(vehicle_id.as_bytes());
        mac.update(&trips_ended.to_be_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Every GBFS file: the header fields and the file's `data`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct GbfsFile {
    /// When the data last changed, RFC 3339.
    last_updated: String,
    /// Seconds before the data may change again (and the answer's `max-age`).
    ttl: u32,
    /// Always `3.0`.
    version: &'static str,
    /// The file's content, as the GBFS v3.0 specification defines it.
    #[schema(value_type = Object)]
    data: Value,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A translated string in the feed's one language.
fn text(value: &str) -> Value {
    json!([{ "text": value, "language": LANGUAGE }])
}

/// The answer: the file with `Cache-Control` and `ETag`, or 304 if the caller has it already.
fn cacheable(request: &HeaderMap, file: &GbfsFile) -> Result<Response, Problem> {
    let body = serde_json::to_vec(file).map_err(|error| Problem::internal(&error))?;
    let etag = format!("\"{}\"", hex(&Sha256::digest(&body)[..16]));
    let cache_control = format!("public, max-age={}", file.ttl);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&cache_control) {
        headers.insert(CACHE_CONTROL, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    if matches_etag(request, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok((StatusCode::OK, headers, body).into_response())
}

/// Whether `If-None-Match` names `etag` (weak or strong) or is `*`.
pub(crate) fn matches_etag(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Where the feed's files are: the configured public URL, or `http://` + `Host`.
fn base_url(config: &GbfsConfig, request: &HeaderMap) -> String {
    let origin = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = request
                .get(HOST)
                .and_then(|host| host.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    format!("{origin}/gbfs/v3")
}

/// The files `gbfs.json` lists, in order.
const FILES: [&str; 5] = [
    "system_information",
    "vehicle_types",
    "vehicle_status",
    "geofencing_zones",
    "system_pricing_plans",
];

/// GBFS auto-discovery: the files this feed publishes (public).
#[utoipa::path(
    get,
    path = "/gbfs/v3/gbfs.json",
    operation_id = "gbfs_discovery",
    tag = "gbfs",
    responses(
        (status = 200, description = "The feed's files", body = GbfsFile),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
    ),
)]
pub(crate) async fn discovery(
    State(context): State<QueryContext>,
    request: HeaderMap,
) -> Result<Response, Problem> {
    let config = &context.gbfs;
    let base = base_url(config, &request);
    let feeds: Vec<Value> = FILES
        .iter()
        .map(|name| json!({ "name": name, "url": format!("{base}/{name}.json") }))
        .collect();
    let file = GbfsFile {
        last_updated: rfc3339(config.published_at),
        ttl: TTL_GBFS,
        version: GBFS_VERSION,
        data: json!({ "feeds": feeds }),
    };
    cacheable(&request, &file)
}

/// Who runs the system, where and when (public).
#[utoipa::path(
    get,
    path = "/gbfs/v3/system_information.json",
    operation_id = "gbfs_system_information",
    tag = "gbfs",
    responses(
        (status = 200, description = "The system", body = GbfsFile),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
    ),
)]
pub(crate) async fn system_information(
    State(context): State<QueryContext>,
    request: HeaderMap,
) -> Result<Response, Problem> {
    let config = &context.gbfs;
    let file = GbfsFile {
        last_updated: rfc3339(config.published_at),
        ttl: TTL_SYSTEM_INFORMATION,
        version: GBFS_VERSION,
        data: json!({
            "system_id": config.system_id,
            "languages": [LANGUAGE],
            "name": text(&config.name),
            "operator": text(&config.operator),
            "opening_hours": "24/7",
            "feed_contact_email": config.feed_contact_email,
            "timezone": config.timezone,
        }),
    };
    cacheable(&request, &file)
}

/// A model in the fleet, from `vehicles_view`.
#[derive(Debug, sqlx::FromRow)]
struct ModelRow {
    model: String,
}

/// The public id of a model: its ASCII letters and digits as a slug, plus a hash of the whole
/// name so that two models never share an id.
fn vehicle_type_id(model: &str) -> String {
    let mut slug = String::new();
    for c in model.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let hash = hex(&Sha256::digest(model.as_bytes())[..4]);
    if slug.is_empty() {
        format!("car-{hash}")
    } else if slug.ends_with('-') {
        format!("{slug}{hash}")
    } else {
        format!("{slug}-{hash}")
    }
}

/// When anything in the fleet last changed (`published_at` for an empty fleet).
async fn fleet_updated_at(context: &QueryContext) -> Result<DateTime<Utc>, QueryError> {
    let latest: (Option<DateTime<Utc>>,) =
        sqlx::query_as("SELECT max(updated_at) FROM vehicles_view")
            .fetch_one(&context.pool)
            .await?;
    Ok(latest.0.unwrap_or(context.gbfs.published_at))
}

/// The kinds of car in the fleet, one per model (public).
#[utoipa::path(
    get,
    path = "/gbfs/v3/vehicle_types.json",
    operation_id = "gbfs_vehicle_types",
    tag = "gbfs",
    responses(
        (status = 200, description = "One type per car model", body = GbfsFile),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 500, description = "Our fault", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn vehicle_types(
    State(context): State<QueryContext>,
    request: HeaderMap,
) -> Result<Response, Problem> {
    let models: Vec<ModelRow> =
        sqlx::query_as("SELECT DISTINCT model FROM vehicles_view ORDER BY model")
            .fetch_all(&context.pool)
            .await
            .map_err(QueryError::from)?;
    let plan_id = &context.gbfs.tariff.name;
    let types: Vec<Value> = models
        .iter()
        .map(|row| {
            let (make, model) = row
                .model
                .split_once(' ')
                .unwrap_or((row.model.as_str(), row.model.as_str()));
            json!({
                "vehicle_type_id": vehicle_type_id(&row.model),
                "form_factor": "car",
                "propulsion_type": "combustion",
                "max_range_meters": FULL_TANK_RANGE_M,
                "name": text(&row.model),
                "make": text(make),
                "model": text(model),
                "rider_capacity": 5,
                "wheel_count": 4,
                "return_constraint": "free_floating",
                "default_reserve_time": context.gbfs.waiting.max_minutes,
                "default_pricing_plan_id": plan_id,
                "pricing_plan_ids": [plan_id],
            })
        })
        .collect();
    let file = GbfsFile {
        last_updated: rfc3339(fleet_updated_at(&context).await?),
        ttl: TTL_VEHICLE_TYPES,
        version: GBFS_VERSION,
        data: json!({ "vehicle_types": types }),
    };
    cacheable(&request, &file)
}

/// A car that may be listed, from `vehicles_view`.
#[derive(Debug, sqlx::FromRow)]
struct VehicleRow {
    vehicle_id: Uuid,
    model: String,
    lat: f64,
    lon: f64,
    fuel_percent: i16,
    status: String,
    trips_ended: i64,
    updated_at: DateTime<Utc>,
}

/// The cars a customer can rent now, and those reserved (public). Cars in a rental or in
/// service are not listed; ids rotate after every trip.
#[utoipa::path(
    get,
    path = "/gbfs/v3/vehicle_status.json",
    operation_id = "gbfs_vehicle_status",
    tag = "gbfs",
    responses(
        (status = 200, description = "Free and reserved cars", body = GbfsFile),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 500, description = "Our fault", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn vehicle_status(
    State(context): State<QueryContext>,
    request: HeaderMap,
) -> Result<Response, Problem> {
    let rows: Vec<VehicleRow> = sqlx::query_as(
        "SELECT vehicle_id, model, lat, lon, fuel_percent, status, trips_ended, updated_at
         FROM vehicles_view
         WHERE status IN ('available', 'reserved')",
    )
    .fetch_all(&context.pool)
    .await
    .map_err(QueryError::from)?;
    let config = &context.gbfs;
    let mut vehicles: Vec<(String, Value)> = rows
        .iter()
        .map(|row| {
            let public_id = config
                .vehicle_ids
                .public_id(row.vehicle_id, row.trips_ended);
            let fuel = f64::from(row.fuel_percent.clamp(0, 100)) / 100.0;
            let vehicle = json!({
                "vehicle_id": public_id,
                "lat": row.lat,
                "lon": row.lon,
                "is_reserved": row.status == "reserved",
                "is_disabled": false,
                "vehicle_type_id": vehicle_type_id(&row.model),
                "last_reported": rfc3339(row.updated_at),
                "current_fuel_percent": fuel,
                "current_range_meters": (FULL_TANK_RANGE_M * fuel).round(),
                "pricing_plan_id": config.tariff.name,
            });
            (public_id, vehicle)
        })
        .collect();
    // By public id: an order by anything stable would let a consumer follow a car.
    vehicles.sort_by(|a, b| a.0.cmp(&b.0));
    let vehicles: Vec<Value> = vehicles.into_iter().map(|(_, vehicle)| vehicle).collect();
    let file = GbfsFile {
        last_updated: rfc3339(fleet_updated_at(&context).await?),
        ttl: TTL_VEHICLE_STATUS,
        version: GBFS_VERSION,
        data: json!({ "vehicles": vehicles }),
    };
    cacheable(&request, &file)
}

/// A polygon as a GeoJSON MultiPolygon: `[lon, lat]` positions, the ring closed and
/// counterclockwise (the right-hand rule of RFC 7946).
fn multipolygon(polygon: &Polygon) -> Value {
    let mut ring: Vec<[f64; 2]> = polygon.vertices.iter().map(|p| [p.lon, p.lat]).collect();
    if let (Some(first), Some(last)) = (ring.first().copied(), ring.last().copied())
        && first != last
    {
        ring.push(first);
    }
    // Twice the signed area (shoelace): negative means clockwise.
    let signed_area: f64 = ring
        .windows(2)
        .map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1])
        .sum();
    if signed_area < 0.0 {
        ring.reverse();
    }
    json!({ "type": "MultiPolygon", "coordinates": [[ring]] })
}

fn rule(start: bool, end: bool, through: bool) -> Value {
    json!({
        "ride_start_allowed": start,
        "ride_end_allowed": end,
        "ride_through_allowed": through,
    })
}

/// A rouble amount for people: `9,90 ₽`.
fn roubles_text(amount: Kopecks) -> String {
    let kopecks = amount.get();
    format!("{},{:02} ₽", kopecks / 100, (kopecks % 100).abs())
}

/// A rouble amount for machines: kopecks as a decimal number of roubles.
fn roubles(amount: Kopecks) -> f64 {
    // Exact for every amount below 2^53 kopecks; the division rounds to the nearest double.
    amount.get() as f64 / 100.0
}

/// Where trips may end (public): in the first zone that contains a point, in order: the
/// forbidden zones, the airports (for a surcharge), the operating area; nowhere else.
#[utoipa::path(
    get,
    path = "/gbfs/v3/geofencing_zones.json",
    operation_id = "gbfs_geofencing_zones",
    tag = "gbfs",
    responses(
        (status = 200, description = "Zones and their rules", body = GbfsFile),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
    ),
)]
pub(crate) async fn geofencing_zones(
    State(context): State<QueryContext>,
    request: HeaderMap,
) -> Result<Response, Problem> {
    let config = &context.gbfs;
    let area = &config.area;
    // GBFS: where zones overlap, the first one listed wins.
    let mut features = Vec::new();
    for forbidden in &area.forbidden {
        features.push(json!({
            "type": "Feature",
            "geometry": multipolygon(forbidden),
            "properties": {
                "name": text("Запретная зона: завершить аренду нельзя"),
                "rules": [rule(true, false, true)],
            },
        }));
    }
    for zone in &area.surcharge {
        features.push(json!({
            "type": "Feature",
            "geometry": multipolygon(&zone.area),
            "properties": {
                "name": text(&zone.name),
                "rules": [rule(true, true, true)],
                "_velka_end_surcharge": {
                    "amount": roubles(zone.surcharge_kopecks),
                    "currency": config.tariff.currency,
                },
            },
        }));
    }
    features.push(json!({
        "type": "Feature",
        "geometry": multipolygon(&area.boundary),
        "properties": {
            "name": text(&area.name),
            "rules": [rule(true, true, true)],
        },
    }));
    let file = GbfsFile {
        last_updated: rfc3339(config.published_at),
        ttl: TTL_GEOFENCING_ZONES,
        version: GBFS_VERSION,
        data: json!({
            "geofencing_zones": { "type": "FeatureCollection", "features": features },
            // Outside every zone a ride may start and pass, but not end.
            "global_rules": [rule(true, false, true)],
        }),
    };
    cacheable(&request, &file)
}

/// What a rental costs (public): the standard tariff as a GBFS plan.
#[utoipa::path(
    get,
    path = "/gbfs/v3/system_pricing_plans.json",
    operation_id = "gbfs_system_pricing_plans",
    tag = "gbfs",
    responses(
        (status = 200, description = "The pricing plans", body = GbfsFile),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
    ),
)]
pub(crate) async fn system_pricing_plans(
    State(context): State<QueryContext>,
    request: HeaderMap,
) -> Result<Response, Problem> {
    let config = &context.gbfs;
    let file = GbfsFile {
        last_updated: rfc3339(config.published_at),
        ttl: TTL_SYSTEM_PRICING_PLANS,
        version: GBFS_VERSION,
        data: json!({ "plans": [pricing_plan(config)] }),
    };
    cacheable(&request, &file)
}

fn pricing_plan(config: &GbfsConfig) -> Value {
    let tariff = &config.tariff;
    let waiting = &config.waiting;
    let surcharges: Vec<String> = config
        .area
        .surcharge
        .iter()
        .map(|zone| format!("{} {}", zone.name, roubles_text(zone.surcharge_kopecks)))
        .collect();
    let mut description = format!(
        "{} за минуту в пути, {} за минуту парковки во время аренды; {} км включено, далее {} \
         за километр. Бронирование: {} мин бесплатно, далее {} за минуту, до {} мин.",
        roubles_text(tariff.driving_kopecks_per_minute),
        roubles_text(tariff.parking_kopecks_per_minute),
        tariff.included_km,
        roubles_text(tariff.kopecks_per_extra_km),
        waiting.free_minutes,
        roubles_text(waiting.kopecks_per_minute),
        waiting.max_minutes,
    );
    if !surcharges.is_empty() {
        description.push_str(&format!(
            " Завершение аренды в аэропорту: {}.",
            surcharges.join(", ")
        ));
    }
    let zone_fees: Vec<Value> = config
        .area
        .surcharge
        .iter()
        .map(|zone| json!({ "zone": zone.name, "amount": roubles(zone.surcharge_kopecks) }))
        .collect();
    json!({
        "plan_id": tariff.name,
        "name": text(&tariff.name),
        "currency": tariff.currency,
        "price": 0,
        "is_taxable": false,
        "description": text(&description),
        // Every started driving minute; every started kilometre beyond the included ones.
        "per_min_pricing": [{
            "start": 0,
            "rate": roubles(tariff.driving_kopecks_per_minute),
            "interval": 1,
        }],
        "per_km_pricing": [{
            "start": tariff.included_km,
            "rate": roubles(tariff.kopecks_per_extra_km),
            "interval": 1,
        }],
        "surge_pricing": false,
        "_velka_parking_per_min_pricing": [{
            "start": 0,
            "rate": roubles(tariff.parking_kopecks_per_minute),
            "interval": 1,
        }],
        "_velka_reservation": {
            "free_minutes": waiting.free_minutes,
            "rate_per_min": roubles(waiting.kopecks_per_minute),
            "max_minutes": waiting.max_minutes,
        },
        "_velka_end_surcharges": zone_fees,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::geo::GeoPoint;

    #[test]
    fn a_public_id_is_stable_for_a_trip_count_and_changes_with_it_and_the_key() {
        let key = VehicleIdKey::derived_from(b"jwt secret").unwrap();
        let car = Uuid::now_v7();
        let first = key.public_id(car, 0);
        assert_eq!(first, key.public_id(car, 0));
        assert_eq!(first.len(), 32);
        assert_ne!(first, key.public_id(car, 1));
        assert_ne!(first, key.public_id(Uuid::now_v7(), 0));
        let other = VehicleIdKey::new(b"another secret").unwrap();
        assert_ne!(first, other.public_id(car, 0));
        assert!(!first.contains(&car.simple().to_string()[..8]));
    }

    #[test]
    fn rings_are_closed_and_counterclockwise() {
        let clockwise = Polygon {
            vertices: vec![
                GeoPoint { lat: 0.0, lon: 0.0 },
                GeoPoint { lat: 1.0, lon: 0.0 },
                GeoPoint { lat: 1.0, lon: 1.0 },
                GeoPoint { lat: 0.0, lon: 1.0 },
            ],
        };
        let geometry = multipolygon(&clockwise);
        let ring = geometry["coordinates"][0][0].as_array().unwrap();
        assert_eq!(ring.len(), 5);
        assert_eq!(ring[0], ring[4]);
        // Counterclockwise in (lon, lat): (0,0) → (1,0) → (1,1) → (0,1).
        assert_eq!(ring[1], json!([1.0, 0.0]));
    }

    #[test]
    fn type_ids_are_readable_and_distinct() {
        let rio = vehicle_type_id("Kia Rio");
        assert!(rio.starts_with("kia-rio-"), "{rio}");
        assert_ne!(rio, vehicle_type_id("Kia  Rio"));
        assert!(vehicle_type_id("Лада Веста").starts_with("car-"));
    }

    #[test]
    fn etags_match_strong_weak_lists_and_star() {
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"a\", W/\"b\""));
        assert!(matches_etag(&headers, "\"b\""));
        assert!(matches_etag(&headers, "\"a\""));
        assert!(!matches_etag(&headers, "\"c\""));
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches_etag(&headers, "\"c\""));
        assert!(!matches_etag(&HeaderMap::new(), "\"c\""));
    }

    #[test]
    fn roubles_from_kopecks() {
        assert_eq!(roubles_text(Kopecks(990)), "9,90 ₽");
        assert_eq!(roubles_text(Kopecks(30_000)), "300,00 ₽");
        assert!((roubles(Kopecks(990)) - 9.9).abs() < f64::EPSILON);
    }
}
