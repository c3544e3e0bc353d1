//! The values that go in and out of the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What a stream is expected to hold before an append.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check: append after whatever is there.
    ///
    /// Beware: two concurrent `Any` appends to one stream can commit its versions in the
    /// opposite order of their transaction ids, and the log is delivered in transaction-id
    /// order, so a follower may see version N+1 before N. Commands always append at the
    /// version they decided on (a checked version makes the later writer conflict instead);
    /// use `Any` only where nothing appends to the stream concurrently.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must hold exactly this many events.
    Exactly(u64),
}

impl ExpectedVersion {
    /// The expectation for a stream loaded at `version` (0 = empty).
    pub fn after(version: u64) -> Self {
        if version == 0 {
            Self::NoStream
        } else {
            Self::Exactly(version)
        }
    }

    pub(crate) fn as_sql(self) -> i64 {
        match self {
            Self::Any => -1,
            Self::NoStream => 0,
            Self::Exactly(n) => i64::try_from(n).unwrap_or(i64::MAX),
        }
    }
}

/// An event to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// A fresh UUID v7.
    pub event_id: Uuid,
    /// The event's type name.
    pub event_type: String,
    /// Schema version of `data`.
    pub schema_version: u32,
    /// The event's fields.
    pub data: Value,
    /// When it happened in the world (for a command: when it was decided).
    pub occurred_at: DateTime<Utc>,
}

/// Events for one stream, with the version the writer saw.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamWrite {
    /// `<category>-<id>`.
    pub stream_id: String,
    /// What the stream must hold first.
    pub expected: ExpectedVersion,
    /// The events, in order. May be empty to only check the version.
    pub events: Vec<NewEvent>,
}

/// Why and by whom events were written; the same for every event of one append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Groups everything caused by one outside request.
    pub correlation_id: Uuid,
    /// The event or command that caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// Who: `customer:<id>`, `support:<agent>`, `service:<name>`, `system`.
    pub actor: String,
    /// The command that produced the events.
    pub command_id: Option<Uuid>,
}

/// Exclusive claims taken and released with an append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Claims to take; the append fails if another holder has one.
    pub acquire: Vec<String>,
    /// The stream recorded as holder of the acquired claims.
    pub holder: Option<String>,
    /// Claims to release.
    pub release: Vec<String>,
}

/// The answer to an idempotent command, stored with its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandResult {
    /// Who may replay it: the caller's identity, so keys of different callers never collide.
    pub scope: String,
    /// The caller's `Idempotency-Key`.
    pub key: String,
    /// A digest of the request, to refuse the same key reused for a different request.
    pub request_hash: String,
    /// The HTTP status of the first answer.
    pub status: u16,
    /// Its body.
    pub body: Value,
}

/// Everything one command appends, atomically.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendRequest {
    /// Events per stream.
    pub writes: Vec<StreamWrite>,
    /// Shared metadata.
    pub metadata: Metadata,
    /// When the store learned of the events (the injected clock's now).
    pub recorded_at: DateTime<Utc>,
    /// Claims to take and release.
    pub claims: Claims,
    /// The result to remember under the caller's idempotency key, if any.
    pub result: Option<CommandResult>,
}

/// A place in the log, in delivery order: first by the writing transaction's id, then by
/// position within it. Every event committed after a reader passed a `LogPosition` sorts after it.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogPosition {
    /// The 64-bit id of the transaction that wrote the event (`xid8`).
    pub transaction_id: u64,
    /// The event's position.
    pub position: i64,
}

impl LogPosition {
    /// Before the first event.
    pub const START: LogPosition = LogPosition {
        transaction_id: 0,
        position: 0,
    };
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordedEvent {
    /// Unique, increasing with insertion (not with commit).
    pub position: i64,
    /// Where it is in delivery order.
    pub log_position: LogPosition,
    /// Its stream.
    pub stream_id: String,
    /// 1-based position within the stream.
    pub stream_version: u64,
    /// Its id.
    pub event_id: Uuid,
    /// Its type name.
    pub event_type: String,
    /// Schema version of `data`.
    pub schema_version: u32,
    /// Its fields.
    pub data: Value,
    /// Why and by whom.
    pub metadata: Metadata,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// When it was stored.
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The stream's category (`trip` of `trip-…`).
    pub fn category(&self) -> &str {
        self.stream_id
            .split_once('-')
            .map_or(self.stream_id.as_str(), |(category, _)| category)
    }
}
