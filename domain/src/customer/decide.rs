//! Customer rules.

use super::{
    CustomerCommand, CustomerContext, CustomerEvent, CustomerProfile, CustomerState,
    VerificationDecision, VerificationStatus,
};
use crate::rejection::{FieldError, Rejection};

pub(super) fn decide(
    state: &CustomerState,
    command: &CustomerCommand,
    context: &CustomerContext,
) -> Result<Vec<CustomerEvent>, Rejection> {
    let customer_id = context.customer_id;
    let now = context.now;
    let registered = || -> Result<&CustomerProfile, Rejection> {
        state
            .profile
            .as_ref()
            .ok_or(Rejection::CustomerNotFound { customer_id })
    };
    match command {
        CustomerCommand::Register(profile) => {
            if state.is_registered() {
                return Err(Rejection::CustomerAlreadyRegistered { customer_id });
            }
            // The profile is appended to this customer's stream; another id in it would file one
            // person's registration under someone else's history.
            if profile.customer_id != customer_id {
                return Err(FieldError::new(
                    "customer_id",
                    "must be the id of the customer being registered",
                )
                .into());
            }
            if profile.birth_date >= now.date_naive() {
                return Err(FieldError::new("birth_date", "must be in the past").into());
            }
            Ok(vec![CustomerEvent::CustomerRegistered {
                profile: profile.clone(),
                registered_at: now,
            }])
        }
        CustomerCommand::DecideVerification(VerificationDecision::Approved) => {
            let profile = registered()?;
            if state.verification == VerificationStatus::Verified {
                return Err(Rejection::VerificationUnchanged {
                    customer_id,
                    status: VerificationStatus::Verified.as_str().to_owned(),
                });
            }
            if !profile.licence.is_valid_on(now.date_naive()) {
                return Err(Rejection::LicenceExpired {
                    customer_id,
                    expired_on: profile.licence.expires_on,
                });
            }
            Ok(vec![CustomerEvent::CustomerVerified {
                customer_id,
                verified_at: now,
            }])
        }
        CustomerCommand::DecideVerification(VerificationDecision::Rejected { reason }) => {
            registered()?;
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(
                    FieldError::new("reason", "is required when the decision is rejected").into(),
                );
            }
            if state.verification == VerificationStatus::Rejected {
                return Err(Rejection::VerificationUnchanged {
                    customer_id,
                    status: VerificationStatus::Rejected.as_str().to_owned(),
                });
            }
            Ok(vec![CustomerEvent::CustomerVerificationRejected {
                customer_id,
                reason: reason.to_owned(),
                rejected_at: now,
            }])
        }
        CustomerCommand::Block { reason, note } => {
            registered()?;
            if state.blocks.contains(reason) {
                return Err(Rejection::BlockUnchanged {
                    customer_id,
                    reason: reason.as_str().to_owned(),
                });
            }
            Ok(vec![CustomerEvent::CustomerBlocked {
                customer_id,
                reason: *reason,
                note: note.trim().to_owned(),
                blocked_at: now,
            }])
        }
        CustomerCommand::Unblock { reason } => {
            registered()?;
            if !state.blocks.contains(reason) {
                return Err(Rejection::BlockUnchanged {
                    customer_id,
                    reason: reason.as_str().to_owned(),
                });
            }
            Ok(vec![CustomerEvent::CustomerUnblocked {
                customer_id,
                reason: *reason,
                unblocked_at: now,
            }])
        }
    }
}
