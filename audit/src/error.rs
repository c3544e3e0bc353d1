//! What can fail in the audit tools.

use event_store::follower::FollowerError;
use event_store::{AppendError, LogPosition, StoreError};

/// A failed audit operation. The sealer retries every one of them from its checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A query failed.
    #[error("audit query failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Recording an audit event failed.
    #[error("recording an audit event failed: {0}")]
    Append(#[from] AppendError),
    /// Sealing a batch by hand ([`crate::sealer::seal`]) failed: the log, the checkpoint (moved
    /// by another sealer of the same name), or linking the entries.
    #[error(transparent)]
    Follower(#[from] FollowerError),
    /// A stored value the audit crate never writes (a hash that is not 32 bytes, say).
    #[error("audit tables hold an unexpected value: {0}")]
    Corrupt(String),
    /// An event handed out by the log could not be read back to seal it.
    #[error("event at {0:?} vanished between reading the log and sealing it")]
    Vanished(LogPosition),
    /// Writing an export failed.
    #[error("writing the export failed: {0}")]
    Write(#[from] std::io::Error),
    /// Encoding a line of the export failed.
    #[error("encoding an exported event failed: {0}")]
    Encode(#[from] serde_json::Error),
}

impl From<event_store::copy::CopyError> for AuditError {
    fn from(error: event_store::copy::CopyError) -> Self {
        AuditError::Corrupt(error.to_string())
    }
}
