//! `vehicles_view`: one row per car in the fleet, with its last reported position and state and
//! whether it can be rented, for "available cars near me" and the fleet console, and how many
//! trips it has finished (`trips_ended`, which rotates its public GBFS id).

use crate::projector::{ProjectionError, Projector, decode_page, to_bigint};
use crate::rows::{Guard, Row, Rows, guard, micros};
use chrono::{DateTime, Utc};
use domain::vehicle::VehicleEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// Writes `vehicles_view` from the `vehicle` streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct VehiclesProjector;

impl Projector for VehiclesProjector {
    fn name(&self) -> &'static str {
        "vehicles_view"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["vehicles_view"]
    }

    /// Every row is one trip's, or one car's: its stream's.
    fn segmentable(&self) -> bool {
        true
    }

    fn categories(&self) -> &'static [&'static str] {
        &[domain::ids::VehicleId::CATEGORY]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, events))
    }
}

/// A `vehicles_view` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct VehicleRow {
    vehicle_id: Uuid,
    plate: String,
    vin: String,
    model: String,
    lat: f64,
    lon: f64,
    fuel_percent: i16,
    odometer_m: i64,
    doors_locked: bool,
    /// `available`, `reserved`, `in_trip` or `in_service`.
    status: String,
    current_trip_id: Option<Uuid>,
    current_reservation_id: Option<Uuid>,
    trips_ended: i64,
    updated_at: DateTime<Utc>,
    stream_version: i64,
}

impl Row for VehicleRow {
    const TABLE: &'static str = "vehicles_view";
    const KEY: &'static str = "vehicle_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.vehicle_id
    }
}

fn vehicle_of(event: &VehicleEvent) -> Uuid {
    match event {
        VehicleEvent::VehicleAddedToFleet { details, .. } => details.vehicle_id.0,
        VehicleEvent::TelemetryRecorded { vehicle_id, .. }
        | VehicleEvent::VehicleRented { vehicle_id, .. }
        | VehicleEvent::VehicleReturned { vehicle_id, .. }
        | VehicleEvent::VehicleSentToService { vehicle_id, .. }
        | VehicleEvent::VehicleServiceTaskClosed { vehicle_id, .. }
        | VehicleEvent::VehicleReleasedFromService { vehicle_id, .. }
        | VehicleEvent::VehicleReserved { vehicle_id, .. }
        | VehicleEvent::VehicleReservationReleased { vehicle_id, .. } => vehicle_id.0,
    }
}

async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    let decoded = decode_page::<VehicleEvent>(events)?;
    let mut vehicles = Rows::<VehicleRow>::default();
    vehicles
        .load(conn, decoded.iter().map(|(_, event)| vehicle_of(event)))
        .await?;
    for (event, vehicle_event) in &decoded {
        fold(&mut vehicles, event, vehicle_event).map_err(|error| error.at(event))?;
    }
    vehicles.write(conn).await?;
    Ok(())
}

fn fold(
    vehicles: &mut Rows<VehicleRow>,
    event: &RecordedEvent,
    vehicle_event: &VehicleEvent,
) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let vehicle_id = vehicle_of(vehicle_event);
    if let VehicleEvent::VehicleAddedToFleet {
        details,
        position,
        fuel_percent,
        odometer_m,
        added_at,
    } = vehicle_event
    {
        // A car joins the fleet locked (see the vehicle decider's evolve).
        if vehicles.get(&vehicle_id).is_none() {
            vehicles.put(VehicleRow {
                vehicle_id,
                plate: details.plate.as_str().to_owned(),
                vin: details.vin.as_str().to_owned(),
                model: details.model.as_str().to_owned(),
                lat: position.lat,
                lon: position.lon,
                fuel_percent: i16::from(fuel_percent.get()),
                odometer_m: to_bigint("odometer_m", odometer_m.get())?,
                doors_locked: true,
                status: "available".to_owned(),
                current_trip_id: None,
                current_reservation_id: None,
                trips_ended: 0,
                updated_at: micros(*added_at),
                stream_version: version,
            });
        }
        return Ok(());
    }
    let current = vehicles.get(&vehicle_id).map(|row| row.stream_version);
    if guard(
        "vehicles_view",
        &vehicle_id,
        current,
        version,
        &event.event_type,
    )? == Guard::Applied
    {
        return Ok(());
    }
    let Some(row) = vehicles.get_mut(&vehicle_id) else {
        return Ok(());
    };
    let at = match vehicle_event {
        VehicleEvent::VehicleAddedToFleet { added_at, .. } => *added_at,
        VehicleEvent::TelemetryRecorded {
            telemetry,
            recorded_at,
            ..
        } => {
            row.lat = telemetry.position.lat;
            row.lon = telemetry.position.lon;
            row.fuel_percent = i16::from(telemetry.fuel_percent.get());
            row.odometer_m = to_bigint("odometer_m", telemetry.odometer_m.get())?;
            row.doors_locked = telemetry.doors_locked;
            *recorded_at
        }
        VehicleEvent::VehicleRented {
            trip_id, rented_at, ..
        } => {
            row.status = "in_trip".to_owned();
            row.current_trip_id = Some(trip_id.0);
            row.current_reservation_id = None;
            *rented_at
        }
        VehicleEvent::VehicleReturned { returned_at, .. } => {
            row.status = "available".to_owned();
            row.current_trip_id = None;
            row.trips_ended += 1;
            *returned_at
        }
        // Closing one of several tasks keeps the car in service; the release after the last
        // one makes it available.
        VehicleEvent::VehicleSentToService { sent_at: at, .. }
        | VehicleEvent::VehicleServiceTaskClosed { closed_at: at, .. } => {
            row.status = "in_service".to_owned();
            *at
        }
        VehicleEvent::VehicleReleasedFromService { released_at, .. } => {
            row.status = "available".to_owned();
            *released_at
        }
        VehicleEvent::VehicleReserved {
            reservation_id,
            reserved_at,
            ..
        } => {
            row.status = "reserved".to_owned();
            row.current_reservation_id = Some(reservation_id.0);
            *reserved_at
        }
        VehicleEvent::VehicleReservationReleased { released_at, .. } => {
            row.status = "available".to_owned();
            row.current_reservation_id = None;
            *released_at
        }
    };
    row.updated_at = micros(at);
    row.stream_version = version;
    Ok(())
}
