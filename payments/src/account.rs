//! The customer's account stream as the payment workers use it: read and fold it with the
//! domain's own rules, and decide and append on it at the version read, deciding again when
//! another writer got there first (the account's version is what orders a retried start's
//! `PaymentHeld` against a release's `HoldAbandoned`).

use crate::PaymentsError;
use chrono::{DateTime, Utc};
use domain::Decider;
use domain::account::{Account, AccountCommand, AccountContext, AccountId, AccountState};
use event_store::{
    AppendError, AppendRequest, Claims, EventStore, ExpectedVersion, Metadata, NewEvent,
    StreamWrite,
};
use uuid::Uuid;

/// The actor of what the payment workers append.
pub const ACTOR: &str = "service:payments";

/// How many times a decision is taken again after another writer appended first.
const ATTEMPTS: usize = 8;

/// An account's state and the version it was read at.
#[derive(Debug)]
pub(crate) struct LoadedAccount {
    pub state: AccountState,
    pub version: u64,
}

/// Reads and folds an account stream.
pub(crate) async fn load(
    store: &EventStore,
    account_id: AccountId,
) -> Result<LoadedAccount, PaymentsError> {
    let events = store.read_stream(&account_id.stream_id(), 0).await?;
    let mut loaded = LoadedAccount {
        state: AccountState::default(),
        version: 0,
    };
    for event in &events {
        let decoded = domain::decider::decode_ref::<domain::account::AccountEvent>(
            &event.event_type,
            event.schema_version,
            &event.data,
        )
        .map_err(|e| PaymentsError::Decode(format!("{}: {e}", event.event_type)))?;
        loaded.state = Account::evolve(loaded.state, &decoded);
        loaded.version = event.stream_version;
    }
    Ok(loaded)
}

/// Decides `command` on the account and appends what it decides, as [`ACTOR`]; decides again
/// on a newer version when another writer appended first. Answers how many events it appended
/// (0: the command was already done), or the domain's refusal.
pub(crate) async fn decide(
    store: &EventStore,
    account_id: AccountId,
    command: &AccountCommand,
    now: DateTime<Utc>,
) -> Result<Result<usize, domain::Rejection>, PaymentsError> {
    let correlation_id = Uuid::now_v7();
    for _ in 0..ATTEMPTS {
        let loaded = load(store, account_id).await?;
        let context = AccountContext { account_id, now };
        let events = match Account::decide(&loaded.state, command, &context) {
            Ok(events) => events,
            Err(rejection) => return Ok(Err(rejection)),
        };
        if events.is_empty() {
            return Ok(Ok(0));
        }
        let new_events = events
            .iter()
            .map(|event| {
                let encoded = domain::decider::encode(event)
                    .map_err(|e| PaymentsError::Decode(e.to_string()))?;
                Ok(NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: encoded.event_type,
                    schema_version: encoded.schema_version,
                    data: encoded.data,
                    occurred_at: now,
                })
            })
            .collect::<Result<Vec<_>, PaymentsError>>()?;
        let request = AppendRequest {
            writes: vec![StreamWrite {
                stream_id: account_id.stream_id(),
                expected: ExpectedVersion::after(loaded.version),
                events: new_events,
            }],
            metadata: Metadata {
                correlation_id,
                causation_id: None,
                actor: ACTOR.to_owned(),
                command_id: None,
            },
            recorded_at: now,
            claims: Claims::default(),
            result: None,
        };
        match store.append(&request).await {
            Ok(_) => return Ok(Ok(events.len())),
            Err(AppendError::WrongExpectedVersion { .. }) => continue,
            Err(AppendError::Store(error)) => return Err(error.into()),
            Err(other) => return Err(PaymentsError::Append(other.to_string())),
        }
    }
    Err(PaymentsError::Append(format!(
        "{account_id}: still conflicting after {ATTEMPTS} attempts"
    )))
}
