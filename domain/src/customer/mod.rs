//! The customer: who they are, whether support has verified them, and whether anything blocks
//! them from renting.

mod decide;
pub mod documents;
mod evolve;
#[cfg(test)]
mod tests;

use crate::account::AccountId;
use crate::decider::{Decider, DomainEvent};
use crate::ids::{CompanyId, CustomerId, FineId, TripId};
use crate::money::Kopecks;
use crate::rejection::Rejection;
use crate::value::{Email, Licence, PersonName, Phone};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub use decide::{join_company, leave_company, notify};
pub use documents::{KycDocuments, KycPolicy, LicenceCategories, Passport};

/// The customer decider.
#[derive(Debug)]
pub struct Customer;

/// What a customer's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CustomerState {
    /// The registration, or `None` before the customer registered.
    pub profile: Option<CustomerProfile>,
    /// Support's decision on the customer's documents.
    pub verification: VerificationStatus,
    /// Active blocks. A customer may rent only when this is empty; each reason is lifted on its own.
    pub blocks: BTreeSet<BlockReason>,
    /// The KYC documents last submitted, if any. Their birth date and licence have replaced the
    /// registration's in `profile`, which is what the rules read.
    pub documents: Option<KycDocuments>,
    /// The company the customer is an employee of (B2B), if any; at most one at a time. Trip
    /// billing routes the charge of a trip to this company instead of the customer's own card:
    /// read it from the customer's state folded when the trip ends.
    pub company_id: Option<CompanyId>,
    /// Why the documents await a person's review (the KYC provider asked for it, or did not
    /// answer in time), while they do: cleared by a decision or new documents.
    pub manual_review: Option<String>,
    /// The KYC provider's checks whose results are recorded, so a repeated callback records
    /// nothing.
    pub kyc_checks: BTreeSet<String>,
    /// When the customer's personal data was erased (152-FZ / GDPR), if it was. The events that
    /// carried it stay in the log, unreadable: the profile and documents folded from them hold
    /// placeholders and must not be used.
    pub erased_at: Option<DateTime<Utc>>,
}

impl CustomerState {
    /// Whether the customer has registered.
    pub fn is_registered(&self) -> bool {
        self.profile.is_some()
    }
}

/// The personal data given at registration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerProfile {
    /// The customer's id.
    pub customer_id: CustomerId,
    /// Full name.
    pub name: PersonName,
    /// Mobile phone, E.164.
    pub phone: Phone,
    /// E-mail address.
    pub email: Email,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Driving licence.
    pub licence: Licence,
}

/// Where a customer stands with verification.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// Registered, or documents (re)submitted, and not yet decided on.
    #[default]
    Pending,
    /// Support approved the documents: the customer may rent.
    Verified,
    /// Support rejected the documents.
    Rejected,
}

impl VerificationStatus {
    /// The status as a word, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Rejected => "rejected",
        }
    }
}

/// Why a customer is blocked. Reasons are independent: paying a debt lifts only `Debt`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// Unpaid debt.
    Debt,
    /// Suspected fraud.
    Fraud,
    /// Documents need attention (expired, under review).
    Documents,
    /// A support agent's decision.
    Support,
}

impl BlockReason {
    /// The reason as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debt => "debt",
            Self::Fraud => "fraud",
            Self::Documents => "documents",
            Self::Support => "support",
        }
    }
}

/// Support's decision on a customer's documents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum VerificationDecision {
    /// The documents are in order.
    Approved,
    /// The documents are not acceptable, and why.
    Rejected {
        /// Why, for the customer and the audit trail.
        reason: String,
    },
}

/// The KYC provider's verdict on a set of documents.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KycOutcome {
    /// The documents are genuine and match the person.
    Verified,
    /// They are not.
    Rejected,
    /// The provider cannot tell: a person must look.
    ManualReview,
}

impl KycOutcome {
    /// The outcome as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Rejected => "rejected",
            Self::ManualReview => "manual_review",
        }
    }
}

/// What a customer is told. Recorded on their stream, so support sees it in the customer 360.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// A traffic fine was matched to one of their trips and charged with its admin fee.
    FineCharged {
        fine_id: FineId,
        trip_id: TripId,
        resolution_number: String,
        occurred_at: DateTime<Utc>,
        amount_kopecks: Kopecks,
        admin_fee_kopecks: Kopecks,
        /// Who was charged (the company, for an employee's trip).
        account_id: AccountId,
    },
}

