//! What can stop a relay attempt (besides the log and the checkpoint, which are the follower
//! module's). Every one of them is retried from the checkpoint: the relay never skips an event,
//! it only waits and tries again.

use async_nats::jetstream::context::{CreateStreamError, PublishError};

/// A failed attempt to publish a batch (or to get ready to).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The configuration cannot work (a prefix that is not one subject token, say).
    #[error("invalid relay configuration: {0}")]
    Config(String),
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
