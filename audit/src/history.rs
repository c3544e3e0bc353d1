//! The whole log, filtered and paged, as auditors read it (`GET /v1/audit/events`, and the
//! export).
//!
//! Events come in delivery order, `(transaction_id, position)`, and only below the in-flight
//! horizon, exactly as projectors read them (see `event-store/src/log.rs`): a page boundary
//! never passes over an event that commits later. Each filter is served by an index in that
//! order (`migrations/*_audit_event_indexes.sql`), so a page costs one index range scan from the
//! cursor, however long the log. Each event comes with its chain entry when it has been sealed.

use crate::chain;
use crate::error::AuditError;
use chrono::{DateTime, Utc};
use event_store::LogPosition;
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

/// Which events to return; every given filter must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Filters {
    /// The stream category (`trip` of `trip-…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The event type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The actor as recorded (`customer:<id>`, `support:<agent>`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Everything caused by one outside request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// Recorded at or after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

/// Why and by whom an event was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditMetadata {
    /// Groups everything caused by one outside request.
    pub correlation_id: Uuid,
    /// The event or command that caused this one.
    pub causation_id: Option<Uuid>,
    /// Who: `customer:<id>`, `support:<agent>`, `service:<name>`, `auditor:<name>`.
    pub actor: String,
    /// The command that produced the event.
    pub command_id: Option<Uuid>,
}

/// One event of the log with its place in the hash chain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    /// Its position in the log.
    pub position: i64,
    pub stream_id: String,
    /// Its version within the stream (1-based).
    pub version: i64,
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: i32,
    /// The event's fields, exactly as stored (the JSON text its writer sent, which is what the
    /// chain hashes).
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// Correlation, causation, actor and command.
    pub metadata: AuditMetadata,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    /// Its entry in the hash chain (1-based), once sealed.
    pub seq: Option<i64>,
    /// The chain's hash at this event (64 hex digits), once sealed.
    pub hash: Option<String>,
    /// The previous entry's hash, once sealed.
    pub prev_hash: Option<String>,
    /// Where it is in delivery order: what a cursor after it holds.
    #[serde(skip)]
    pub log_position: LogPosition,
}

/// A page of history.
#[derive(Debug)]
pub struct Page {
    /// The events, in delivery order.
    pub events: Vec<AuditEvent>,
    /// Where the next page starts, if there may be more now.
    pub next: Option<LogPosition>,
}

const SELECT: &str = "SELECT e.transaction_id::text::bigint AS transaction_id, e.position,
    e.stream_id, e.stream_version, e.event_id, e.event_type, e.schema_version,
    e.data::text AS data, e.correlation_id, e.causation_id, e.actor, e.command_id,
    e.occurred_at, e.recorded_at, c.seq, c.hash, c.prev_hash
    FROM events e LEFT JOIN event_chain c ON c.position = e.position
    WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())";

/// The query for `filters` after `after`, in delivery order, without a limit, after `prefix`
/// (a cursor's declaration, or nothing).
pub fn query(
    prefix: &str,
    filters: &Filters,
    after: LogPosition,
) -> QueryBuilder<'static, Postgres> {
    let mut q = QueryBuilder::new(format!("{prefix}{SELECT}"));
    if after != LogPosition::START {
        q.push(" AND (e.transaction_id, e.position) > (")
            .push_bind(after.transaction_id.to_string())
            .push("::text::xid8, ")
            .push_bind(after.position)
            .push(")");
    }
    if let Some(category) = &filters.category {
        q.push(" AND e.category = ").push_bind(category.clone());
    }
    if let Some(event_type) = &filters.event_type {
        q.push(" AND e.event_type = ").push_bind(event_type.clone());
    }
    if let Some(actor) = &filters.actor {
        q.push(" AND e.actor = ").push_bind(actor.clone());
    }
    if let Some(correlation_id) = filters.correlation_id {
        q.push(" AND e.correlation_id = ").push_bind(correlation_id);
    }
    if let Some(from) = filters.from {
        q.push(" AND e.recorded_at >= ").push_bind(from);
    }
    if let Some(to) = filters.to {
        q.push(" AND e.recorded_at < ").push_bind(to);
    }
    q.push(" ORDER BY e.transaction_id, e.position");
    q
}

/// Up to `limit` events matching `filters` after `after`.
pub async fn page(
    pool: &sqlx::PgPool,
    filters: &Filters,
    after: LogPosition,
    limit: u32,
) -> Result<Page, AuditError> {
    let mut q = query("", filters, after);
    // One more than asked says whether another page exists.
    q.push(" LIMIT ").push_bind(i64::from(limit) + 1);
    let rows = q.build().fetch_all(pool).await?;
    let mut events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next = if more {
        events.last().map(|event| event.log_position)
    } else {
        None
    };
    Ok(Page { events, next })
}

/// One row of [`query`].
pub(crate) fn decode(row: &PgRow) -> Result<AuditEvent, AuditError> {
    let position: i64 = row.try_get("position")?;
    let corrupt = |what: &str| AuditError::Corrupt(format!("event at {position}: {what}"));
    let transaction_id: i64 = row.try_get("transaction_id")?;
    let data: String = row.try_get("data")?;
    let hash: Option<Vec<u8>> = row.try_get("hash")?;
    let prev_hash: Option<Vec<u8>> = row.try_get("prev_hash")?;
    Ok(AuditEvent {
        position,
        stream_id: row.try_get("stream_id")?,
        version: row.try_get("stream_version")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get("schema_version")?,
        data: RawValue::from_string(data).map_err(|_| corrupt("data is not JSON"))?,
        metadata: AuditMetadata {
            correlation_id: row.try_get("correlation_id")?,
            causation_id: row.try_get("causation_id")?,
            actor: row.try_get("actor")?,
            command_id: row.try_get("command_id")?,
        },
        occurred_at: row.try_get("occurred_at")?,
        recorded_at: row.try_get("recorded_at")?,
        seq: row.try_get("seq")?,
        hash: hash.map(|h| chain::hex(&h)),
        prev_hash: prev_hash.map(|h| chain::hex(&h)),
        log_position: LogPosition {
            transaction_id: u64::try_from(transaction_id)
                .map_err(|_| corrupt("negative transaction id"))?,
            position,
        },
    })
}

/// A cursor as clients see it: `<transaction id>.<position>`, to be passed back as is.
pub fn format_cursor(position: LogPosition) -> String {
    format!("{}.{}", position.transaction_id, position.position)
}

/// The inverse of [`format_cursor`].
pub fn parse_cursor(text: &str) -> Option<LogPosition> {
    let (transaction_id, position) = text.split_once('.')?;
    let position: i64 = position.parse().ok()?;
    (position >= 0).then_some(LogPosition {
        transaction_id: transaction_id.parse().ok()?,
        position,
    })
}
