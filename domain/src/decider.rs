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
    Ok(E::deserialize(Tagged {
        event_type,
        data: &data,
    })?)
}

/// [`decode`] from borrowed data: an event of the current schema version is read in place,
/// without copying its JSON (only an older one is copied, to be upcast). Readers that keep
/// events (projectors, loading a stream) use this one.
pub fn decode_ref<E: DomainEvent>(
    event_type: &str,
    schema_version: u32,
    data: &Value,
) -> Result<E, DecodeError> {
    if schema_version != E::schema_version(event_type) {
        return decode(event_type, schema_version, data.clone());
    }
    Ok(E::deserialize(Tagged { event_type, data })?)
}

/// An event as the map `{"type": event_type, "data": data}`, tag first. Building that map as a
/// `Value` would put `data` first (its keys are sorted), which makes serde buffer the whole
/// event before it knows the variant; with the tag first it reads the data straight into it.
struct Tagged<'a> {
    event_type: &'a str,
    data: &'a Value,
}

impl<'de> serde::Deserializer<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_map(TaggedEntries {
            tagged: self,
            next: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// The two entries of [`Tagged`], in order.
struct TaggedEntries<'a> {
    tagged: Tagged<'a>,
    /// 0: the tag's key is next; 1: the tag's value; 2: data's key; 3: data's value; 4: done.
    next: u8,
}

