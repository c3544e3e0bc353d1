//! One event as a NATS message: its subject, its headers and its JSON payload.

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use event_store::{Metadata, RecordedEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The event's type name.
pub const EVENT_TYPE: &str = "Velka-Event-Type";
/// The event's stream.
pub const STREAM_ID: &str = "Velka-Stream-Id";
/// The event's 1-based version within its stream.
pub const STREAM_VERSION: &str = "Velka-Stream-Version";
/// The event's position in the store (increasing with insertion, not with delivery order).
pub const POSITION: &str = "Velka-Position";
/// The correlation id shared by everything one outside request caused.
pub const CORRELATION_ID: &str = "Velka-Correlation-Id";

/// The payload: everything the store knows about the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    /// Its id, also the message's `Nats-Msg-Id`.
    pub event_id: Uuid,
    /// Its type name.
    pub event_type: String,
    /// Schema version of `data`.
    pub schema_version: u32,
    /// Its stream, `<category>-<id>`.
    pub stream_id: String,
    /// 1-based version within the stream.
    pub stream_version: u64,
    /// Its position in the store.
    pub position: i64,
    /// The id of the transaction that wrote it; with `position`, its place in delivery order.
    pub transaction_id: u64,
    /// Its fields.
    pub data: Value,
    /// Why and by whom.
    pub metadata: Metadata,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// When it was stored.
    pub recorded_at: DateTime<Utc>,
}

impl EventMessage {
    /// The message for `event`.
    pub fn of(event: &RecordedEvent) -> Self {
        Self {
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            position: event.position,
            transaction_id: event.log_position.transaction_id,
            data: event.data.clone(),
            metadata: event.metadata.clone(),
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
        }
    }
}

/// `<prefix>.events.<category>.<stream_id>`, each part made a safe subject token.
pub fn subject(prefix: &str, event: &RecordedEvent) -> String {
    format!(
        "{prefix}.events.{}.{}",
        subject_token(event.category()),
        subject_token(&event.stream_id)
    )
}

/// `raw` as one subject token: anything but ASCII letters, digits, `-` and `_` (a `.` that would
/// split the token, a wildcard, white space) becomes `_`; an empty token becomes `_`.
pub fn subject_token(raw: &str) -> String {
    if raw.is_empty() {
        return "_".to_owned();
    }
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The headers describing `event` (the relay adds `Nats-Msg-Id` itself).
pub fn headers(event: &RecordedEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    headers.insert(EVENT_TYPE, event.event_type.as_str());
    headers.insert(STREAM_ID, event.stream_id.as_str());
    headers.insert(STREAM_VERSION, event.stream_version.to_string().as_str());
    headers.insert(POSITION, event.position.to_string().as_str());
    headers.insert(
        CORRELATION_ID,
        event.metadata.correlation_id.to_string().as_str(),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_stream_ids_and_replace_what_would_break_a_subject() {
        assert_eq!(
            subject_token("trip-0193a5e2-7c1d-7000-8000-000000000001"),
            "trip-0193a5e2-7c1d-7000-8000-000000000001"
        );
        assert_eq!(subject_token("odd.stream id>*"), "odd_stream_id__");
        assert_eq!(subject_token(""), "_");
        assert_eq!(subject_token("café"), "caf_");
    }
}
