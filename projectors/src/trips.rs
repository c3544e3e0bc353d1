//! `trips_view`: one row per trip, for the trip's customer and for support: its phase, the time
//! driven and parked in finished spells (enough for a running price), and the final price.

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use crate::view::{Guarded, View};
use domain::trip::TripEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

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

    fn categories(&self) -> &'static [&'static str] {
        &[domain::ids::TripId::CATEGORY]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

/// The seconds from the row's `phase_since` to `$2`, counted the way the domain counts a spell
/// (whole seconds of each end subtracted, never negative), so that the finished spells here add
/// up to the durations in the trip's final price.
const SPELL_S: &str = "greatest(0, floor(extract(epoch FROM $2::timestamptz))
                                  - floor(extract(epoch FROM phase_since)))::bigint";

async fn apply(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let trip_event: TripEvent = decode_event(event)?;
    let (trip_id, written) = match &trip_event {
        TripEvent::TripStarted { start, started_at } => {
            let written = sqlx::query(
                "INSERT INTO trips_view (trip_id, customer_id, vehicle_id, status, started_at,
                     phase_since, driving_s, parking_s, tariff, start_lat, start_lon,
                     start_odometer_m, updated_at, stream_version)
                 VALUES ($1, $2, $3, 'driving', $4, $4, 0, 0, $5, $6, $7, $8, $4, $9)
                 ON CONFLICT (trip_id) DO NOTHING",
            )
            .bind(start.trip_id.0)
            .bind(start.customer_id.0)
            .bind(start.vehicle_id.0)
            .bind(started_at)
            .bind(json(&start.tariff)?)
            .bind(start.start_position.lat)
            .bind(start.start_position.lon)
            .bind(to_bigint("odometer_m", start.start_odometer_m.get())?)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (start.trip_id, written)
        }
        TripEvent::TripParked { trip_id, parked_at } => {
            let written = sqlx::query(&format!(
                "UPDATE trips_view
                 SET driving_s = driving_s + CASE WHEN status = 'driving' THEN {SPELL_S} ELSE 0 END,
                     status = 'parked', phase_since = $2, updated_at = $2, stream_version = $3
                 WHERE trip_id = $1 AND stream_version < $3"
            ))
            .bind(trip_id.0)
            .bind(parked_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*trip_id, written)
        }
        TripEvent::TripResumed {
            trip_id,
            resumed_at,
        } => {
            let written = sqlx::query(&format!(
                "UPDATE trips_view
                 SET parking_s = parking_s + CASE WHEN status = 'parked' THEN {SPELL_S} ELSE 0 END,
                     status = 'driving', phase_since = $2, updated_at = $2, stream_version = $3
                 WHERE trip_id = $1 AND stream_version < $3"
            ))
            .bind(trip_id.0)
            .bind(resumed_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*trip_id, written)
        }
        TripEvent::TripEnded {
            trip_id,
            end_position,
            end_odometer_m,
            ended_at,
            price,
            ..
        } => {
            // The totals the trip was billed for replace the sum of spells: the price is the
            // authority, and this keeps the two from ever disagreeing.
            let written = sqlx::query(
                "UPDATE trips_view
                 SET status = 'ended', ended_at = $2, phase_since = $2, driving_s = $3,
                     parking_s = $4, end_lat = $5, end_lon = $6, end_odometer_m = $7, price = $8,
                     total_kopecks = $9, updated_at = $2, stream_version = $10
                 WHERE trip_id = $1 AND stream_version < $10",
            )
            .bind(trip_id.0)
            .bind(ended_at)
            .bind(to_bigint("driving_s", price.driving_s)?)
            .bind(to_bigint("parking_s", price.parking_s)?)
            .bind(end_position.lat)
            .bind(end_position.lon)
            .bind(to_bigint("odometer_m", end_odometer_m.get())?)
            .bind(json(price)?)
            .bind(price.total_kopecks.get())
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*trip_id, written)
        }
    };
    Guarded {
        view: View::Trips,
        id: trip_id.0,
        version,
        event_type: &event.event_type,
    }
    .check(conn, written.rows_affected())
    .await
}

fn json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(value)
        .map_err(|error| ProjectionError::Inconsistent(format!("cannot encode as JSON: {error}")))
}
