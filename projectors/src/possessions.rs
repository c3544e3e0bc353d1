//! `vehicle_possessions` and `vehicle_plates`: who had which car when, for traffic fines ("who
//! was driving А123ВС777 at 14:05?") and support. One row per trip, its `during` range open while
//! the trip runs and closed at `TripEnded`; and each car's plate, normalised as the domain
//! normalises plates, so that a fine's plate typed in either alphabet finds the car.

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use crate::rows::{Guard, Row, Rows, guard, micros};
use crate::trips::trip_of;
use chrono::{DateTime, Utc};
use domain::account::AccountId;
use domain::ids::{FineId, TripId, VehicleId};
use domain::trip::TripEvent;
use domain::value::Plate;
use domain::vehicle::VehicleEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// Writes `vehicle_possessions` from the `trip` streams and `vehicle_plates` from the `vehicle`
/// streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct PossessionsProjector;

impl Projector for PossessionsProjector {
    fn name(&self) -> &'static str {
        "vehicle_possessions"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["vehicle_possessions", "vehicle_plates"]
    }

    fn categories(&self) -> &'static [&'static str] {
        // Fines change nothing here, but they are read so that the checkpoint passes each fine
        // as soon as it is applied: matching a fine waits for this checkpoint to reach the
        // fine's position (and a batch with nothing of a projector's categories only moves the
        // checkpoint up to `checkpoint_delay` later).
        &[TripId::CATEGORY, VehicleId::CATEGORY, FineId::CATEGORY]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, events))
    }
}

/// A `vehicle_possessions` row: one trip's hold on a car.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PossessionRow {
    trip_id: Uuid,
    vehicle_id: Uuid,
    customer_id: Uuid,
    payer_account_id: String,
    company_id: Option<Uuid>,
    during: Span,
    stream_version: i64,
}

impl Row for PossessionRow {
    const TABLE: &'static str = "vehicle_possessions";
    const KEY: &'static str = "trip_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.trip_id
    }
}

/// A `vehicle_plates` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PlateRow {
    vehicle_id: Uuid,
    plate: String,
    model: String,
    added_at: DateTime<Utc>,
}

impl Row for PlateRow {
    const TABLE: &'static str = "vehicle_plates";
    const KEY: &'static str = "vehicle_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.vehicle_id
    }
}

/// The `during` range: `[from,)` while the trip runs, `[from, to)` after it, and `[t, t]` for a
/// trip that ended the instant it started. Travels as PostgreSQL's range text.
#[derive(Clone, Debug, PartialEq)]
struct Span {
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
    /// Whether `to` is inside the range (`]`).
    to_inclusive: bool,
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stamp = |at: &DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let text = match &self.to {
            None => format!("[\"{}\",)", stamp(&self.from)),
            Some(to) => format!(
                "[\"{}\",\"{}\"{}",
                stamp(&self.from),
                stamp(to),
                if self.to_inclusive { ']' } else { ')' }
            ),
        };
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_span(&text).ok_or_else(|| serde::de::Error::custom(format!("not a range: {text}")))
    }
}

/// Reads PostgreSQL's text of a `tstzrange` with a closed lower bound: `["2026-11-25
/// 09:00:00+00",)` or `["…","…"]`.
fn parse_span(text: &str) -> Option<Span> {
    let inner = text.strip_prefix('[')?;
    let (body, to_inclusive) = match inner.strip_suffix(']') {
        Some(body) => (body, true),
        None => (inner.strip_suffix(')')?, false),
    };
    let (from, to) = body.split_once(',')?;
    let time = |part: &str| -> Option<DateTime<Utc>> {
        let part = part.trim().trim_matches('"');
        DateTime::parse_from_str(part, "%Y-%m-%d %H:%M:%S%.f%#z")
            .or_else(|_| DateTime::parse_from_rfc3339(part))
            .ok()
            .map(|at| at.with_timezone(&Utc))
    };
    let to = to.trim();
    Some(Span {
        from: time(from)?,
        to: if to.is_empty() { None } else { Some(time(to)?) },
        to_inclusive,
    })
}

