//! `trips_view`: one row per trip, for the trip's customer and for support: its phase, the time
//! driven and parked in finished spells (enough for a running price), and the final price.

use crate::projector::{ProjectionError, Projector, decode_page, to_bigint};
use crate::rows::{Guard, Row, Rows, guard, micros};
use chrono::{DateTime, Utc};
use domain::trip::TripEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Writes `trips_view` from the `trip` streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct TripsProjector;

impl Projector for TripsProjector {
    fn name(&self) -> &'static str {
        "trips_view"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["trips_view"]
    }

    /// Every row is one trip's, or one car's: its stream's.
    fn segmentable(&self) -> bool {
        true
    }

    fn categories(&self) -> &'static [&'static str] {
        &[domain::ids::TripId::CATEGORY]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, events))
    }
}

/// A `trips_view` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TripRow {
    trip_id: Uuid,
    customer_id: Uuid,
    vehicle_id: Uuid,
    /// `driving`, `parked` or `ended`.
    status: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    /// When the current phase began.
    phase_since: DateTime<Utc>,
    driving_s: i64,
    parking_s: i64,
    tariff: Value,
    start_lat: f64,
    start_lon: f64,
    end_lat: Option<f64>,
    end_lon: Option<f64>,
    start_odometer_m: i64,
    end_odometer_m: Option<i64>,
    price: Option<Value>,
    total_kopecks: Option<i64>,
    updated_at: DateTime<Utc>,
    stream_version: i64,
}

impl Row for TripRow {
    const TABLE: &'static str = "trips_view";
    const KEY: &'static str = "trip_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.trip_id
    }
}

/// The seconds of a spell from `since` to `until`, counted the way the domain counts one (whole
/// seconds of each end subtracted, never negative), so that the finished spells here add up to
/// the durations in the trip's final price.
fn spell_s(since: DateTime<Utc>, until: DateTime<Utc>) -> i64 {
    (until.timestamp() - since.timestamp()).max(0)
}

async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    let decoded = decode_page::<TripEvent>(events)?;
    let mut trips = Rows::<TripRow>::default();
    trips
        .load(conn, decoded.iter().map(|(_, event)| trip_of(event)))
        .await?;
    for (event, trip_event) in &decoded {
        fold(&mut trips, event, trip_event).map_err(|error| error.at(event))?;
    }
    trips.write(conn).await?;
    Ok(())
}

/// The trip an event is about.
pub(crate) fn trip_of(event: &TripEvent) -> Uuid {
    match event {
        TripEvent::TripStarted { start, .. } => start.trip_id.0,
        TripEvent::TripParked { trip_id, .. }
        | TripEvent::TripResumed { trip_id, .. }
        | TripEvent::TripEnded { trip_id, .. } => trip_id.0,
    }
}

fn fold(
    trips: &mut Rows<TripRow>,
    event: &RecordedEvent,
    trip_event: &TripEvent,
) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let trip_id = trip_of(trip_event);
    if let TripEvent::TripStarted { start, started_at } = trip_event {
        if trips.get(&trip_id).is_none() {
            let started_at = micros(*started_at);
            trips.put(TripRow {
                trip_id,
                customer_id: start.customer_id.0,
                vehicle_id: start.vehicle_id.0,
                status: "driving".to_owned(),
                started_at,
                ended_at: None,
                phase_since: started_at,
                driving_s: 0,
                parking_s: 0,
                tariff: json(&start.tariff)?,
                start_lat: start.start_position.lat,
                start_lon: start.start_position.lon,
                end_lat: None,
                end_lon: None,
                start_odometer_m: to_bigint("odometer_m", start.start_odometer_m.get())?,
                end_odometer_m: None,
                price: None,
                total_kopecks: None,
                updated_at: started_at,
                stream_version: version,
            });
        }
        return Ok(());
    }
    let current = trips.get(&trip_id).map(|row| row.stream_version);
    if guard("trips_view", &trip_id, current, version, &event.event_type)? == Guard::Applied {
        return Ok(());
    }
    let Some(row) = trips.get_mut(&trip_id) else {
        return Ok(());
    };
    match trip_event {
        TripEvent::TripStarted { .. } => {}
        TripEvent::TripParked { parked_at, .. } => {
            let at = micros(*parked_at);
            if row.status == "driving" {
                row.driving_s += spell_s(row.phase_since, at);
            }
            row.status = "parked".to_owned();
            row.phase_since = at;
            row.updated_at = at;
        }
        TripEvent::TripResumed { resumed_at, .. } => {
            let at = micros(*resumed_at);
            if row.status == "parked" {
                row.parking_s += spell_s(row.phase_since, at);
            }
            row.status = "driving".to_owned();
            row.phase_since = at;
            row.updated_at = at;
        }
        TripEvent::TripEnded {
            end_position,
            end_odometer_m,
            ended_at,
            price,
            ..
        } => {
            // The totals the trip was billed for replace the sum of spells: the price is the
            // authority, and this keeps the two from ever disagreeing.
            let at = micros(*ended_at);
            row.status = "ended".to_owned();
            row.ended_at = Some(at);
            row.phase_since = at;
            row.driving_s = to_bigint("driving_s", price.driving_s)?;
            row.parking_s = to_bigint("parking_s", price.parking_s)?;
            row.end_lat = Some(end_position.lat);
            row.end_lon = Some(end_position.lon);
            row.end_odometer_m = Some(to_bigint("odometer_m", end_odometer_m.get())?);
            row.price = Some(json(price)?);
            row.total_kopecks = Some(price.total_kopecks.get());
            row.updated_at = at;
        }
    }
    row.stream_version = version;
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> Result<Value, ProjectionError> {
    serde_json::to_value(value)
        .map_err(|error| ProjectionError::Inconsistent(format!("cannot encode as JSON: {error}")))
}
