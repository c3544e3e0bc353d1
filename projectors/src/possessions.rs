//! `vehicle_possessions` and `vehicle_plates`: who had which car when, for traffic fines ("who
//! was driving А123ВС777 at 14:05?") and support. One row per trip, its `during` range open while
//! the trip runs and closed at `TripEnded`; and each car's plate, normalised as the domain
//! normalises plates, so that a fine's plate typed in either alphabet finds the car.

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use crate::view::{Guarded, View};
use domain::account::AccountId;
use domain::ids::{FineId, TripId, VehicleId};
use domain::trip::TripEvent;
use domain::value::Plate;
use domain::vehicle::VehicleEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

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
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            if event.stream_id.starts_with("trip-") {
                apply_trip(conn, event).await
            } else if event.stream_id.starts_with("vehicle-") {
                apply_vehicle(conn, event).await
            } else {
                Ok(())
            }
        })
    }
}

async fn apply_vehicle(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    // Only the car joining the fleet names its plate; other events of the car are not read.
    if event.event_type != "VehicleAddedToFleet" {
        return Ok(());
    }
    if let VehicleEvent::VehicleAddedToFleet {
        details, added_at, ..
    } = decode_event::<VehicleEvent>(event)?
    {
        // Normalised again: a plate recorded before normalisation mapped Latin look-alikes is
        // stored the way a plate is parsed today, so lookups need no second spelling.
        let plate = Plate::parse("plate", details.plate.as_str())
            .map(|plate| plate.as_str().to_owned())
            .unwrap_or_else(|_| details.plate.as_str().to_owned());
        sqlx::query(
            "INSERT INTO vehicle_plates (vehicle_id, plate, model, added_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (vehicle_id) DO NOTHING",
        )
        .bind(details.vehicle_id.0)
        .bind(plate)
        .bind(details.model.as_str())
        .bind(added_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn apply_trip(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let (trip_id, written) = match decode_event::<TripEvent>(event)? {
        TripEvent::TripStarted { start, started_at } => {
            let payer = match start.company_id {
                Some(company_id) => AccountId::Company(company_id),
                None => AccountId::Customer(start.customer_id),
            };
            let written = sqlx::query(
                "INSERT INTO vehicle_possessions (trip_id, vehicle_id, customer_id,
                     payer_account_id, company_id, during, stream_version)
                 VALUES ($1, $2, $3, $4, $5, tstzrange($6, NULL, '[)'), $7)
                 ON CONFLICT (trip_id) DO NOTHING",
            )
            .bind(start.trip_id.0)
            .bind(start.vehicle_id.0)
            .bind(start.customer_id.0)
            .bind(payer.to_string())
            .bind(start.company_id.map(|company| company.0))
            .bind(started_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (start.trip_id, written)
        }
        // Parking keeps the car the customer's: only the version moves.
        TripEvent::TripParked { trip_id, .. } | TripEvent::TripResumed { trip_id, .. } => {
            let written = sqlx::query(
                "UPDATE vehicle_possessions SET stream_version = $2
                 WHERE trip_id = $1 AND stream_version < $2",
            )
            .bind(trip_id.0)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (trip_id, written)
        }
        TripEvent::TripEnded {
            trip_id, ended_at, ..
        } => {
            // A trip ended the instant it started held the car for that instant: `[t, t]`, not
            // the empty `[t, t)`. `greatest` keeps the range valid even if a clock stepped back.
            let written = sqlx::query(
                "UPDATE vehicle_possessions
                 SET during = tstzrange(lower(during), greatest(lower(during), $2),
                                        CASE WHEN $2 > lower(during) THEN '[)' ELSE '[]' END),
                     stream_version = $3
                 WHERE trip_id = $1 AND stream_version < $3",
            )
            .bind(trip_id.0)
            .bind(ended_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (trip_id, written)
        }
    };
    Guarded {
        view: View::Possessions,
        id: trip_id.0,
        version,
        event_type: &event.event_type,
    }
    .check(conn, written.rows_affected())
    .await
}