async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    let mut trips = Vec::new();
    let mut cars = Vec::new();
    for event in events {
        if event.stream_id.starts_with("trip-") {
            let decoded: TripEvent = decode_event(event).map_err(|error| error.at(event))?;
            trips.push((*event, decoded));
        } else if event.stream_id.starts_with("vehicle-")
            && event.event_type == "VehicleAddedToFleet"
        {
            // Only the car joining the fleet names its plate; other events of the car are not
            // read.
            let decoded: VehicleEvent = decode_event(event).map_err(|error| error.at(event))?;
            cars.push(decoded);
        }
    }
    let mut possessions = Rows::<PossessionRow>::default();
    possessions
        .load(conn, trips.iter().map(|(_, event)| trip_of(event)))
        .await?;
    for (event, trip_event) in &trips {
        fold(&mut possessions, event, trip_event).map_err(|error| error.at(event))?;
    }
    possessions.write(conn).await?;
    if !cars.is_empty() {
        let mut plates = Rows::<PlateRow>::default();
        plates
            .load(
                conn,
                cars.iter().filter_map(|event| match event {
                    VehicleEvent::VehicleAddedToFleet { details, .. } => Some(details.vehicle_id.0),
                    _ => None,
                }),
            )
            .await?;
        for event in &cars {
            if let VehicleEvent::VehicleAddedToFleet {
                details, added_at, ..
            } = event
                && plates.get(&details.vehicle_id.0).is_none()
            {
                // Normalised again: a plate recorded before normalisation mapped Latin
                // look-alikes is stored the way a plate is parsed today, so lookups need no
                // second spelling.
                let plate = Plate::parse("plate", details.plate.as_str())
                    .map(|plate| plate.as_str().to_owned())
                    .unwrap_or_else(|_| details.plate.as_str().to_owned());
                plates.put(PlateRow {
                    vehicle_id: details.vehicle_id.0,
                    plate,
                    model: details.model.as_str().to_owned(),
                    added_at: micros(*added_at),
                });
            }
        }
        plates.write(conn).await?;
    }
    Ok(())
}

fn fold(
    possessions: &mut Rows<PossessionRow>,
    event: &RecordedEvent,
    trip_event: &TripEvent,
) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let trip_id = trip_of(trip_event);
    if let TripEvent::TripStarted { start, started_at } = trip_event {
        if possessions.get(&trip_id).is_none() {
            let payer = match start.company_id {
                Some(company_id) => AccountId::Company(company_id),
                None => AccountId::Customer(start.customer_id),
            };
            possessions.put(PossessionRow {
                trip_id,
                vehicle_id: start.vehicle_id.0,
                customer_id: start.customer_id.0,
                payer_account_id: payer.to_string(),
                company_id: start.company_id.map(|company| company.0),
                during: Span {
                    from: micros(*started_at),
                    to: None,
                    to_inclusive: false,
                },
                stream_version: version,
            });
        }
        return Ok(());
    }
    let current = possessions.get(&trip_id).map(|row| row.stream_version);
    if guard(
        "vehicle_possessions",
        &trip_id,
        current,
        version,
        &event.event_type,
    )? == Guard::Applied
    {
        return Ok(());
    }
    let Some(row) = possessions.get_mut(&trip_id) else {
        return Ok(());
    };
    // Parking keeps the car the customer's: only the version moves.
    if let TripEvent::TripEnded { ended_at, .. } = trip_event {
        // A trip ended the instant it started held the car for that instant: `[t, t]`, not the
        // empty `[t, t)`. The end is never before the start, even if a clock stepped back.
        let ended = micros(*ended_at);
        let from = row.during.from;
        row.during = Span {
            from,
            to: Some(ended.max(from)),
            to_inclusive: ended <= from,
        };
    }
    row.stream_version = version;
    Ok(())
}