impl<'de> serde::de::MapAccess<'de> for TaggedEntries<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        use serde::de::IntoDeserializer;
        let key = match self.next {
            0 => "type",
            2 => "data",
            _ => return Ok(None),
        };
        self.next += 1;
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        use serde::de::IntoDeserializer;
        let next = self.next;
        self.next += 1;
        match next {
            1 => seed.deserialize(self.tagged.event_type.into_deserializer()),
            3 => seed.deserialize(self.tagged.data),
            _ => Err(serde::de::Error::custom("value asked for before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(usize::from(4_u8.saturating_sub(self.next) / 2))
    }
}

#[cfg(test)]
mod tests {
    //! The stored shape of events: every event survives encode → decode unchanged, and the JSON of
    //! the two events that carry money is snapshotted so a change to it shows in review.

    use super::*;
    use crate::customer::{BlockReason, CustomerEvent};
    use crate::testing::*;
    use crate::trip::TripEvent;
    use crate::vehicle::VehicleEvent;
    use proptest::prelude::*;

    fn round_trip<E: DomainEvent + PartialEq>(event: &E) {
        let encoded = encode(event).unwrap();
        let decoded: E = decode(
            &encoded.event_type,
            encoded.schema_version,
            encoded.data.clone(),
        )
        .unwrap();
        assert_eq!(&decoded, event, "{} did not round-trip", encoded.event_type);
        let borrowed: E =
            decode_ref(&encoded.event_type, encoded.schema_version, &encoded.data).unwrap();
        assert_eq!(
            &borrowed, event,
            "{} did not round-trip in place",
            encoded.event_type
        );
    }

    /// The value with every object's keys in sorted order, so that the snapshot does not depend
    /// on whether some crate in the build turned on serde_json's `preserve_order`.
    fn canonical(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key, canonical(value)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
            other => other,
        }
    }

    /// An event as the store keeps it, as pretty JSON.
    fn stored<E: DomainEvent>(event: &E) -> String {
        let encoded = encode(event).unwrap();
        let row = serde_json::json!({
            "event_type": encoded.event_type,
            "schema_version": encoded.schema_version,
            "data": encoded.data,
        });
        serde_json::to_string_pretty(&canonical(row)).unwrap()
    }

    fn ended_trip() -> TripEvent {
        let history = [
            trip_started(NOW),
            trip_parked("2026-11-25T10:07:00Z"),
            trip_resumed("2026-11-25T10:12:00Z"),
        ];
        trip_ended(&history, "2026-11-25T10:17:00Z", START_ODOMETER_M + 8_400)
    }

    #[test]
    fn every_customer_event_round_trips() {
        let events = [
            registered(IVAN),
            verified(IVAN),
            CustomerEvent::CustomerVerificationRejected {
                customer_id: IVAN,
                reason: "Licence photo is unreadable".to_owned(),
                rejected_at: at(NOW),
            },
            CustomerEvent::CustomerBlocked {
                customer_id: IVAN,
                reason: BlockReason::Documents,
                note: "Licence expires".to_owned(),
                blocked_at: at(NOW),
            },
            CustomerEvent::CustomerUnblocked {
                customer_id: IVAN,
                reason: BlockReason::Documents,
                note: "New licence checked".to_owned(),
                unblocked_at: at(NOW),
            },
        ];
        events.iter().for_each(round_trip);
    }

    #[test]
    fn every_vehicle_event_round_trips() {
        let events = [
            added(KIA),
            telemetry_recorded(
                KIA,
                reading(chistye_prudy(), 64, START_ODOMETER_M + 1_234, false),
                NOW,
            ),
            rented(KIA, TRIP_1, IVAN, NOW),
            VehicleEvent::VehicleReturned {
                vehicle_id: KIA,
                trip_id: TRIP_1,
                returned_at: at(NOW),
            },
        ];
        events.iter().for_each(round_trip);
    }

    #[test]
    fn every_trip_event_round_trips() {
        let events = [
            trip_started(NOW),
            trip_parked("2026-11-25T10:07:00Z"),
            trip_resumed("2026-11-25T10:12:00Z"),
            ended_trip(),
        ];
        events.iter().for_each(round_trip);
    }

    #[test]
    fn encode_splits_type_version_and_data() {
        let encoded = encode(&trip_parked("2026-11-25T10:07:00Z")).unwrap();
        assert_eq!(encoded.event_type, "TripParked");
        assert_eq!(encoded.schema_version, 1);
        assert_eq!(
            encoded.data,
            serde_json::json!({
                "trip_id": TRIP_1,
                "parked_at": "2026-11-25T10:07:00Z",
            })
        );
    }

    #[test]
    fn decode_refuses_an_unknown_schema_version_and_a_wrong_shape() {
        let encoded = encode(&trip_parked("2026-11-25T10:07:00Z")).unwrap();
        assert!(matches!(
            decode::<TripEvent>(&encoded.event_type, 2, encoded.data.clone()),
            Err(DecodeError::UnknownSchemaVersion {
                schema_version: 2,
                ..
            })
        ));
        assert!(matches!(
            decode_ref::<TripEvent>(&encoded.event_type, 2, &encoded.data),
            Err(DecodeError::UnknownSchemaVersion {
                schema_version: 2,
                ..
            })
        ));
        assert!(matches!(
            decode_ref::<TripEvent>("TripResumed", 1, &encoded.data),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            decode_ref::<TripEvent>("NoSuchEvent", 1, &encoded.data),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            decode::<TripEvent>("TripResumed", 1, encoded.data),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn trip_started_as_stored() {
        insta::assert_snapshot!(stored(&trip_started(NOW)));
    }

    #[test]
    fn trip_ended_as_stored() {
        insta::assert_snapshot!(stored(&ended_trip()));
    }

    proptest! {
        #[test]
        fn positions_survive_the_store_json_text_exactly(
            lat in -90.0f64..=90.0,
            lon in -180.0f64..=180.0,
            odometer_m in 0u64..10_000_000_000,
        ) {
            // The store keeps the data as JSON text (jsonb); a position must come back bit for bit,
            // or replaying a history could move a car across a zone boundary.
            let event = telemetry_recorded(
                KIA,
                reading(crate::geo::GeoPoint { lat, lon }, 50, odometer_m, true),
                NOW,
            );
            let encoded = encode(&event).unwrap();
            let text = serde_json::to_string(&encoded.data).unwrap();
            let data: Value = serde_json::from_str(&text).unwrap();
            let decoded: VehicleEvent = decode(&encoded.event_type, encoded.schema_version, data).unwrap();
            prop_assert_eq!(decoded, event);
        }
    }
}
