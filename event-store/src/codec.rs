//! The hook through which an edge crate transforms event data on its way into and out of the
//! store, without the store knowing what the data means: personal data is encrypted before an
//! append and decrypted after a read (`command_api::pii` implements it), and claim keys that
//! would name a person are replaced by keyed hashes.
//!
//! The store keeps what the codec gave it (ciphertext) in the database and in its stream cache,
//! and decodes every event it hands out, so what a reader sees follows the keys as they are at
//! the time of the read: after a customer's key is destroyed their events read as erased.

use crate::error::StoreError;
use crate::model::{AppendRequest, RecordedEvent};
use futures::future::BoxFuture;

/// Set to `true` in the data of an event the codec could not decode because the key its
/// fields were encrypted with is gone (a customer's personal data erased): the fields hold
/// placeholders, and a reader must not show them as data.
pub const ERASED_MARK: &str = "pii_erased";

/// Whether the codec marked an event as erased (see [`ERASED_MARK`]).
pub fn is_erased(event: &RecordedEvent) -> bool {
    event
        .data
        .get(ERASED_MARK)
        .and_then(serde_json::Value::as_bool)
        == Some(true)
}

/// Transforms events on append and on read. Implementations must be pure data transforms plus
/// key look-ups: no other effect, and `decode` must leave events it does not know untouched.
pub trait EventCodec: Send + Sync + std::fmt::Debug {
    /// The request to append instead of `request`, or `None` to append it as it is. Claim keys
    /// may be rewritten; a held claim is reported under the key the caller asked for.
    fn encode<'a>(
        &'a self,
        request: &'a AppendRequest,
    ) -> BoxFuture<'a, Result<Option<AppendRequest>, StoreError>>;

    /// Decodes events read from the store, in place.
    fn decode<'a>(
        &'a self,
        events: &'a mut [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}
