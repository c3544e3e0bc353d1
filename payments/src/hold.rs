//! The hold on the customer's card at a trip's start.
//!
//! The trip-start route makes one [`StartHold`] per request and calls it twice: [`StartHold::take`]
//! inside its decision (after the domain accepted the start, before the append), which answers
//! the `PaymentHeld` event to append with the trip or why the start is refused; and
//! [`StartHold::settle`] with the route's answer. In between, whatever instant the process dies
//! at, no hold is left that nothing knows of:
//!
//! 1. the key is checked against the account: a hold let go before can no longer be taken;
//! 2. the intent is noted (`hold_intents`) and committed — *before* the gateway is asked;
//! 3. the gateway holds (the same key answers the same hold, so a retried start gets the hold
//!    its first try made);
//! 4. the trip's append carries `PaymentHeld`; [`StartHold::settle`] then deletes the intent.
//!
//! A crash after 2 leaves an intent that the sweeper settles after the grace period: the app's
//! retry with the same `Idempotency-Key` takes the hold before that; otherwise it is abandoned
//! on the account and cancelled. When the start's answer is final (a recorded refusal: the car
//! was taken meanwhile; or no client key to retry with), [`StartHold::settle`] lets the hold go
//! at once, through the same steps as the sweeper ([`crate::settle::let_go`]).

