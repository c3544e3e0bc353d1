//! Payments in one room: everything Velka does with the payment gateway.
//!
//! - [`gateway`]: the gateway's protocol, typed (operations, statuses, refusal codes), over
//!   HTTP.
//! - [`hold`]: the hold on the customer's card at a trip's start ([`StartHold`]): noted before
//!   it is asked for ([`intents`]), taken by the trip's append, or let go.
//! - [`sweeper`]: lets go of every noted hold no trip took once its grace period has passed,
//!   and of every hold a refused start left, whatever instant the process died at.
//! - [`reconciler`]: what slips through anyway — holds the gateway keeps open that nothing
//!   Velka recorded explains — is found by listing the gateway's open holds, and let go after
//!   the grace period.
//! - [`saga`]: the payment saga (capture at a trip's end, charge, refund, debt collection), on
//!   the `sagas` runtime, and [`operation`]: its typed commands and how a gateway operation is
//!   performed and turned into the fact that records it.
//!
//! The invariant this crate keeps: **a hold never outlives its trip**. Every hold Velka asks
//! for is first written down (an intent row, committed before the gateway is called); every
//! hold is then either taken by a trip (`PaymentHeld` in the same append as the trip's start,
//! after which the saga captures or releases it) or abandoned on the customer's account
//! (`HoldAbandoned`, which no later start can take) and cancelled. The account stream's version
//! orders a retried start against a release, so the two never both win.
//!
//! Architecture invariant: money moves only through [`gateway`], with an idempotence key derived
//! from what caused it; nothing calls the gateway inside a database transaction; the crate
//! writes only `hold_intents`, `gateway_holds_seen` and account events.

mod account;
pub mod gateway;
pub mod hold;
pub mod intents;
pub mod operation;
pub mod reconciler;
pub mod saga;
mod settle;
pub mod sweeper;

pub use account::ACTOR;
pub use gateway::{GatewayClient, GatewayError};
pub use hold::{HoldRefused, StartHold, hold_key};
pub use reconciler::HoldReconciler;
pub use sweeper::HoldSweeper;

use chrono::Duration as TimeDelta;
use domain::money::Kopecks;
use event_store::EventStore;
use event_store::clock::Clock;
use std::sync::Arc;

/// How long a hold whose start did not happen is left for the app's retry (with the same
/// `Idempotency-Key`) before it is let go.
pub const DEFAULT_GRACE: TimeDelta = TimeDelta::minutes(10);

/// Why a payment worker could not do its work (it tries again on its next pass).
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error("the event store: {0}")]
    Store(#[from] event_store::StoreError),
    #[error("the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the payment gateway: {0}")]
    Gateway(#[from] GatewayError),
    #[error("an account event that does not read: {0}")]
    Decode(String),
    #[error("appending to an account failed: {0}")]
    Append(String),
    #[error("the account refused: {0}")]
    Refused(#[from] domain::Rejection),
}

/// The settings of payments.
#[derive(Clone, Copy, Debug)]
pub struct PaymentsConfig {
    /// How much a trip's start holds on the card.
    pub hold_kopecks: Kopecks,
    /// How long a hold no trip took is left for the app's retry.
    pub grace: TimeDelta,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            hold_kopecks: Kopecks(50_000),
            grace: DEFAULT_GRACE,
        }
    }
}

/// The payment gateway and what Velka keeps about it: the handle the trip start, the workers
/// and the saga's sink share.
#[derive(Clone, Debug)]
pub struct Payments {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    gateway: GatewayClient,
    store: EventStore,
    clock: Arc<dyn Clock>,
    config: PaymentsConfig,
}

impl Payments {
    /// Payments through `gateway`, writing to `store`, by `clock`.
    pub fn new(
        gateway: GatewayClient,
        store: EventStore,
        clock: Arc<dyn Clock>,
        config: PaymentsConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                gateway,
                store,
                clock,
                config,
            }),
        }
    }

    /// The gateway.
    pub fn gateway(&self) -> &GatewayClient {
        &self.inner.gateway
    }

    /// How much a trip's start holds.
    pub fn hold_kopecks(&self) -> Kopecks {
        self.inner.config.hold_kopecks
    }

    /// How long a hold no trip took is left for the app's retry.
    pub fn grace(&self) -> TimeDelta {
        self.inner.config.grace
    }

    pub(crate) fn store(&self) -> &EventStore {
        &self.inner.store
    }

    pub(crate) fn pool(&self) -> &sqlx::PgPool {
        self.inner.store.pool()
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
}
