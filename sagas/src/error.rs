//! What can go wrong in the runtime.

use crate::saga::ReactionError;
use event_store::StoreError;

/// Why a batch, a timer pass or a dispatch pass failed. Every failure rolls its transaction
/// back; the caller retries.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the log failed.
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    /// The saga refused to react.
    #[error("reaction failed: {0}")]
    Reaction(#[from] ReactionError),
    /// A state does not (de)serialise.
    #[error("state does not (de)serialise: {0}")]
    State(#[from] serde_json::Error),
    /// Stored data breaks an assumption of the runtime.
    #[error("inconsistent saga data: {0}")]
    Inconsistent(String),
}
