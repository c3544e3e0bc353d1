//! `fines_view`: one row per imported traffic fine, with its status, for support and auditors
//! (`GET /v1/fines/{fine_id}`).

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use domain::fine::{FineEvent, FineStatus};
use domain::ids::FineId;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

/// Writes `fines_view` from the `fine` streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct FinesProjector;

impl Projector for FinesProjector {
    fn name(&self) -> &'static str {
        "fines_view"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["fines_view"]
    }

    fn categories(&self) -> &'static [&'static str] {
        &[FineId::CATEGORY]
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
    match decode_event::<FineEvent>(event)? {
        FineEvent::FineReceived {
            fine_id,
            details,
            received_at,
        } => {
            // A replay finds the row already there and changes nothing.
            sqlx::query(
                "INSERT INTO fines_view (fine_id, resolution_number, plate, occurred_at, lat, lon,
                     amount_kopecks, issued_on, status, received_at, updated_at, stream_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)
                 ON CONFLICT (fine_id) DO NOTHING",
            )
            .bind(fine_id.0)
            .bind(details.resolution_number.as_str())
            .bind(details.plate.as_str())
            .bind(details.occurred_at)
            .bind(details.place.lat)
            .bind(details.place.lon)
            .bind(details.amount_kopecks.get())
            .bind(details.issued_on)
            .bind(FineStatus::Open.as_str())
            .bind(received_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
        }
        FineEvent::FineMatched {
            fine_id,
            trip_id,
            customer_id,
            account_id,
            matched_at,
            ..
        } => {
            // Version-guarded: a replay changes nothing.
            sqlx::query(
                "UPDATE fines_view SET status = $2, trip_id = $3, customer_id = $4,
                     account_id = $5, updated_at = $6, decided_at = $6, stream_version = $7
                 WHERE fine_id = $1 AND stream_version < $7",
            )
            .bind(fine_id.0)
            .bind(FineStatus::Matched.as_str())
            .bind(trip_id.0)
            .bind(customer_id.0)
            .bind(account_id.to_string())
            .bind(matched_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
        }
        FineEvent::FineAssignedToFleet {
            fine_id,
            assigned_at,
            ..
        } => {
            sqlx::query(
                "UPDATE fines_view SET status = $2, updated_at = $3, decided_at = $3,
                     stream_version = $4
                 WHERE fine_id = $1 AND stream_version < $4",
            )
            .bind(fine_id.0)
            .bind(FineStatus::AssignedToFleet.as_str())
            .bind(assigned_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
