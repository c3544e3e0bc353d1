//! What can stop a relay attempt. Every one of them is retried from the checkpoint: the relay
//! never skips an event, it only waits and tries again.

use async_nats::jetstream::context::{CreateStreamError, PublishError};
use event_store::{LogPosition, StoreError};

/// A failed attempt to publish a batch (or to get ready to).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The configuration cannot work (a prefix that is not one subject token, say).
    #[error("invalid relay configuration: {0}")]
    Config(String),
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or moving the checkpoint failed.
    #[error("relay checkpoint query failed: {0}")]
    Checkpoint(#[from] sqlx::Error),
    /// The stored checkpoint is not a position (a negative transaction id).
    #[error("relay checkpoint {0} is corrupt")]
    CorruptCheckpoint(String),
    /// Another relay with the same name moved the checkpoint since this one read it.
    #[error("relay checkpoint {name} moved under us: expected {expected:?}, found {found:?}")]
    CheckpointMoved {
        name: String,
        expected: LogPosition,
        found: Option<LogPosition>,
    },
    /// The JetStream stream could not be found or created.
    #[error("cannot ensure JetStream stream {stream}: {source}")]
    Stream {
        stream: String,
        #[source]
        source: CreateStreamError,
    },
    /// A publish was refused or not acknowledged in time.
    #[error("publishing event at position {position} failed: {source}")]
    Publish {
        position: i64,
        #[source]
        source: PublishError,
    },
    /// An event could not be encoded as JSON (it came out of JSONB, so this is a bug).
    #[error("encoding event at position {position} failed: {source}")]
    Encode {
        position: i64,
        #[source]
        source: serde_json::Error,
    },
}