use crate::intents::{self, NewIntent};
use crate::settle::{Asked, ask};
use crate::{Payments, PaymentsError};
use chrono::{DateTime, Utc};
use domain::Decider;
use domain::account::{
    AbandonReason, Account, AccountCommand, AccountContext, AccountEvent, AccountId, AccountState,
    PaymentFact, check_hold_key,
};
use domain::ids::{CustomerId, TripId};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The hold's idempotence key: from the client's `Idempotency-Key` (within its caller's scope)
/// when it sent one, so that a start retried after a crash finds the same hold instead of
/// making a second; else one of the trip's own.
pub fn hold_key(scope: &str, client_key: Option<&str>, trip_id: TripId) -> String {
    match client_key {
        Some(key) => {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(format!("{scope}\n{key}").as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("hold-{hex}")
        }
        None => format!("hold-{trip_id}"),
    }
}

/// Why a start gets no hold.
#[derive(Debug, thiserror::Error)]
pub enum HoldRefused {
    /// The card was declined, with the gateway's reason: the start is refused (402).
    #[error("declined: {0}")]
    Declined(String),
    /// The hold for this key was let go: a start retried with it must use a new key (409).
    #[error("the hold for this key was released")]
    Released,
    /// The gateway did not answer definitely: retry with the same key (503).
    #[error("the payment gateway is unavailable: {0}")]
    Unavailable(String),
    /// The account refused the hold (another rule of the domain).
    #[error(transparent)]
    Rejected(domain::Rejection),
    /// Velka's own database failed.
    #[error(transparent)]
    Failed(#[from] PaymentsError),
}

/// One trip start's hold: see the module documentation.
#[derive(Debug)]
pub struct StartHold {
    payments: Payments,
    key: String,
    customer_id: CustomerId,
    trip_id: TripId,
    /// The client's idempotency scope and key, when it sent a key: only then can the start be
    /// retried, and only then can its answer become final later.
    client: Option<(String, String)>,
    /// Whether this try noted the intent.
    noted: AtomicBool,
    /// The hold this try got.
    held: Mutex<Option<String>>,
}

impl Payments {
    /// The hold of one start of `trip_id` by `customer_id`, whose request came under the
    /// client's idempotency `scope` and `client_key` (if it sent one).
    pub fn start_hold(
        &self,
        customer_id: CustomerId,
        trip_id: TripId,
        scope: &str,
        client_key: Option<&str>,
    ) -> StartHold {
        StartHold {
            payments: self.clone(),
            key: hold_key(scope, client_key, trip_id),
            customer_id,
            trip_id,
            client: client_key.map(|key| (scope.to_owned(), key.to_owned())),
            noted: AtomicBool::new(false),
            held: Mutex::new(None),
        }
    }
}

impl StartHold {
    /// The hold's idempotence key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Holds money for the start and answers the account's events to append with the trip:
    /// `PaymentHeld` (nothing if this key's hold is already recorded). `account` is the
    /// customer's account as the decision read it; the append must expect that version, so a
    /// release of this key's hold appended meanwhile makes the start decide again, and be
    /// refused.
    pub async fn take(
        &self,
        account: &AccountState,
        now: DateTime<Utc>,
    ) -> Result<Vec<AccountEvent>, HoldRefused> {
        if check_hold_key(account, &self.key).is_err() {
            return Err(HoldRefused::Released);
        }
        let intent = intents::note(
            self.payments.pool(),
            &NewIntent {
                hold_key: &self.key,
                customer_id: self.customer_id,
                trip_id: self.trip_id,
                amount: self.payments.hold_kopecks(),
                now,
                grace: self.payments.grace(),
            },
        )
        .await
        .map_err(PaymentsError::from)?;
        self.noted.store(true, Ordering::SeqCst);
        if intent.released_at.is_some() {
            return Err(HoldRefused::Released);
        }
        event_store::crash::point("start.after_intent");
        let payment_id = match ask(&self.payments, &intent).await {
            Asked::Held(payment_id) => payment_id,
            Asked::Declined(reason) => {
                // Nothing is held for the key; a retry gets the same decline.
                intents::nothing_held(self.payments.pool(), &self.key)
                    .await
                    .map_err(PaymentsError::from)?;
                return Err(HoldRefused::Declined(reason));
            }
            Asked::Settled(status) => {
                tracing::info!(key = %self.key, ?status, "the key's hold holds nothing any more");
                return Err(HoldRefused::Released);
            }
            Asked::Unavailable(reason) => return Err(HoldRefused::Unavailable(reason)),
        };
        event_store::crash::point("start.after_hold");
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(payment_id.clone());
        let account_id = AccountId::Customer(self.customer_id);
        Account::decide(
            account,
            &AccountCommand::Record(PaymentFact::Held {
                trip_id: self.trip_id,
                payment_id,
                amount_kopecks: intent.amount_kopecks,
                key: self.key.clone(),
            }),
            &AccountContext { account_id, now },
        )
        .map_err(|rejection| match rejection {
            domain::Rejection::HoldReleased { .. } => HoldRefused::Released,
            other => HoldRefused::Rejected(other),
        })
    }

    /// Settles the hold once the start has its answer: `started` when the trip (and its
    /// `PaymentHeld`) was appended.
    pub async fn settle(&self, started: bool) {
        if started {
            event_store::crash::point("start.after_append");
            // A crash before this delete leaves the intent to the sweeper, which finds the hold
            // on the account.
            if let Err(error) = intents::taken(self.payments.pool(), &self.key).await {
                tracing::warn!(key = %self.key, %error, "a taken hold's intent was not cleared; the sweeper will");
            }
            return;
        }
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        let noted = self.noted.load(Ordering::SeqCst);
        if !noted && held.is_none() && self.client.is_none() {
            // Refused before any hold was asked for, and nothing else can use this key.
            return;
        }
        if !self.answer_is_final().await {
            // The app will retry with the same key (a 503, a concurrency conflict): the retry
            // takes the hold; if none comes, the sweeper lets it go after the grace period.
            return;
        }
        let intent = match intents::find(self.payments.pool(), &self.key).await {
            Ok(Some(intent)) if intent.released_at.is_none() => intent,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(key = %self.key, %error, "could not read a refused start's hold intent; the sweeper will settle it");
                return;
            }
        };
        if let Err(error) =
            crate::settle::let_go(&self.payments, &intent, AbandonReason::StartRefused).await
        {
            tracing::warn!(key = %self.key, %error, "a refused start's hold was not let go yet; the sweeper will");
        }
    }

    /// Whether no retry of this start can come: it had no client key, or the answer recorded
    /// under the client's key is a refusal (a 503 or a concurrency conflict is not recorded:
    /// the app retries those). When the record cannot be read, the answer is taken as not
    /// final, which only delays a release to the sweeper.
    async fn answer_is_final(&self) -> bool {
        let Some((scope, key)) = &self.client else {
            return true;
        };
        match self.payments.store().find_result(scope, key).await {
            Ok(Some(stored)) => stored.status != 201,
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%key, %error, "could not read the start's recorded answer");
                false
            }
        }
    }
}
