//! Payment facts: what the payment gateway did for an account, and the steps of collecting a
//! debt, as the payment saga records them.
//!
//! A fact is true because it happened outside (the gateway answered), so recording it checks
//! only its shape — the charge or hold it names exists, amounts are positive — never whether the
//! amount "should" have been taken: an over-payment is recorded and then given back. Every fact
//! carries the idempotence `key` of the gateway operation (or notice) it reports; a fact whose
//! key the account already holds records nothing, so a saga step retried after a crash cannot
//! count money twice.
//!
//! A hold made at a trip's start that no trip took is *abandoned* ([`abandon`]) before the
//! gateway is asked to cancel it: from then on its key can no longer be taken by a start retried
//! with it ([`check_hold_key`]), and a hold a trip took cannot be abandoned. The account's
//! stream version orders the two, so a retried start and the release of its hold never both win.

use super::{AccountEvent, AccountState, ChargeId, positive_amount};
use crate::ids::TripId;
use crate::money::Kopecks;
use crate::rejection::{FieldError, Rejection};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the payment saga reports. Gateway ids are the gateway's own text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaymentFact {
    /// Money was held for a trip's start.
    Held {
        trip_id: TripId,
        payment_id: String,
        amount_kopecks: i64,
        key: String,
    },
    /// A trip's hold was cancelled.
    HoldReleased {
        trip_id: TripId,
        payment_id: String,
        key: String,
    },
    /// Money was taken for a charge.
    Captured {
        charge_id: ChargeId,
        payment_id: String,
        amount_kopecks: i64,
        key: String,
    },
    /// The gateway refused to take money for a charge.
    Failed {
        charge_id: ChargeId,
        reason: String,
        key: String,
    },
    /// Money taken for a charge went back to the card.
    Refunded {
        charge_id: ChargeId,
        payment_id: String,
        gateway_refund_id: String,
        amount_kopecks: i64,
        key: String,
    },
    /// The customer was told about a debt.
    NoticeSent {
        charge_id: ChargeId,
        notice: DebtNotice,
        message: String,
        key: String,
    },
    /// The debt on a charge went to a collection agency.
    HandedToAgency {
        charge_id: ChargeId,
        amount_kopecks: i64,
        key: String,
    },
}

impl PaymentFact {
    /// The fact's idempotence key.
    pub fn key(&self) -> &str {
        match self {
            Self::Held { key, .. }
            | Self::HoldReleased { key, .. }
            | Self::Captured { key, .. }
            | Self::Failed { key, .. }
            | Self::Refunded { key, .. }
            | Self::NoticeSent { key, .. }
            | Self::HandedToAgency { key, .. } => key,
        }
    }
}

/// Which notice of debt collection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DebtNotice {
    /// A payment failed: there is a debt, and the account is blocked until it is paid.
    Opened,
    /// A retry failed too.
    Reminder,
    /// The debt went to a collection agency.
    HandedToAgency,
    /// The debt was paid; the block is lifted.
    Paid,
    /// Support forgave the debt; the block is lifted.
    Waived,
}

/// Why a hold was let go without a trip.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AbandonReason {
    /// The start it was made for was refused for good (the car was taken meanwhile, the
    /// customer blocked): no retry will take it.
    StartRefused,
    /// No start took it within the grace period left for the app's retry.
    NotTaken,
    /// The gateway holds it, but nothing Velka recorded made it (found by the reconciler).
    UnknownToVelka,
}

/// A hold to let go: what [`AccountCommand::AbandonHold`](super::AccountCommand) carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HoldToAbandon {
    /// The idempotence key it was made with (or `payment:<id>` for a hold found without one).
    pub key: String,
    /// The gateway's payment, when known.
    pub payment_id: Option<String>,
    /// The start it was made for, when known.
    pub trip_id: Option<TripId>,
    pub amount_kopecks: Kopecks,
    pub reason: AbandonReason,
}

/// A hold on the customer's card for a trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HoldState {
    pub payment_id: String,
    /// The idempotence key it was made with.
    pub key: String,
    pub amount_kopecks: Kopecks,
    /// Captured (all or part; the rest is released by the gateway) or cancelled.
    pub closed: bool,
}

