//! Putting charges on an account in the same append as their cause.
//!
//! Whatever makes an amount owed — a trip's end, a reservation's paid waiting, a penalty, a
//! matched fine — appends its own events *and* the charge on the payer's account in one
//! transaction, so a cause never exists without its charge nor a charge without its cause. A
//! route does that in three steps:
//!
//! 1. find the payer (`domain::account::payer_of_trip`) and [`load_account`] (or fold it from
//!    [`crate::load::Streams`] read together with the cause's streams);
//! 2. ask the domain for the charge (`domain::account::charge_for`, `charges_for`,
//!    `trip_price_charge`), which refuses a second charge for the same cause;
//! 3. add [`account_write`] to the decision's writes: the account's events with the version it
//!    was loaded at, so a concurrent refund or charge makes the command decide again rather than
//!    lose an update.

use crate::load::{Loaded, load};
use crate::pipeline::{CommandError, write};
use chrono::{DateTime, Utc};
use domain::account::{Account, AccountEvent, AccountId, AccountState};
use event_store::{EventStore, StreamWrite};

/// Loads an account's state and the version it was read at.
pub(crate) async fn load_account(
    store: &EventStore,
    account_id: AccountId,
) -> Result<Loaded<AccountState>, CommandError> {
    load::<Account>(store, &account_id.stream_id()).await
}

/// The write of `events` to the account's stream, expecting the version it was loaded at.
pub(crate) fn account_write(
    account_id: AccountId,
    account: &Loaded<AccountState>,
    events: &[AccountEvent],
    now: DateTime<Utc>,
) -> Result<StreamWrite, CommandError> {
    write(account_id.stream_id(), account.expected(), events, now)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use domain::account::charge_for;
    use domain::account::{AccountContext, ChargeId, ChargeReason, ChargeSource, NewCharge};
    use domain::ids::{CustomerId, PenaltyId};
    use domain::money::Kopecks;
    use event_store::testing::TestDatabase;
    use event_store::{AppendError, AppendRequest, Claims, Metadata};
    use uuid::Uuid;

    fn request(writes: Vec<StreamWrite>) -> AppendRequest {
        AppendRequest {
            writes,
            metadata: Metadata {
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                actor: "support:test".to_owned(),
                command_id: None,
            },
            recorded_at: Utc::now(),
            claims: Claims::default(),
            result: None,
        }
    }

    fn penalty_charge(customer_id: CustomerId) -> NewCharge {
        NewCharge {
            charge_id: ChargeId(Uuid::now_v7()),
            reason: ChargeReason::Penalty,
            source: ChargeSource::Penalty {
                penalty_id: PenaltyId(Uuid::now_v7()),
            },
            amount_kopecks: Kopecks(50_000),
            customer_id,
        }
    }

    #[tokio::test]
    async fn a_charge_is_written_at_the_version_the_account_was_loaded_at() {
        let db = TestDatabase::new().await;
        let store = db.store();
        let customer_id = CustomerId(Uuid::now_v7());
        let account_id = AccountId::Customer(customer_id);
        let now = Utc::now();
        let context = AccountContext { account_id, now };

        // Two commands load the same (empty) account and each decide a charge.
        let first = load_account(&store, account_id).await.unwrap();
        let second = load_account(&store, account_id).await.unwrap();
        let charge_1 = charge_for(&first.state, &context, penalty_charge(customer_id)).unwrap();
        let charge_2 = charge_for(&second.state, &context, penalty_charge(customer_id)).unwrap();

        store
            .append(&request(vec![
                account_write(account_id, &first, &[charge_1], now).unwrap(),
            ]))
            .await
            .unwrap();
        // The second was decided on a stale account: the store refuses it, so the pipeline
        // decides it again on the fresh state instead of losing either charge.
        let stale = store
            .append(&request(vec![
                account_write(account_id, &second, &[charge_2], now).unwrap(),
            ]))
            .await;
        assert!(
            matches!(stale, Err(AppendError::WrongExpectedVersion { .. })),
            "{stale:?}"
        );

        let fresh = load_account(&store, account_id).await.unwrap();
        assert_eq!(fresh.version, 1);
        assert_eq!(fresh.state.totals().charged_kopecks, Kopecks(50_000));
        let retried = charge_for(&fresh.state, &context, penalty_charge(customer_id)).unwrap();
        store
            .append(&request(vec![
                account_write(account_id, &fresh, &[retried], now).unwrap(),
            ]))
            .await
            .unwrap();
        let after = load_account(&store, account_id).await.unwrap();
        assert_eq!(after.version, 2);
        assert_eq!(after.state.totals().charged_kopecks, Kopecks(100_000));
    }
}
