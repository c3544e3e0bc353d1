//! The decider pattern every aggregate follows, and the one encoding of events as
//! `(type, schema version, JSON data)` that the event store keeps.

use crate::rejection::Rejection;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// An aggregate's rules as two pure functions over its own events.
pub trait Decider {
    /// What the aggregate remembers from its events; `Default` is the state before the first one.
    type State: Default + Clone + std::fmt::Debug;
    /// What can be asked of it.
    type Command: std::fmt::Debug;
    /// What it records.
    type Event: DomainEvent;
    /// Facts from outside the aggregate that a decision needs: the current time, other
    /// aggregates' state. Handed in by the caller, so deciding stays pure.
    type Context;

    /// Turns a command into the events it causes, or refuses it.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
        context: &Self::Context,
    ) -> Result<Vec<Self::Event>, Rejection>;

    /// Applies one event to the state.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Folds a history into the state it leads to.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), |state, event| {
                Self::evolve(state, event)
            })
    }
}

/// An event enum as stored: serde-tagged as `{"type": "...", "data": {...}}`, with a schema
/// version per type so that old shapes can be upcast on read and never rewritten.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + std::fmt::Debug {
    /// The schema version this code writes for `event_type`.
    fn schema_version(_event_type: &str) -> u32 {
        1
    }

    /// Turns the data of an older schema version into the current shape. The default accepts
    /// only the current version.
    fn upcast(event_type: &str, schema_version: u32, data: Value) -> Result<Value, DecodeError> {
        if schema_version == Self::schema_version(event_type) {
            Ok(data)
        } else {
            Err(DecodeError::UnknownSchemaVersion {
                event_type: event_type.to_owned(),
                schema_version,
            })
        }
    }
}

/// An event as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedEvent {
    /// The event's type name (`TripStarted`).
    pub event_type: String,
    /// The schema version of `data`.
    pub schema_version: u32,
    /// The event's fields.
    pub data: Value,
}

/// An event that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The stored schema version is neither current nor upcastable.
    #[error("no upcaster for {event_type} schema version {schema_version}")]
    UnknownSchemaVersion {
        event_type: String,
        schema_version: u32,
    },
    /// The JSON does not match the event type.
    #[error("event does not match its type: {0}")]
    Json(#[from] serde_json::Error),
    /// The serialized enum was not of the `{"type", "data"}` shape.
    #[error("event is not tagged with type and data")]
    NotTagged,
}

/// Splits an event into its type name, schema version and data.
pub fn encode<E: DomainEvent>(event: &E) -> Result<EncodedEvent, DecodeError> {
    let Value::Object(mut tagged) = serde_json::to_value(event)? else {
        return Err(DecodeError::NotTagged);
    };
    let Some(Value::String(event_type)) = tagged.remove("type") else {
        return Err(DecodeError::NotTagged);
    };
    let data = tagged
        .remove("data")
        .unwrap_or(Value::Object(Default::default()));
    Ok(EncodedEvent {
        schema_version: E::schema_version(&event_type),
        event_type,
        data,
    })
}

/// Rebuilds an event from what the store kept, upcasting old schema versions.
pub fn decode<E: DomainEvent>(
    event_type: &str,
    schema_version: u32,
    data: Value,
) -> Result<E, DecodeError> {
    let data = E::upcast(event_type, schema_version, data)?;
    let mut tagged = serde_json::Map::new();
    tagged.insert("type".to_owned(), Value::String(event_type.to_owned()));
    tagged.insert("data".to_owned(), data);
    Ok(serde_json::from_value(Value::Object(tagged))?)
}
