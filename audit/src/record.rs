//! Audit events: what the audit tools append to the log about themselves.
//!
//! - `audit-chain`: `ChainHeadSealed` — the sealer's periodic statement of the chain's head,
//!   also published on NATS, so an outside party can later hold the log to it.
//! - `audit-log`: `AuditQueryPerformed` (a history query over the API),
//!   `AuditExportPerformed` (a `velka audit export`), `AuditMoneyReconciled` (a money
//!   reconciliation), `AuditStateQueried` (an aggregate's state as of a time) and
//!   `AuditReadModelsRebuiltAsOf` (read models rebuilt as of a time), so what auditors looked
//!   at is itself part of the record.
//!
//! Only the audit crate writes these streams, rarely (one head a minute, one event per
//! auditor action), so they are appended without a version check.

use chrono::{DateTime, Utc};
use event_store::{
    AppendError, AppendOutcome, AppendRequest, Claims, EventStore, ExpectedVersion, Metadata,
    NewEvent, StreamWrite,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The stream of published chain heads.
pub const CHAIN_STREAM: &str = "audit-chain";
/// The stream of auditor actions.
pub const AUDIT_LOG_STREAM: &str = "audit-log";

/// `ChainHeadSealed`: the chain covered `events` events, the last at `position`, with `hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHeadSealed {
    /// Entries in the chain (the head's `seq`).
    pub events: i64,
    /// The position of the last sealed event.
    pub position: i64,
    /// The head's hash, 64 hex digits.
    pub hash: String,
}

impl ChainHeadSealed {
    /// Its event type.
    pub const TYPE: &'static str = "ChainHeadSealed";
}

/// `AuditQueryPerformed`: who asked the history what, and how much they got.
pub const QUERY_PERFORMED: &str = "AuditQueryPerformed";
/// `AuditExportPerformed`: who exported which time range, how many events, and the digest of
/// what was written.
pub const EXPORT_PERFORMED: &str = "AuditExportPerformed";

/// `AuditReadModelsRebuiltAsOf`: who rebuilt the read models as of which time into which schema.
pub const READ_MODELS_REBUILT_AS_OF: &str = "AuditReadModelsRebuiltAsOf";

/// Appends one event of `event_type` with `data` to `stream_id`, by `actor`, at `now`.
pub async fn append(
    store: &EventStore,
    stream_id: &str,
    event_type: &str,
    data: Value,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<AppendOutcome, AppendError> {
    let correlation_id = Uuid::now_v7();
    store
        .append(&AppendRequest {
            writes: vec![StreamWrite {
                stream_id: stream_id.to_owned(),
                expected: ExpectedVersion::Any,
                events: vec![NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: event_type.to_owned(),
                    schema_version: 1,
                    data,
                    occurred_at: now,
                }],
            }],
            metadata: Metadata {
                correlation_id,
                causation_id: None,
                actor: actor.to_owned(),
                command_id: None,
            },
            recorded_at: now,
            claims: Claims::default(),
            result: None,
        })
        .await
}
