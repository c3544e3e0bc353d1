//! `reservations_view`: one row per reservation, for its customer and support, and for the
//! expiry worker, which looks up the active reservations whose deadline has passed.

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use crate::view::{Guarded, View};
use domain::reservation::{ReservationEvent, WaitingCharge};
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use sqlx::types::Json;

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
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

async fn apply(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let reservation_event: ReservationEvent = decode_event(event)?;
    let (reservation_id, written) = match &reservation_event {
        ReservationEvent::ReservationMade { details } => {
            let written = sqlx::query(
                "INSERT INTO reservations_view (reservation_id, customer_id, vehicle_id, quote_id,
                     status, made_at, free_until, expires_at, terms, lat, lon, updated_at,
                     stream_version)
                 VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9, $10, $5, $11)
                 ON CONFLICT (reservation_id) DO NOTHING",
            )
            .bind(details.reservation_id.0)
            .bind(details.customer_id.0)
            .bind(details.vehicle_id.0)
            .bind(details.quote_id.map(|id| id.0))
            .bind(details.made_at)
            .bind(details.free_until)
            .bind(details.expires_at)
            .bind(Json(&details.terms))
            .bind(details.position.lat)
            .bind(details.position.lon)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (details.reservation_id, written)
        }
        ReservationEvent::ReservationConverted {
            reservation_id,
            trip_id,
            converted_at,
            waiting,
            ..
        } => {
            let written = end(
                conn,
                reservation_id.0,
                "converted",
                Some(trip_id.0),
                converted_at,
                waiting,
                version,
            )
            .await?;
            (*reservation_id, written)
        }
        ReservationEvent::ReservationCancelled {
            reservation_id,
            cancelled_at,
            waiting,
            ..
        } => {
            let written = end(
                conn,
                reservation_id.0,
                "cancelled",
                None,
                cancelled_at,
                waiting,
                version,
            )
            .await?;
            (*reservation_id, written)
        }
        ReservationEvent::ReservationExpired {
            reservation_id,
            expired_at,
            waiting,
            ..
        } => {
            let written = end(
                conn,
                reservation_id.0,
                "expired",
                None,
                expired_at,
                waiting,
                version,
            )
            .await?;
            (*reservation_id, written)
        }
    };
    Guarded {
        view: View::Reservations,
        id: reservation_id.0,
        version,
        event_type: &event.event_type,
    }
    .check(conn, written.rows_affected())
    .await
}

/// Records how a reservation ended and the waiting it was charged.
async fn end(
    conn: &mut PgConnection,
    reservation_id: uuid::Uuid,
    status: &str,
    trip_id: Option<uuid::Uuid>,
    ended_at: &chrono::DateTime<chrono::Utc>,
    waiting: &WaitingCharge,
    version: i64,
) -> Result<sqlx::postgres::PgQueryResult, ProjectionError> {
    Ok(sqlx::query(
        "UPDATE reservations_view
         SET status = $2, trip_id = $3, ended_at = $4, waited_s = $5, paid_minutes = $6,
             paid_waiting_kopecks = $7, updated_at = $4, stream_version = $8
         WHERE reservation_id = $1 AND stream_version < $8",
    )
    .bind(reservation_id)
    .bind(status)
    .bind(trip_id)
    .bind(ended_at)
    .bind(to_bigint("waited_s", waiting.waited_s)?)
    .bind(to_bigint("paid_minutes", waiting.paid_minutes)?)
    .bind(waiting.paid_waiting_kopecks.get())
    .bind(version)
    .execute(&mut *conn)
    .await?)
}