/// What can be asked of a customer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command")]
pub enum CustomerCommand {
    /// Self-registration from the app.
    Register(CustomerProfile),
    /// Support decides on the documents.
    DecideVerification(VerificationDecision),
    /// Put a block on the customer.
    Block {
        /// Which block.
        reason: BlockReason,
        /// Free text for the record.
        note: String,
    },
    /// Lift one block.
    Unblock {
        /// Which block.
        reason: BlockReason,
        /// Free text for the record.
        note: String,
    },
    /// The customer (or support on their behalf) submits KYC documents for review.
    SubmitDocuments(KycDocuments),
    /// A company took the customer on as an employee (decided together with the company).
    JoinCompany {
        /// Which company.
        company_id: CompanyId,
    },
    /// A company let the customer go.
    LeaveCompany {
        /// Which company.
        company_id: CompanyId,
    },
    /// Record the KYC provider's result of a check (its callback). A check already recorded
    /// records nothing.
    RecordKycCheck {
        /// The provider's id of the check.
        check_id: String,
        /// What Velka sent the check with (`<customer id>:<submission id>`).
        reference: String,
        outcome: KycOutcome,
        /// The provider's reason, if it gave one.
        reason: Option<String>,
    },
    /// Put the documents in front of a person (the provider asked for it, or did not answer).
    RequestManualReview {
        /// Why, for support.
        reason: String,
    },
    /// Erase the customer's personal data (152-FZ / GDPR): the edge destroys their key in the
    /// same transaction that records [`CustomerEvent::CustomerErased`].
    Erase {
        /// Why, for the auditors: the customer's request, a regulator's order.
        reason: String,
        /// Who erased (the support agent's actor).
        by: String,
    },
}

/// What happened to a customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CustomerEvent {
    /// The customer registered.
    CustomerRegistered {
        /// Profile as given.
        #[serde(flatten)]
        profile: CustomerProfile,
        /// When.
        registered_at: DateTime<Utc>,
    },
    /// Support approved the customer's documents.
    CustomerVerified {
        customer_id: CustomerId,
        verified_at: DateTime<Utc>,
    },
    /// Support rejected the customer's documents.
    CustomerVerificationRejected {
        customer_id: CustomerId,
        reason: String,
        rejected_at: DateTime<Utc>,
    },
    /// A block was put on the customer.
    CustomerBlocked {
        customer_id: CustomerId,
        reason: BlockReason,
        note: String,
        blocked_at: DateTime<Utc>,
    },
    /// A block was lifted.
    CustomerUnblocked {
        customer_id: CustomerId,
        reason: BlockReason,
        /// Why, for the record. Absent in events written before lifting took a note.
        #[serde(default)]
        note: String,
        unblocked_at: DateTime<Utc>,
    },
    /// The customer submitted KYC documents; verification is pending review again.
    KycDocumentsSubmitted {
        customer_id: CustomerId,
        #[serde(flatten)]
        documents: KycDocuments,
        submitted_at: DateTime<Utc>,
    },
    /// The customer became an employee of a company; their trips are billed to it.
    CustomerJoinedCompany {
        customer_id: CustomerId,
        company_id: CompanyId,
        joined_at: DateTime<Utc>,
    },
    /// The customer stopped being an employee of a company; their trips are their own again.
    CustomerLeftCompany {
        customer_id: CustomerId,
        company_id: CompanyId,
        left_at: DateTime<Utc>,
    },
    /// The KYC provider's result of a check of the customer's documents arrived. Not yet a
    /// decision: the KYC saga turns it into one.
    KycCheckCompleted {
        customer_id: CustomerId,
        check_id: String,
        /// `<customer id>:<submission id>`: the submission (event id of `KycDocumentsSubmitted`)
        /// the check was for, so a late result of an older submission is recognised.
        reference: String,
        outcome: KycOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        completed_at: DateTime<Utc>,
    },
    /// The documents await a person's review.
    KycManualReviewRequested {
        customer_id: CustomerId,
        reason: String,
        requested_at: DateTime<Utc>,
    },
    /// The customer's personal data was erased: their key is destroyed, so the personal fields of
    /// their earlier events no longer decrypt. Carries no personal data itself.
    CustomerErased {
        customer_id: CustomerId,
        /// Why, as support gave it.
        reason: String,
        /// Who erased.
        erased_by: String,
        erased_at: DateTime<Utc>,
    },
    /// The customer was told something (see [`Notice`]).
    CustomerNotified {
        customer_id: CustomerId,
        #[serde(flatten)]
        notice: Notice,
        notified_at: DateTime<Utc>,
    },
}

impl DomainEvent for CustomerEvent {}

/// What a customer decision needs from outside.
#[derive(Clone, Debug)]
pub struct CustomerContext {
    /// The customer the command is for (the stream being decided).
    pub customer_id: CustomerId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// Minimum age and driving experience for approval (`fixtures/data/kyc.json`).
    pub kyc: KycPolicy,
}

impl Decider for Customer {
    type State = CustomerState;
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Context = CustomerContext;

    fn decide(
        state: &CustomerState,
        command: &CustomerCommand,
        context: &CustomerContext,
    ) -> Result<Vec<CustomerEvent>, Rejection> {
        decide::decide(state, command, context)
    }

    fn evolve(state: CustomerState, event: &CustomerEvent) -> CustomerState {
        evolve::evolve(state, event)
    }
}
