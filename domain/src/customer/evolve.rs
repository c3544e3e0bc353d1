//! How customer events change what we know about the customer.

use super::{CustomerEvent, CustomerState, VerificationStatus};

pub(super) fn evolve(mut state: CustomerState, event: &CustomerEvent) -> CustomerState {
    match event {
        CustomerEvent::CustomerRegistered { profile, .. } => {
            state.profile = Some(profile.clone());
            state.verification = VerificationStatus::Pending;
        }
        CustomerEvent::CustomerVerified { .. } => {
            state.verification = VerificationStatus::Verified;
            state.manual_review = None;
        }
        CustomerEvent::CustomerVerificationRejected { .. } => {
            state.verification = VerificationStatus::Rejected;
            state.manual_review = None;
        }
        CustomerEvent::CustomerBlocked { reason, .. } => {
            state.blocks.insert(*reason);
        }
        CustomerEvent::CustomerUnblocked { reason, .. } => {
            state.blocks.remove(reason);
        }
        CustomerEvent::KycDocumentsSubmitted { documents, .. } => {
            if let Some(profile) = state.profile.as_mut() {
                profile.birth_date = documents.birth_date;
                profile.licence = documents.licence.clone();
            }
            state.documents = Some(documents.clone());
            state.verification = VerificationStatus::Pending;
            state.manual_review = None;
        }
        CustomerEvent::KycCheckCompleted { check_id, .. } => {
            state.kyc_checks.insert(check_id.clone());
        }
        CustomerEvent::KycManualReviewRequested { reason, .. } => {
            state.manual_review = Some(reason.clone());
        }
        CustomerEvent::CustomerNotified { .. } => {}
        CustomerEvent::CustomerErased { erased_at, .. } => {
            state.erased_at = Some(*erased_at);
        }
        CustomerEvent::CustomerJoinedCompany { company_id, .. } => {
            state.company_id = Some(*company_id);
        }
        CustomerEvent::CustomerLeftCompany { .. } => state.company_id = None,
    }
    state
}
