//! `demand_activity`: who asked for a car where and when — one row per quote issued and per
//! reservation made — so that the quote route can count the customers competing for cars in a
//! pricing zone (see `domain::pricing`).

use crate::projector::{ProjectionError, Projector, decode_event};
use domain::quote::QuoteEvent;
use domain::reservation::ReservationEvent;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

/// How long rows are kept: far longer than any demand window.
const KEEP_HOURS: i64 = 24;

/// Writes `demand_activity` from the `quote` and `reservation` streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct DemandProjector;

impl Projector for DemandProjector {
    fn name(&self) -> &'static str {
        "demand_activity"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["demand_activity"]
    }

    fn categories(&self) -> &'static [&'static str] {
        &[
            domain::ids::QuoteId::CATEGORY,
            domain::ids::ReservationId::CATEGORY,
        ]
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
    let (kind, customer_id, position, occurred_at) = match event.category() {
        "quote" => match decode_event::<QuoteEvent>(event)? {
            QuoteEvent::QuoteIssued { details, issued_at } => {
                ("quote", details.customer_id, details.position, issued_at)
            }
        },
        _ => match decode_event::<ReservationEvent>(event)? {
            ReservationEvent::ReservationMade { details } => (
                "reservation",
                details.customer_id,
                details.position,
                details.made_at,
            ),
            // How a reservation ends says nothing about demand.
            _ => return Ok(()),
        },
    };
    sqlx::query(
        "INSERT INTO demand_activity (event_id, kind, customer_id, lat, lon, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event.event_id)
    .bind(kind)
    .bind(customer_id.0)
    .bind(position.lat)
    .bind(position.lon)
    .bind(occurred_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM demand_activity WHERE occurred_at < $1")
        .bind(occurred_at - chrono::Duration::hours(KEEP_HOURS))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
