//! `vehicles_view`: one row per car in the fleet, with its last reported position and state and
//! whether it can be rented, for "available cars near me" and the fleet console, and how many
//! trips it has finished (`trips_ended`, which rotates its public GBFS id).

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use crate::view::{Guarded, View};
use domain::vehicle::VehicleEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

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

    fn categories(&self) -> &'static [&'static str] {
        &[domain::ids::VehicleId::CATEGORY]
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
    let version = to_bigint("stream version", event.stream_version)?;
    let vehicle_event: VehicleEvent = decode_event(event)?;
    let (vehicle_id, written) = match &vehicle_event {
        VehicleEvent::VehicleAddedToFleet {
            details,
            position,
            fuel_percent,
            odometer_m,
            added_at,
        } => {
            // A car joins the fleet locked (see the vehicle decider's evolve).
            let written = sqlx::query(
                "INSERT INTO vehicles_view (vehicle_id, plate, vin, model, lat, lon, fuel_percent,
                     odometer_m, doors_locked, status, current_trip_id, updated_at, stream_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, 'available', NULL, $9, $10)
                 ON CONFLICT (vehicle_id) DO NOTHING",
            )
            .bind(details.vehicle_id.0)
            .bind(details.plate.as_str())
            .bind(details.vin.as_str())
            .bind(details.model.as_str())
            .bind(position.lat)
            .bind(position.lon)
            .bind(i16::from(fuel_percent.get()))
            .bind(to_bigint("odometer_m", odometer_m.get())?)
            .bind(added_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (details.vehicle_id, written)
        }
        VehicleEvent::TelemetryRecorded {
            vehicle_id,
            telemetry,
            recorded_at,
        } => {
            let written = sqlx::query(
                "UPDATE vehicles_view
                 SET lat = $2, lon = $3, fuel_percent = $4, odometer_m = $5, doors_locked = $6,
                     updated_at = $7, stream_version = $8
                 WHERE vehicle_id = $1 AND stream_version < $8",
            )
            .bind(vehicle_id.0)
            .bind(telemetry.position.lat)
            .bind(telemetry.position.lon)
            .bind(i16::from(telemetry.fuel_percent.get()))
            .bind(to_bigint("odometer_m", telemetry.odometer_m.get())?)
            .bind(telemetry.doors_locked)
            .bind(recorded_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*vehicle_id, written)
        }
        VehicleEvent::VehicleRented {
            vehicle_id,
            trip_id,
            rented_at,
            ..
        } => {
            let written = sqlx::query(
                "UPDATE vehicles_view
                 SET status = 'in_trip', current_trip_id = $2, current_reservation_id = NULL,
                     updated_at = $3, stream_version = $4
                 WHERE vehicle_id = $1 AND stream_version < $4",
            )
            .bind(vehicle_id.0)
            .bind(trip_id.0)
            .bind(rented_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*vehicle_id, written)
        }
        VehicleEvent::VehicleReturned {
            vehicle_id,
            returned_at,
            ..
        } => {
            let written = sqlx::query(
                "UPDATE vehicles_view
                 SET status = 'available', current_trip_id = NULL, updated_at = $2,
                     stream_version = $3, trips_ended = trips_ended + 1
                 WHERE vehicle_id = $1 AND stream_version < $3",
            )
            .bind(vehicle_id.0)
            .bind(returned_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*vehicle_id, written)
        }
        VehicleEvent::VehicleSentToService {
            vehicle_id,
            sent_at: at,
            ..
        }
        | VehicleEvent::VehicleServiceTaskClosed {
            vehicle_id,
            closed_at: at,
            ..
        }
        | VehicleEvent::VehicleReleasedFromService {
            vehicle_id,
            released_at: at,
        } => {
            // Closing one of several tasks keeps the car in service; the release after the
            // last one makes it available.
            let status = match &vehicle_event {
                VehicleEvent::VehicleReleasedFromService { .. } => "available",
                _ => "in_service",
            };
            let written = sqlx::query(
                "UPDATE vehicles_view
                 SET status = $2, updated_at = $3, stream_version = $4
                 WHERE vehicle_id = $1 AND stream_version < $4",
            )
            .bind(vehicle_id.0)
            .bind(status)
            .bind(at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*vehicle_id, written)
        }
        VehicleEvent::VehicleReserved {
            vehicle_id,
            reservation_id,
            reserved_at,
            ..
        } => {
            let written = sqlx::query(
                "UPDATE vehicles_view
                 SET status = 'reserved', current_reservation_id = $2, updated_at = $3,
                     stream_version = $4
                 WHERE vehicle_id = $1 AND stream_version < $4",
            )
            .bind(vehicle_id.0)
            .bind(reservation_id.0)
            .bind(reserved_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*vehicle_id, written)
        }
        VehicleEvent::VehicleReservationReleased {
            vehicle_id,
            released_at,
            ..
        } => {
            let written = sqlx::query(
                "UPDATE vehicles_view
                 SET status = 'available', current_reservation_id = NULL, updated_at = $2,
                     stream_version = $3
                 WHERE vehicle_id = $1 AND stream_version < $3",
            )
            .bind(vehicle_id.0)
            .bind(released_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*vehicle_id, written)
        }
    };
    Guarded {
        view: View::Vehicles,
        id: vehicle_id.0,
        version,
        event_type: &event.event_type,
    }
    .check(conn, written.rows_affected())
    .await
}
