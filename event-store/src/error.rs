//! What can go wrong in the store, typed so that callers can react: a version conflict is retried,
//! a held claim becomes a 409, a duplicate command returns the first answer.

/// An append that did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to the stream since it was read.
    #[error("stream {stream_id} was expected at version {expected} but is at {actual}")]
    WrongExpectedVersion {
        stream_id: String,
        expected: i64,
        actual: i64,
    },
    /// An exclusive claim is held by another stream.
    #[error("claim {claim} is held by another stream")]
    ClaimHeld { claim: String },
    /// A result is already recorded under this idempotency key (a concurrent duplicate won).
    #[error("a result is already recorded for idempotency key {key}")]
    DuplicateCommand { key: String },
    /// The request itself is malformed (a stream id without a category, say).
    #[error("invalid append: {0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The database failed or returned something unreadable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("event store query failed: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value is not what the schema promises.
    #[error("corrupt row at position {position}: {reason}")]
    Corrupt { position: i64, reason: String },
    /// The event codec (see `codec`) could not encode or decode.
    #[error("event codec: {0}")]
    Codec(String),
    /// The group commit writer stopped before answering (its runtime shut down): the append
    /// may or may not have committed.
    #[error("the append was interrupted before its outcome was known")]
    Interrupted,
}
