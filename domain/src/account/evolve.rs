//! How account events change the charges and their sums.

use super::{AccountEvent, AccountState, ChargeState};

pub(super) fn evolve(mut state: AccountState, event: &AccountEvent) -> AccountState {
    match event {
        AccountEvent::ChargeAdded {
            account_id,
            charge_id,
            reason,
            source,
            amount_kopecks,
            customer_id,
            added_at,
        } => {
            state.account_id = Some(*account_id);
            state.charges.insert(
                *charge_id,
                ChargeState {
                    charge_id: *charge_id,
                    reason: *reason,
                    source: *source,
                    customer_id: *customer_id,
                    amount_kopecks: *amount_kopecks,
                    refunded_kopecks: Default::default(),
                    waived_kopecks: Default::default(),
                    captured_kopecks: Default::default(),
                    returned_kopecks: Default::default(),
                    payment_failed: false,
                    handed_to_agency: false,
                    added_at: *added_at,
                },
            );
        }
        AccountEvent::ChargeRefunded {
            charge_id,
            amount_kopecks,
            ..
        } => {
            if let Some(charge) = state.charges.get_mut(charge_id) {
                charge.refunded_kopecks += *amount_kopecks;
            }
        }
        AccountEvent::ChargeWaived {
            charge_id,
            amount_kopecks,
            ..
        } => {
            if let Some(charge) = state.charges.get_mut(charge_id) {
                charge.waived_kopecks += *amount_kopecks;
            }
        }
        _ => super::payments::evolve(&mut state, event),
    }
    // The decider only ever records refunds and waivers within the charge; a history that breaks
    // this was not written by it.
    debug_assert_eq!(state.check_invariants(), Ok(()), "after {event:?}");
    state
}