/// A key must be short printable text: it is also the gateway's `Idempotence-Key`.
fn check_key(key: &str) -> Result<(), Rejection> {
    if key.is_empty() || key.len() > 200 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FieldError::new("key", "must be 1 to 200 printable ASCII characters").into());
    }
    Ok(())
}

fn check_text(field: &str, text: &str) -> Result<(), Rejection> {
    if text.trim().is_empty() || text.chars().count() > 1_000 {
        return Err(FieldError::new(field, "must be 1 to 1000 characters").into());
    }
    Ok(())
}

/// Whether a trip may take the hold made with `key`: not once it was let go.
pub fn check_hold_key(state: &AccountState, key: &str) -> Result<(), Rejection> {
    if state.abandoned_holds.contains(key) {
        return Err(Rejection::HoldReleased {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// Decides letting go of a hold no trip took: refused when a trip holds it, nothing when it was
/// let go before.
pub(super) fn abandon(
    state: &AccountState,
    hold: &HoldToAbandon,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, Rejection> {
    check_key(&hold.key)?;
    if let Some(payment_id) = &hold.payment_id {
        check_text("payment_id", payment_id)?;
    }
    let taken = state
        .holds
        .values()
        .any(|held| held.key == hold.key || hold.payment_id.as_ref() == Some(&held.payment_id));
    if taken {
        return Err(Rejection::HoldTaken {
            key: hold.key.clone(),
        });
    }
    if state.abandoned_holds.contains(&hold.key) {
        return Ok(Vec::new());
    }
    Ok(vec![AccountEvent::HoldAbandoned {
        key: hold.key.clone(),
        payment_id: hold.payment_id.clone(),
        trip_id: hold.trip_id,
        amount_kopecks: positive_amount("amount_kopecks", hold.amount_kopecks.get())?,
        reason: hold.reason,
        abandoned_at: now,
    }])
}

/// Decides a payment fact: the event recording it, nothing for a repeated key.
pub(super) fn record(
    state: &AccountState,
    fact: &PaymentFact,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, Rejection> {
    check_key(fact.key())?;
    if state.recorded_keys.contains(fact.key()) {
        return Ok(Vec::new());
    }
    let account_id = state.account_id;
    let charge = |charge_id: ChargeId| -> Result<(), Rejection> {
        if state.charges.contains_key(&charge_id) {
            Ok(())
        } else {
            Err(Rejection::ChargeNotFound {
                account_id: account_id.unwrap_or(super::AccountId::Customer(
                    crate::ids::CustomerId(uuid::Uuid::nil()),
                )),
                charge_id,
            })
        }
    };
    let key = fact.key().to_owned();
    let event = match fact {
        PaymentFact::Held {
            trip_id,
            payment_id,
            amount_kopecks,
            ..
        } => {
            check_text("payment_id", payment_id)?;
            check_hold_key(state, &key)?;
            if state.holds.contains_key(trip_id) {
                return Err(FieldError::new("trip_id", "the trip already has a hold").into());
            }
            AccountEvent::PaymentHeld {
                trip_id: *trip_id,
                payment_id: payment_id.clone(),
                amount_kopecks: positive_amount("amount_kopecks", *amount_kopecks)?,
                key,
                held_at: now,
            }
        }
        PaymentFact::HoldReleased {
            trip_id,
            payment_id,
            ..
        } => {
            match state.holds.get(trip_id) {
                Some(hold) if hold.payment_id == *payment_id => {}
                _ => {
                    return Err(
                        FieldError::new("payment_id", "is not the hold of this trip").into(),
                    );
                }
            }
            AccountEvent::HoldReleased {
                trip_id: *trip_id,
                payment_id: payment_id.clone(),
                key,
                released_at: now,
            }
        }
        PaymentFact::Captured {
            charge_id,
            payment_id,
            amount_kopecks,
            ..
        } => {
            charge(*charge_id)?;
            check_text("payment_id", payment_id)?;
            AccountEvent::PaymentCaptured {
                charge_id: *charge_id,
                payment_id: payment_id.clone(),
                amount_kopecks: positive_amount("amount_kopecks", *amount_kopecks)?,
                key,
                captured_at: now,
            }
        }
        PaymentFact::Failed {
            charge_id, reason, ..
        } => {
            charge(*charge_id)?;
            check_text("reason", reason)?;
            AccountEvent::PaymentFailed {
                charge_id: *charge_id,
                key,
                reason: reason.clone(),
                failed_at: now,
            }
        }
        PaymentFact::Refunded {
            charge_id,
            payment_id,
            gateway_refund_id,
            amount_kopecks,
            ..
        } => {
            charge(*charge_id)?;
            check_text("payment_id", payment_id)?;
            check_text("gateway_refund_id", gateway_refund_id)?;
            let amount = positive_amount("amount_kopecks", *amount_kopecks)?;
            let charge_state = &state.charges[charge_id];
            if amount > charge_state.paid_kopecks() {
                return Err(FieldError::new(
                    "amount_kopecks",
                    format!(
                        "must be at most what was taken and kept, {} kopecks",
                        charge_state.paid_kopecks().get()
                    ),
                )
                .into());
            }
            AccountEvent::PaymentRefunded {
                charge_id: *charge_id,
                payment_id: payment_id.clone(),
                gateway_refund_id: gateway_refund_id.clone(),
                amount_kopecks: amount,
                key,
                refunded_at: now,
            }
        }
        PaymentFact::NoticeSent {
            charge_id,
            notice,
            message,
            ..
        } => {
            charge(*charge_id)?;
            check_text("message", message)?;
            AccountEvent::DebtNoticeSent {
                charge_id: *charge_id,
                notice: *notice,
                message: message.clone(),
                key,
                sent_at: now,
            }
        }
        PaymentFact::HandedToAgency {
            charge_id,
            amount_kopecks,
            ..
        } => {
            charge(*charge_id)?;
            AccountEvent::DebtHandedToAgency {
                charge_id: *charge_id,
                amount_kopecks: positive_amount("amount_kopecks", *amount_kopecks)?,
                key,
                handed_at: now,
            }
        }
    };
    Ok(vec![event])
}

/// How a payment fact's event changes the account.
pub(super) fn evolve(state: &mut AccountState, event: &AccountEvent) {
    let key = match event {
        AccountEvent::PaymentHeld {
            trip_id,
            payment_id,
            amount_kopecks,
            key,
            ..
        } => {
            state.holds.insert(
                *trip_id,
                HoldState {
                    payment_id: payment_id.clone(),
                    key: key.clone(),
                    amount_kopecks: *amount_kopecks,
                    closed: false,
                },
            );
            key
        }
        AccountEvent::HoldAbandoned { key, .. } => {
            state.abandoned_holds.insert(key.clone());
            return;
        }
        AccountEvent::HoldReleased { trip_id, key, .. } => {
            if let Some(hold) = state.holds.get_mut(trip_id) {
                hold.closed = true;
            }
            key
        }
        AccountEvent::PaymentCaptured {
            charge_id,
            payment_id,
            amount_kopecks,
            key,
            ..
        } => {
            if let Some(charge) = state.charges.get_mut(charge_id) {
                charge.captured_kopecks += *amount_kopecks;
            }
            for hold in state.holds.values_mut() {
                if hold.payment_id == *payment_id {
                    hold.closed = true;
                }
            }
            key
        }
        AccountEvent::PaymentFailed { charge_id, key, .. } => {
            if let Some(charge) = state.charges.get_mut(charge_id) {
                charge.payment_failed = true;
            }
            key
        }
        AccountEvent::PaymentRefunded {
            charge_id,
            amount_kopecks,
            key,
            ..
        } => {
            if let Some(charge) = state.charges.get_mut(charge_id) {
                charge.returned_kopecks += *amount_kopecks;
            }
            key
        }
        AccountEvent::DebtNoticeSent { key, .. } => key,
        AccountEvent::DebtHandedToAgency { charge_id, key, .. } => {
            if let Some(charge) = state.charges.get_mut(charge_id) {
                charge.handed_to_agency = true;
            }
            key
        }
        AccountEvent::ChargeAdded { .. }
        | AccountEvent::ChargeRefunded { .. }
        | AccountEvent::ChargeWaived { .. } => return,
    };
    state.recorded_keys.insert(key.clone());
}
