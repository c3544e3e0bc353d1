//! Erasing a customer's personal data: `CustomerErased` (who, why, when), the release of their
//! phone and e-mail claims and the destruction of their key, in one transaction. Used by
//! `POST /v1/customers/{id}/erase` and by `velka customer erase`.
//!
//! Nothing in the log changes: the events keep their sealed fields (so the audit chain still
//! verifies), which simply no longer open. Read models drop the customer's personal data when
//! they see `CustomerErased`, and show them as erased on any replay after it.

use super::keys;
use crate::load::load;
use crate::pipeline::{CommandError, write};
use chrono::{DateTime, Utc};
use domain::Decider;
use domain::Rejection;
use domain::claims::Claim;
use domain::customer::{Customer, CustomerCommand, CustomerContext, CustomerEvent, KycPolicy};
use domain::ids::CustomerId;
use event_store::clock::Clock;
use event_store::{
    AppendError, AppendRequest, Claims, CommandResult, EventStore, Metadata, StoreError,
};
use uuid::Uuid;

/// How many times a lost race (someone appended to the customer meanwhile) is decided again.
const MAX_ATTEMPTS: u32 = 8;

/// Who erases whom, and why.
#[derive(Clone, Debug)]
pub struct Erasure {
    /// The customer.
    pub customer_id: CustomerId,
    /// Why: recorded in the event and in `customer_keys`.
    pub reason: String,
    /// Who: `support:<agent>`, or `operator:<name>` from the command line.
    pub actor: String,
    /// Groups the erasure with the request that caused it.
    pub correlation_id: Uuid,
    /// The caller's idempotency scope, key and request digest, if they sent a key: the answer
    /// (`{customer_id, erased_at}`) is recorded under it in the same append.
    pub idempotency: Option<(String, String, String)>,
}

/// What an erasure recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erased {
    /// When, by the injected clock.
    pub erased_at: DateTime<Utc>,
    /// The log position of `CustomerErased`.
    pub position: Option<i64>,
}

/// Why an erasure did not happen.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// A rule refused it: no such customer, already erased, no reason.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The customer kept changing while it was decided.
    #[error("the customer kept changing while the erasure was decided; retry")]
    Conflict,
    /// The store failed, or the customer's events do not decode.
    #[error("{0}")]
    Failed(String),
}

impl From<CommandError> for EraseError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(rejection) => EraseError::Rejected(rejection),
            other => EraseError::Failed(other.to_string()),
        }
    }
}

impl From<StoreError> for EraseError {
    fn from(error: StoreError) -> Self {
        EraseError::Failed(error.to_string())
    }
}

impl From<sqlx::Error> for EraseError {
    fn from(error: sqlx::Error) -> Self {
        EraseError::Failed(error.to_string())
    }
}

/// Erases the customer (see the module docs). `store` must carry the [`super::PiiCodec`], so
/// that the released claims are the hashed ones the registration took.
pub async fn erase(
    store: &EventStore,
    clock: &dyn Clock,
    kyc: &KycPolicy,
    erasure: &Erasure,
) -> Result<Erased, EraseError> {
    let customer_id = erasure.customer_id;
    let stream_id = customer_id.stream_id();
    for _attempt in 0..MAX_ATTEMPTS {
        let loaded = load::<Customer>(store, &stream_id).await?;
        let now = clock.now();
        let events = Customer::decide(
            &loaded.state,
            &CustomerCommand::Erase {
                reason: erasure.reason.clone(),
                by: erasure.actor.clone(),
            },
            &CustomerContext {
                customer_id,
                now,
                kyc: kyc.clone(),
            },
        )?;
        let reason = events
            .iter()
            .find_map(|event| match event {
                CustomerEvent::CustomerErased { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .unwrap_or_else(|| erasure.reason.clone());
        let release = loaded
            .state
            .profile
            .as_ref()
            .map(Claim::released_by_erasure)
            .unwrap_or_default();
        let request = AppendRequest {
            writes: vec![write(stream_id.clone(), loaded.expected(), &events, now)?],
            metadata: Metadata {
                correlation_id: erasure.correlation_id,
                causation_id: None,
                actor: erasure.actor.clone(),
                command_id: Some(Uuid::now_v7()),
            },
            recorded_at: now,
            claims: Claims {
                acquire: Vec::new(),
                holder: None,
                release: release.iter().map(Claim::key).collect(),
            },
            result: erasure
                .idempotency
                .as_ref()
                .map(|(scope, key, request_hash)| CommandResult {
                    scope: scope.clone(),
                    key: key.clone(),
                    request_hash: request_hash.clone(),
                    status: 200,
                    body: answer(customer_id, now),
                }),
        };
        let mut tx = store.pool().begin().await?;
        match store.append_in(&mut *tx, &request).await {
            Ok(outcome) => {
                keys::destroy(&mut tx, customer_id.0, now, &erasure.actor, &reason).await?;
                // Local readers notice at their next poll (50 ms).
                tx.commit().await?;
                return Ok(Erased {
                    erased_at: now,
                    position: outcome.last_position(),
                });
            }
            Err(AppendError::WrongExpectedVersion { .. }) => continue,
            Err(error) => return Err(EraseError::Failed(error.to_string())),
        }
    }
    Err(EraseError::Conflict)
}

/// The answer to an erasure: `{customer_id, erased_at}`.
pub fn answer(customer_id: CustomerId, erased_at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({ "customer_id": customer_id, "erased_at": erased_at })
}
