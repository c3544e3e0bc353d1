//! An aggregate's state as of a time (`velka audit state`, `GET /v1/audit/streams/{id}/state`):
//! the stream's events recorded at or before T, folded with the domain's own evolve, so an
//! auditor sees exactly what the system knew then — not what was later learned about then.
//!
//! "Recorded at or before T" is the stream's longest prefix whose events were all recorded by T:
//! a stream is a sequence, so an event is never included without the ones before it, even if a
//! clock stepped back between appends.

use chrono::{DateTime, Utc};
use domain::Decider;
use serde::Serialize;
use serde_json::Value;

/// `AuditStateQueried`: who asked for which stream's state as of when.
pub const STATE_QUERIED: &str = "AuditStateQueried";

/// Why no state could be given.
#[derive(Debug, thiserror::Error)]
pub enum AsOfError {
    /// The stream's category has no aggregate to fold it with.
    #[error("{stream_id} is not the stream of an aggregate (its category {category:?} has none)")]
    UnknownCategory { stream_id: String, category: String },
    /// The stream has no events at all.
    #[error("no stream {0}")]
    NoStream(String),
    /// An event could not be read as its aggregate's event.
    #[error("event at position {position} of {stream_id} cannot be read: {reason}")]
    Decode {
        stream_id: String,
        position: i64,
        reason: String,
    },
    /// The state could not be written as JSON.
    #[error("the state cannot be written as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// A query failed.
    #[error("reading the stream failed: {0}")]
    Database(#[from] sqlx::Error),
    /// The store could not read the stream.
    #[error("reading the stream failed: {0}")]
    Store(#[from] event_store::StoreError),
}

/// One stored event, as the fold needs it.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub position: i64,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
    pub recorded_at: DateTime<Utc>,
}

/// An aggregate's state as of a time.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StateAsOf {
    pub stream_id: String,
    /// The aggregate folded: the stream's category (`trip`).
    pub aggregate: String,
    /// The time asked about.
    pub as_of: DateTime<Utc>,
    /// Whether the stream had any event by then.
    pub existed: bool,
    /// The stream version the state includes (0: none).
    pub version: i64,
    /// The log position of the last event included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_position: Option<i64>,
    /// When the last event included was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_recorded_at: Option<DateTime<Utc>>,
    /// Events of the stream recorded after `as_of` (not included).
    pub later_events: i64,
    /// The folded state, as the domain defines it.
    #[schema(value_type = Object)]
    pub state: Value,
}

/// The aggregates whose state can be asked for, by stream category.
pub const AGGREGATES: [&str; 11] = [
    "customer",
    "vehicle",
    "trip",
    "account",
    "company",
    "reservation",
    "quote",
    "fine",
    "penalty",
    "service_task",
    "damage_report",
];

fn fold_with<D>(stream_id: &str, events: &[StoredEvent]) -> Result<Value, AsOfError>
where
    D: Decider,
    D::State: Serialize,
{
    let mut state = D::State::default();
    for event in events {
        let decoded: D::Event =
            domain::decider::decode_ref(&event.event_type, event.schema_version, &event.data)
                .map_err(|e| AsOfError::Decode {
                    stream_id: stream_id.to_owned(),
                    position: event.position,
                    reason: e.to_string(),
                })?;
        state = D::evolve(state, &decoded);
    }
    Ok(serde_json::to_value(&state)?)
}

/// Folds `events` (the whole stream, in version order) as of `as_of`. Pure.
pub fn state_as_of(
    stream_id: &str,
    events: &[StoredEvent],
    as_of: DateTime<Utc>,
) -> Result<StateAsOf, AsOfError> {
    use domain::{account, company, customer, damage, fine, penalty, quote, reservation};
    use domain::{service_task, trip, vehicle};
    let category = stream_id.split_once('-').map_or(stream_id, |(c, _)| c);
    let included = events.iter().take_while(|e| e.recorded_at <= as_of).count();
    let (known, later) = events.split_at(included);
    let state = match category {
        "customer" => fold_with::<customer::Customer>(stream_id, known),
        "vehicle" => fold_with::<vehicle::Vehicle>(stream_id, known),
        "trip" => fold_with::<trip::Trip>(stream_id, known),
        "account" => fold_with::<account::Account>(stream_id, known),
        "company" => fold_with::<company::Company>(stream_id, known),
        "reservation" => fold_with::<reservation::Reservation>(stream_id, known),
        "quote" => fold_with::<quote::Quote>(stream_id, known),
        "fine" => fold_with::<fine::Fine>(stream_id, known),
        "penalty" => fold_with::<penalty::Penalty>(stream_id, known),
        "service_task" => fold_with::<service_task::ServiceTask>(stream_id, known),
        "damage_report" => fold_with::<damage::DamageReport>(stream_id, known),
        _ => {
            return Err(AsOfError::UnknownCategory {
                stream_id: stream_id.to_owned(),
                category: category.to_owned(),
            });
        }
    }?;
    let last = known.last();
    Ok(StateAsOf {
        stream_id: stream_id.to_owned(),
        aggregate: category.to_owned(),
        as_of,
        existed: last.is_some(),
        version: last.map_or(0, |e| e.stream_version),
        last_position: last.map(|e| e.position),
        last_recorded_at: last.map(|e| e.recorded_at),
        later_events: i64::try_from(later.len()).unwrap_or(i64::MAX),
        state,
    })
}

