//! How customer events change what we know about the customer.

use super::{CustomerEvent, CustomerState, VerificationStatus};

pub(super) fn evolve(mut state: CustomerState, event: &CustomerEvent) -> CustomerState {
    match event {
        CustomerEvent::CustomerRegistered { profile, .. } => {
            state.profile = Some(profile.clone());
            state.verification = VerificationStatus::Pending;
        }
        CustomerEvent::CustomerVerified { .. } => state.verification = VerificationStatus::Verified,
        CustomerEvent::CustomerVerificationRejected { .. } => {
            state.verification = VerificationStatus::Rejected;
        }
        CustomerEvent::CustomerBlocked { reason, .. } => {
            state.blocks.insert(*reason);
        }
        CustomerEvent::CustomerUnblocked { reason, .. } => {
            state.blocks.remove(reason);
        }
    }
    state
}
