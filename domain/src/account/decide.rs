//! Account rules: what may be charged, refunded and waived.

use super::{
    AccountCommand, AccountContext, AccountEvent, AccountState, ChargeState, MAX_AMOUNT, NewCharge,
};
use crate::money::Kopecks;
use crate::rejection::{FieldError, Rejection};

pub(super) fn decide(
    state: &AccountState,
    command: &AccountCommand,
    context: &AccountContext,
) -> Result<Vec<AccountEvent>, Rejection> {
    let account_id = context.account_id;
    let now = context.now;
    let charge_of = |charge_id| -> Result<&ChargeState, Rejection> {
        state.charge(charge_id).ok_or(Rejection::ChargeNotFound {
            account_id,
            charge_id,
        })
    };
    match command {
        AccountCommand::AddCharge(charge) => {
            check_new_charge(state, charge)?;
            Ok(vec![AccountEvent::ChargeAdded {
                account_id,
                charge_id: charge.charge_id,
                reason: charge.reason,
                source: charge.source,
                amount_kopecks: charge.amount_kopecks,
                customer_id: charge.customer_id,
                added_at: now,
            }])
        }
        AccountCommand::Refund {
            charge_id,
            refund_id,
            amount_kopecks,
            reason,
        } => {
            let charge = charge_of(*charge_id)?;
            check_amount(*amount_kopecks)?;
            let reason = required_reason(reason)?;
            let refundable = charge.refundable_kopecks();
            if *amount_kopecks > refundable {
                return Err(Rejection::RefundExceedsRefundable {
                    charge_id: *charge_id,
                    requested_kopecks: amount_kopecks.get(),
                    refundable_kopecks: refundable.get(),
                });
            }
            Ok(vec![AccountEvent::ChargeRefunded {
                charge_id: *charge_id,
                refund_id: *refund_id,
                amount_kopecks: *amount_kopecks,
                reason,
                refunded_at: now,
            }])
        }
        AccountCommand::Waive { charge_id, reason } => {
            let charge = charge_of(*charge_id)?;
            let reason = required_reason(reason)?;
            let open = charge.open_kopecks();
            if open <= Kopecks::ZERO {
                return Err(Rejection::NothingToWaive {
                    charge_id: *charge_id,
                });
            }
            Ok(vec![AccountEvent::ChargeWaived {
                charge_id: *charge_id,
                amount_kopecks: open,
                reason,
                waived_at: now,
            }])
        }
        AccountCommand::Record(fact) => super::payments::record(state, fact, now),
        AccountCommand::AbandonHold(hold) => super::payments::abandon(state, hold, now),
    }
}

fn check_new_charge(state: &AccountState, charge: &NewCharge) -> Result<(), Rejection> {
    check_amount(charge.amount_kopecks)?;
    if !charge.reason.fits(&charge.source) {
        return Err(FieldError::new(
            "reason",
            format!(
                "a {} charge cannot come from a {}",
                charge.reason.as_str(),
                charge.source.kind()
            ),
        )
        .into());
    }
    if state.charges.contains_key(&charge.charge_id) {
        return Err(Rejection::ChargeAlreadyAdded {
            charge_id: charge.charge_id,
        });
    }
    // One charge per cause and reason: a retried trip end or a re-run saga step must not bill
    // the same thing twice, even under a fresh charge id.
    if let Some(earlier) = state
        .charges
        .values()
        .find(|c| c.source == charge.source && c.reason == charge.reason)
    {
        return Err(Rejection::SourceAlreadyCharged {
            source_kind: charge.source.kind().to_owned(),
            source_id: charge.source.id(),
            reason: charge.reason.as_str().to_owned(),
            charge_id: earlier.charge_id,
        });
    }
    Ok(())
}

fn check_amount(amount: Kopecks) -> Result<(), Rejection> {
    super::positive_amount("amount_kopecks", amount.get())?;
    debug_assert!(amount <= MAX_AMOUNT);
    Ok(())
}

fn required_reason(reason: &str) -> Result<String, Rejection> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(
            FieldError::new("reason", "must say why, for the customer and the record").into(),
        );
    }
    if reason.chars().count() > 1_000 {
        return Err(FieldError::new("reason", "must be at most 1000 characters").into());
    }
    Ok(reason.to_owned())
}
