//! `fines_view`: one row per imported traffic fine, with its status, for support and auditors
//! (`GET /v1/fines/{fine_id}`).

use crate::projector::{ProjectionError, Projector, decode_page, to_bigint};
use crate::rows::{Row, Rows, micros};
use chrono::{DateTime, NaiveDate, Utc};
use domain::fine::{FineEvent, FineStatus};
use domain::ids::FineId;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

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
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, events))
    }
}

/// A `fines_view` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct FineRow {
    fine_id: Uuid,
    resolution_number: String,
    plate: String,
    occurred_at: DateTime<Utc>,
    lat: f64,
    lon: f64,
    amount_kopecks: i64,
    issued_on: NaiveDate,
    /// `open`, `matched` or `assigned_to_fleet`.
    status: String,
    trip_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    account_id: Option<String>,
    received_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    stream_version: i64,
}

impl Row for FineRow {
    const TABLE: &'static str = "fines_view";
    const KEY: &'static str = "fine_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.fine_id
    }
}

fn fine_of(event: &FineEvent) -> Uuid {
    match event {
        FineEvent::FineReceived { fine_id, .. }
        | FineEvent::FineMatched { fine_id, .. }
        | FineEvent::FineAssignedToFleet { fine_id, .. } => fine_id.0,
    }
}

async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    let decoded = decode_page::<FineEvent>(events)?;
    let mut fines = Rows::<FineRow>::default();
    fines
        .load(conn, decoded.iter().map(|(_, event)| fine_of(event)))
        .await?;
    for (event, fine_event) in &decoded {
        fold(&mut fines, event, fine_event).map_err(|error| error.at(event))?;
    }
    fines.write(conn).await?;
    Ok(())
}

fn fold(
    fines: &mut Rows<FineRow>,
    event: &RecordedEvent,
    fine_event: &FineEvent,
) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let fine_id = fine_of(fine_event);
    match fine_event {
        FineEvent::FineReceived {
            details,
            received_at,
            ..
        } => {
            // A replay finds the row already there and changes nothing.
            if fines.get(&fine_id).is_none() {
                let received_at = micros(*received_at);
                fines.put(FineRow {
                    fine_id,
                    resolution_number: details.resolution_number.as_str().to_owned(),
                    plate: details.plate.as_str().to_owned(),
                    occurred_at: micros(details.occurred_at),
                    lat: details.place.lat,
                    lon: details.place.lon,
                    amount_kopecks: details.amount_kopecks.get(),
                    issued_on: details.issued_on,
                    status: FineStatus::Open.as_str().to_owned(),
                    trip_id: None,
                    customer_id: None,
                    account_id: None,
                    received_at,
                    decided_at: None,
                    updated_at: received_at,
                    stream_version: version,
                });
            }
        }
        // Version-guarded: a replay, or a decision about a fine this read model never received,
        // changes nothing.
        FineEvent::FineMatched {
            trip_id,
            customer_id,
            account_id,
            matched_at,
            ..
        } => {
            if let Some(row) = fines.get_mut(&fine_id)
                && row.stream_version < version
            {
                let at = micros(*matched_at);
                row.status = FineStatus::Matched.as_str().to_owned();
                row.trip_id = Some(trip_id.0);
                row.customer_id = Some(customer_id.0);
                row.account_id = Some(account_id.to_string());
                row.updated_at = at;
                row.decided_at = Some(at);
                row.stream_version = version;
            }
        }
        FineEvent::FineAssignedToFleet { assigned_at, .. } => {
            if let Some(row) = fines.get_mut(&fine_id)
                && row.stream_version < version
            {
                let at = micros(*assigned_at);
                row.status = FineStatus::AssignedToFleet.as_str().to_owned();
                row.updated_at = at;
                row.decided_at = Some(at);
                row.stream_version = version;
            }
        }
    }
    Ok(())
}