/// Reads `stream_id` through `store` (so personal data reads as the store decodes it: in clear
/// while the customer's key exists, erased after) and folds it as of `as_of`.
pub async fn load(
    store: &event_store::EventStore,
    stream_id: &str,
    as_of: DateTime<Utc>,
) -> Result<StateAsOf, AsOfError> {
    let category = stream_id.split_once('-').map_or(stream_id, |(c, _)| c);
    if !AGGREGATES.contains(&category) {
        return Err(AsOfError::UnknownCategory {
            stream_id: stream_id.to_owned(),
            category: category.to_owned(),
        });
    }
    let recorded = store.read_stream(stream_id, 0).await?;
    if recorded.is_empty() {
        return Err(AsOfError::NoStream(stream_id.to_owned()));
    }
    let events: Vec<StoredEvent> = recorded
        .into_iter()
        .map(|event| StoredEvent {
            position: event.position,
            stream_version: i64::try_from(event.stream_version).unwrap_or(i64::MAX),
            event_type: event.event_type,
            schema_version: event.schema_version,
            data: event.data,
            recorded_at: event.recorded_at,
        })
        .collect();
    state_as_of(stream_id, &events, as_of)
}

#[cfg(test)]
mod tests {
    //! The fold stops at T, keeps to a prefix, and refuses what is not an aggregate.

    use super::*;
    use domain::account::{AccountEvent, AccountId, ChargeId, ChargeReason, ChargeSource};
    use domain::ids::{CustomerId, TripId};
    use domain::money::Kopecks;
    use uuid::Uuid;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn charge(n: u128, amount: i64, at: &str, version: i64) -> StoredEvent {
        let customer = CustomerId(Uuid::from_u128(1));
        let event = AccountEvent::ChargeAdded {
            account_id: AccountId::Customer(customer),
            charge_id: ChargeId(Uuid::from_u128(n)),
            reason: ChargeReason::TripPrice,
            source: ChargeSource::Trip {
                trip_id: TripId(Uuid::from_u128(n)),
            },
            amount_kopecks: Kopecks(amount),
            customer_id: customer,
            added_at: time(at),
        };
        let encoded = domain::decider::encode(&event).unwrap_or_else(|e| panic!("{e}"));
        StoredEvent {
            position: 10 * version,
            stream_version: version,
            event_type: encoded.event_type,
            schema_version: encoded.schema_version,
            data: encoded.data,
            recorded_at: time(at),
        }
    }

    fn stream() -> Vec<StoredEvent> {
        vec![
            charge(1, 100, "2026-11-01T10:00:00Z", 1),
            charge(2, 250, "2026-11-02T10:00:00Z", 2),
            // A clock stepped back: recorded "earlier" than version 2.
            charge(3, 400, "2026-11-01T12:00:00Z", 3),
        ]
    }

    const ACCOUNT: &str = "account-00000000-0000-0000-0000-000000000001";

    #[test]
    fn the_state_includes_exactly_the_events_recorded_by_then() {
        let state = state_as_of(ACCOUNT, &stream(), time("2026-11-01T11:00:00Z"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.version, 1);
        assert_eq!(state.last_position, Some(10));
        assert_eq!(state.later_events, 2);
        assert_eq!(state.state["charges"].as_object().map(|c| c.len()), Some(1));
        assert_eq!(state.aggregate, "account");
    }

    #[test]
    fn a_later_event_recorded_with_an_earlier_time_does_not_jump_the_queue() {
        let state = state_as_of(ACCOUNT, &stream(), time("2026-11-01T13:00:00Z"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            state.version, 1,
            "version 3 needs version 2, recorded later"
        );
    }

    #[test]
    fn before_the_first_event_the_aggregate_did_not_exist() {
        let state = state_as_of(ACCOUNT, &stream(), time("2026-10-01T00:00:00Z"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!state.existed);
        assert_eq!(state.version, 0);
        assert_eq!(state.later_events, 3);
    }

    #[test]
    fn a_stream_that_is_no_aggregate_is_refused() {
        let refused = state_as_of("audit-log", &[], time("2026-11-01T00:00:00Z"));
        assert!(matches!(refused, Err(AsOfError::UnknownCategory { .. })));
    }
}
