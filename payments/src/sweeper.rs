//! The hold sweeper: settles every noted hold (`hold_intents`) that is due — no trip took it
//! within its grace period, or its start was refused for good — so that none outlives the start
//! it was made for, whatever instant the process died at.
//!
//! Settling one ([`let_go`]) goes in an order that a crash can interrupt anywhere:
//!
//! 1. the intent is made due now (so a crash below is picked up by the next pass);
//! 2. the hold is abandoned on the customer's account (`HoldAbandoned`) — refused if a trip
//!    took it, and then only the intent is cleared. From here on no start retried with the key
//!    can take the hold, and the account's version makes a start deciding at this very moment
//!    decide again and be refused;
//! 3. the gateway is asked for the key's hold with the same request (it answers the hold it
//!    made, or makes one if the first request never reached it) and the hold is cancelled;
//! 4. the intent is marked released.
//!
//! Every step repeats safely: abandoning twice appends nothing, the gateway answers a repeated
//! key with its first answer, cancelling a cancelled hold answers it again. Time is the
//! injected clock's; the sweeper only polls in real time.

use crate::account::decide;
use crate::gateway::{GatewayError, RefusalCode};
use crate::hold::{Asked, ask};
use crate::intents::{self, HoldIntent};
use crate::{Payments, PaymentsError};
use domain::account::{AbandonReason, AccountCommand, AccountId, HoldToAbandon};
use std::future::Future;
use std::time::Duration;

/// How often the sweeper looks (one indexed read of a small table).
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// The most holds settled in one pass.
const BATCH: i64 = 100;

/// How settling a hold ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// A trip holds it: only the intent was cleared.
    Taken,
    /// Let go: cancelled at the gateway, or found never made.
    Released,
    /// The gateway did not answer definitely: tried again next pass.
    GatewayUnavailable,
}

/// The stored spelling of an abandon reason (`hold_intents.release_reason`).
pub(crate) fn reason_name(reason: AbandonReason) -> &'static str {
    match reason {
        AbandonReason::StartRefused => "start_refused",
        AbandonReason::NotTaken => "not_taken",
        AbandonReason::UnknownToVelka => "unknown_to_velka",
    }
}

fn reason_of(intent: &HoldIntent) -> AbandonReason {
    match intent.release_reason.as_deref() {
        Some("start_refused") => AbandonReason::StartRefused,
        _ => AbandonReason::NotTaken,
    }
}

/// Lets go of the hold noted in `intent` for `reason` (see the module documentation), unless a
/// trip took it.
pub(crate) async fn let_go(
    payments: &Payments,
    intent: &HoldIntent,
    reason: AbandonReason,
) -> Result<Settled, PaymentsError> {
    let pool = payments.pool();
    intents::release_now(pool, &intent.hold_key, reason_name(reason), payments.now()).await?;
    let abandoned = decide(
        payments.store(),
        AccountId::Customer(intent.customer()),
        &AccountCommand::AbandonHold(HoldToAbandon {
            key: intent.hold_key.clone(),
            payment_id: None,
            trip_id: Some(intent.trip()),
            amount_kopecks: intent.amount(),
            reason,
        }),
        payments.now(),
    )
    .await?;
    match abandoned {
        Ok(_) => {}
        Err(domain::Rejection::HoldTaken { .. }) => {
            intents::taken(pool, &intent.hold_key).await?;
            return Ok(Settled::Taken);
        }
        Err(other) => return Err(other.into()),
    }
    event_store::crash::point("release.after_abandon");
    match ask(payments, intent).await {
        Asked::Held(payment_id) => {
            let release_key = format!("release-{}", intent.hold_key);
            match payments.gateway().cancel(&payment_id, &release_key).await {
                Ok(_) => {}
                Err(GatewayError::Unavailable(reason)) => {
                    tracing::debug!(key = %intent.hold_key, %reason, "a hold's cancel got no answer; next pass");
                    return Ok(Settled::GatewayUnavailable);
                }
                Err(GatewayError::Refused { code, description }) => {
                    // Cancelled already, or (never for a hold no trip took) captured: read it.
                    let payment = match payments.gateway().payment(&payment_id).await {
                        Ok(payment) => payment,
                        Err(_) => return Ok(Settled::GatewayUnavailable),
                    };
                    if payment.status == crate::gateway::PaymentStatus::WaitingForCapture
                        || code == RefusalCode::IdempotenceKeyConflict
                    {
                        tracing::error!(key = %intent.hold_key, %payment_id, code = code.as_str(),
                            %description, "the gateway refused to cancel an abandoned hold");
                        return Ok(Settled::GatewayUnavailable);
                    }
                }
            }
        }
        // Nothing is held for the key.
        Asked::Declined(_) | Asked::Settled(_) => {}
        Asked::Unavailable(reason) => {
            tracing::debug!(key = %intent.hold_key, %reason, "a hold to let go got no answer; next pass");
            return Ok(Settled::GatewayUnavailable);
        }
    }
    event_store::crash::point("release.after_cancel");
    intents::mark_released(pool, &intent.hold_key, payments.now()).await?;
    metrics::counter!("velka_holds_released_total", "reason" => reason_name(reason)).increment(1);
    Ok(Settled::Released)
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepPass {
    /// Holds cancelled at the gateway (or found never made).
    pub released: usize,
    /// Intents cleared because a trip holds the hold.
    pub taken: usize,
    /// Holds the gateway did not answer for; tried again next pass.
    pub failed: usize,
}

/// Settles due hold intents, every `poll`.
#[derive(Debug)]
pub struct HoldSweeper {
    payments: Payments,
    poll: Duration,
}

impl HoldSweeper {
    /// A sweeper of `payments`' intents.
    pub fn new(payments: Payments) -> Self {
        Self {
            payments,
            poll: DEFAULT_POLL,
        }
    }

    /// Looks every `poll` instead of the default.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Runs passes until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "hold sweep failed; retrying");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Settles the due intents (up to a batch).
    pub async fn pass(&self) -> Result<SweepPass, PaymentsError> {
        let mut pass = SweepPass::default();
        let pool = self.payments.pool();
        let now = self.payments.now();
        intents::forget_released(pool, now).await?;
        let due = intents::due(pool, now, BATCH).await?;
        metrics::gauge!("velka_hold_intents_due").set(due.len() as f64);
        for intent in due {
            match let_go(&self.payments, &intent, reason_of(&intent)).await {
                Ok(Settled::Taken) => pass.taken += 1,
                Ok(Settled::Released) => pass.released += 1,
                Ok(Settled::GatewayUnavailable) => pass.failed += 1,
                // One hold that cannot be settled must not hold back the others.
                Err(error) => {
                    tracing::warn!(key = %intent.hold_key, %error, "a due hold could not be settled; next pass");
                    pass.failed += 1;
                }
            }
        }
        Ok(pass)
    }
}
