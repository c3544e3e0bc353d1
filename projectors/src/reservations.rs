//! `reservations_view`: one row per reservation, for its customer and support, and for the
//! expiry worker, which looks up the active reservations whose deadline has passed.

use crate::projector::{ProjectionError, Projector, decode_page, to_bigint};
use crate::rows::{Guard, Row, Rows, guard, micros};
use chrono::{DateTime, Utc};
use domain::reservation::{ReservationEvent, WaitingCharge};
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Writes `reservations_view` from the `reservation` streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReservationsProjector;

impl Projector for ReservationsProjector {
    fn name(&self) -> &'static str {
        "reservations_view"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["reservations_view"]
    }

    fn categories(&self) -> &'static [&'static str] {
        &[domain::ids::ReservationId::CATEGORY]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, events))
    }
}

/// A `reservations_view` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ReservationRow {
    reservation_id: Uuid,
    customer_id: Uuid,
    vehicle_id: Uuid,
    quote_id: Option<Uuid>,
    /// `active`, `converted`, `cancelled` or `expired`.
    status: String,
    made_at: DateTime<Utc>,
    free_until: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    trip_id: Option<Uuid>,
    terms: Value,
    lat: f64,
    lon: f64,
    waited_s: Option<i64>,
    paid_minutes: Option<i64>,
    paid_waiting_kopecks: Option<i64>,
    updated_at: DateTime<Utc>,
    stream_version: i64,
}

impl Row for ReservationRow {
    const TABLE: &'static str = "reservations_view";
    const KEY: &'static str = "reservation_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.reservation_id
    }
}

fn reservation_of(event: &ReservationEvent) -> Uuid {
    match event {
        ReservationEvent::ReservationMade { details } => details.reservation_id.0,
        ReservationEvent::ReservationConverted { reservation_id, .. }
        | ReservationEvent::ReservationCancelled { reservation_id, .. }
        | ReservationEvent::ReservationExpired { reservation_id, .. } => reservation_id.0,
    }
}

async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    let decoded = decode_page::<ReservationEvent>(events)?;
    let mut reservations = Rows::<ReservationRow>::default();
    reservations
        .load(conn, decoded.iter().map(|(_, event)| reservation_of(event)))
        .await?;
    for (event, reservation_event) in &decoded {
        fold(&mut reservations, event, reservation_event).map_err(|error| error.at(event))?;
    }
    reservations.write(conn).await?;
    Ok(())
}

fn fold(
    reservations: &mut Rows<ReservationRow>,
    event: &RecordedEvent,
    reservation_event: &ReservationEvent,
) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let reservation_id = reservation_of(reservation_event);
    let (status, trip_id, ended_at, waiting) = match reservation_event {
        ReservationEvent::ReservationMade { details } => {
            if reservations.get(&reservation_id).is_none() {
                let made_at = micros(details.made_at);
                reservations.put(ReservationRow {
                    reservation_id,
                    customer_id: details.customer_id.0,
                    vehicle_id: details.vehicle_id.0,
                    quote_id: details.quote_id.map(|id| id.0),
                    status: "active".to_owned(),
                    made_at,
                    free_until: micros(details.free_until),
                    expires_at: micros(details.expires_at),
                    ended_at: None,
                    trip_id: None,
                    terms: serde_json::to_value(&details.terms).map_err(|error| {
                        ProjectionError::Inconsistent(format!("cannot encode as JSON: {error}"))
                    })?,
                    lat: details.position.lat,
                    lon: details.position.lon,
                    waited_s: None,
                    paid_minutes: None,
                    paid_waiting_kopecks: None,
                    updated_at: made_at,
                    stream_version: version,
                });
            }
            return Ok(());
        }
        ReservationEvent::ReservationConverted {
            trip_id,
            converted_at,
            waiting,
            ..
        } => ("converted", Some(trip_id.0), converted_at, waiting),
        ReservationEvent::ReservationCancelled {
            cancelled_at,
            waiting,
            ..
        } => ("cancelled", None, cancelled_at, waiting),
        ReservationEvent::ReservationExpired {
            expired_at,
            waiting,
            ..
        } => ("expired", None, expired_at, waiting),
    };
    let current = reservations
        .get(&reservation_id)
        .map(|row| row.stream_version);
    if guard(
        "reservations_view",
        &reservation_id,
        current,
        version,
        &event.event_type,
    )? == Guard::Applied
    {
        return Ok(());
    }
    let Some(row) = reservations.get_mut(&reservation_id) else {
        return Ok(());
    };
    end(row, status, trip_id, micros(*ended_at), waiting)?;
    row.stream_version = version;
    Ok(())
}

/// Records how a reservation ended and the waiting it was charged.
fn end(
    row: &mut ReservationRow,
    status: &str,
    trip_id: Option<Uuid>,
    ended_at: DateTime<Utc>,
    waiting: &WaitingCharge,
) -> Result<(), ProjectionError> {
    row.status = status.to_owned();
    row.trip_id = trip_id;
    row.ended_at = Some(ended_at);
    row.waited_s = Some(to_bigint("waited_s", waiting.waited_s)?);
    row.paid_minutes = Some(to_bigint("paid_minutes", waiting.paid_minutes)?);
    row.paid_waiting_kopecks = Some(waiting.paid_waiting_kopecks.get());
    row.updated_at = ended_at;
    Ok(())
}
