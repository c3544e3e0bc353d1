//! Settling a card hold no trip took: asking the gateway for a key's hold ([`ask`], the same
//! request its first try sent) and letting it go ([`let_go`]). The start (when its refusal is
//! final) and the sweeper (when a hold's grace period has passed) both settle through here.
//!
//! Letting go ([`let_go`]) goes in an order that a crash can interrupt anywhere:
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
use crate::gateway::{GatewayError, HOLD_KEY_METADATA, NewPayment, PaymentStatus, RefusalCode};
use crate::intents::{self, HoldIntent};
use crate::{Payments, PaymentsError};
use domain::account::{AbandonReason, AccountCommand, AccountId, HoldToAbandon};
use serde_json::json;

/// What asking the gateway for a key's hold gave.
#[derive(Debug)]
pub(crate) enum Asked {
    /// The hold, made now or by an earlier request with the key.
    Held(String),
    /// The card was declined: nothing is held for the key.
    Declined(String),
    /// The key's payment holds nothing any more (cancelled or captured).
    Settled(PaymentStatus),
    /// No definite answer.
    Unavailable(String),
}

/// Asks the gateway for the hold noted in `intent`: exactly the request its first try sent, so
/// the gateway answers with the hold it made under the key (or makes it, if the first request
/// never reached it). One quick retry: a lost answer is the commonest failure.
pub(crate) async fn ask(payments: &Payments, intent: &HoldIntent) -> Asked {
    let customer_ref = intent.customer_id.to_string();
    let description = format!("Trip hold {}", intent.hold_key);
    let request = NewPayment {
        key: &intent.hold_key,
        amount: intent.amount(),
        customer_ref: &customer_ref,
        description: &description,
        capture: false,
        metadata: intent
            .with_metadata
            .then(|| json!({ HOLD_KEY_METADATA: intent.hold_key })),
    };
    let mut last = String::new();
    for _ in 0..2 {
        match payments.gateway().create_payment(&request).await {
            Ok(payment) => {
                if let Some(reason) = payment.declined() {
                    return Asked::Declined(reason.as_str().to_owned());
                }
                return match payment.status {
                    PaymentStatus::WaitingForCapture => Asked::Held(payment.id),
                    PaymentStatus::Pending => Asked::Unavailable(format!(
                        "hold {} is still pending at the gateway",
                        payment.id
                    )),
                    status => Asked::Settled(status),
                };
            }
            Err(GatewayError::Refused { code, .. }) if code.is_decline() => {
                return Asked::Declined(code.as_str().to_owned());
            }
            // Anything else (a key reused with another request, an invalid amount) is Velka's
            // fault, not the customer's card: no definite answer about the hold.
            Err(GatewayError::Refused { code, description }) => {
                tracing::error!(key = %intent.hold_key, code = code.as_str(), %description,
                    "the gateway refused a hold request");
                return Asked::Unavailable(format!("{}: {description}", code.as_str()));
            }
            Err(GatewayError::Unavailable(reason)) => last = reason,
        }
    }
    Asked::Unavailable(last)
}

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
