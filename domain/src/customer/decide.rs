//! Customer rules.

use super::{
    CustomerCommand, CustomerContext, CustomerEvent, CustomerProfile, CustomerState, KycDocuments,
    KycOutcome, Notice, VerificationDecision, VerificationStatus,
};
use crate::ids::{CompanyId, CustomerId};
use crate::rejection::{FieldError, Rejection};
use chrono::{DateTime, NaiveDate, Utc};

/// The longest note a block or its lifting may carry.
const MAX_NOTE_CHARS: usize = 1000;

/// A block's note, trimmed and bounded.
fn note(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > MAX_NOTE_CHARS {
        return Err(FieldError::new(
            "note",
            format!("must be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

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
    // What needs the personal data (documents, a decision on them, erasing) is refused once it
    // is erased; blocks, notices and the provider's late answers still concern the customer.
    let not_erased = || -> Result<&CustomerProfile, Rejection> {
        let profile = registered()?;
        match state.erased_at {
            Some(_) => Err(Rejection::CustomerErased { customer_id }),
            None => Ok(profile),
        }
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
            let profile = not_erased()?;
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
            context.kyc.check(
                customer_id,
                profile.birth_date,
                &profile.licence,
                now.date_naive(),
            )?;
            Ok(vec![CustomerEvent::CustomerVerified {
                customer_id,
                verified_at: now,
            }])
        }
        CustomerCommand::DecideVerification(VerificationDecision::Rejected { reason }) => {
            not_erased()?;
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
                note: self::note(note)?,
                blocked_at: now,
            }])
        }
        CustomerCommand::Unblock { reason, note } => {
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
                note: self::note(note)?,
                unblocked_at: now,
            }])
        }
        CustomerCommand::SubmitDocuments(documents) => {
            not_erased()?;
            check_document_dates(documents, now.date_naive())?;
            if !documents.licence_categories.includes_cars() {
                return Err(FieldError::new(
                    "licence.categories",
                    "must include B: only a category B licence allows driving a car",
                )
                .into());
            }
            Ok(vec![CustomerEvent::KycDocumentsSubmitted {
                customer_id,
                documents: documents.clone(),
                submitted_at: now,
            }])
        }
        CustomerCommand::JoinCompany { company_id } => {
            join_company(state, customer_id, *company_id, now)
        }
        CustomerCommand::LeaveCompany { company_id } => {
            leave_company(state, customer_id, *company_id, now)
        }
        CustomerCommand::RecordKycCheck {
            check_id,
            reference,
            outcome,
            reason,
        } => {
            registered()?;
            let check_id = check_id.trim();
            if check_id.is_empty() || check_id.chars().count() > 200 {
                return Err(FieldError::new("check_id", "must be 1 to 200 characters").into());
            }
            // The provider calls back at least once: the second time is not news.
            if state.kyc_checks.contains(check_id) {
                return Ok(Vec::new());
            }
            let reason = match reason.as_deref().map(str::trim) {
                Some(reason) if reason.chars().count() > MAX_NOTE_CHARS => {
                    return Err(FieldError::new(
                        "reason",
                        format!("must be at most {MAX_NOTE_CHARS} characters"),
                    )
                    .into());
                }
                Some("") | None => None,
                Some(reason) => Some(reason.to_owned()),
            };
            // A rejection must be explained to the customer.
            if *outcome == KycOutcome::Rejected && reason.is_none() {
                return Err(
                    FieldError::new("reason", "is required when the outcome is rejected").into(),
                );
            }
            Ok(vec![CustomerEvent::KycCheckCompleted {
                customer_id,
                check_id: check_id.to_owned(),
                reference: reference.clone(),
                outcome: *outcome,
                reason,
                completed_at: now,
            }])
        }
        CustomerCommand::Erase { reason, by } => {
            not_erased()?;
            let reason = self::note(reason).map_err(|e| FieldError::new("reason", e.message))?;
            if reason.is_empty() {
                return Err(FieldError::new("reason", "must say why the data is erased").into());
            }
            Ok(vec![CustomerEvent::CustomerErased {
                customer_id,
                reason,
                erased_by: by.clone(),
                erased_at: now,
            }])
        }
        CustomerCommand::RequestManualReview { reason } => {
            registered()?;
            let reason = self::note(reason).map_err(|e| FieldError::new("reason", e.message))?;
            if reason.is_empty() {
                return Err(FieldError::new("reason", "must say why a person must look").into());
            }
            if state.verification != VerificationStatus::Pending {
                return Err(Rejection::VerificationUnchanged {
                    customer_id,
                    status: state.verification.as_str().to_owned(),
                });
            }
            if state.manual_review.is_some() {
                return Err(Rejection::VerificationUnchanged {
                    customer_id,
                    status: "manual_review".to_owned(),
                });
            }
            Ok(vec![CustomerEvent::KycManualReviewRequested {
                customer_id,
                reason,
                requested_at: now,
            }])
        }
    }
}

/// Tells a registered customer something (a notice recorded on their stream).
pub fn notify(
    state: &CustomerState,
    customer_id: CustomerId,
    notice: Notice,
    now: DateTime<Utc>,
) -> Result<Vec<CustomerEvent>, Rejection> {
    if !state.is_registered() {
        return Err(Rejection::CustomerNotFound { customer_id });
    }
    Ok(vec![CustomerEvent::CustomerNotified {
        customer_id,
        notice,
        notified_at: now,
    }])
}

/// Dates that cannot be true of real documents: the future, or before the holder was born.
fn check_document_dates(documents: &KycDocuments, today: NaiveDate) -> Result<(), FieldError> {
    let birth_date = documents.birth_date;
    if birth_date >= today {
        return Err(FieldError::new("birth_date", "must be in the past"));
    }
    let issued = [
        ("passport.issued_on", documents.passport.issued_on),
        ("licence.issued_on", documents.licence.issued_on),
    ];
    for (field, issued_on) in issued {
        if issued_on > today {
            return Err(FieldError::new(field, "must not be in the future"));
        }
        if issued_on <= birth_date {
            return Err(FieldError::new(field, "must be after birth_date"));
        }
    }
    Ok(())
}

/// The customer's side of being taken on by a company: they must be registered and belong to
/// no company yet (a customer's trips are billed to at most one company).
pub fn join_company(
    state: &CustomerState,
    customer_id: CustomerId,
    company_id: CompanyId,
    now: DateTime<Utc>,
) -> Result<Vec<CustomerEvent>, Rejection> {
    if !state.is_registered() {
        return Err(Rejection::CustomerNotFound { customer_id });
    }
    match state.company_id {
        Some(current) if current == company_id => Err(Rejection::CustomerAlreadyEmployee {
            customer_id,
            company_id,
        }),
        Some(current) => Err(Rejection::CustomerInAnotherCompany {
            customer_id,
            company_id: current,
        }),
        None => Ok(vec![CustomerEvent::CustomerJoinedCompany {
            customer_id,
            company_id,
            joined_at: now,
        }]),
    }
}

/// The customer's side of leaving a company: they must be its employee.
pub fn leave_company(
    state: &CustomerState,
    customer_id: CustomerId,
    company_id: CompanyId,
    now: DateTime<Utc>,
) -> Result<Vec<CustomerEvent>, Rejection> {
    if !state.is_registered() {
        return Err(Rejection::CustomerNotFound { customer_id });
    }
    if state.company_id != Some(company_id) {
        return Err(Rejection::CustomerNotEmployee {
            customer_id,
            company_id,
        });
    }
    Ok(vec![CustomerEvent::CustomerLeftCompany {
        customer_id,
        company_id,
        left_at: now,
    }])
}
