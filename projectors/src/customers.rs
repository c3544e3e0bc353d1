//! `customers_view`: one row per customer for the support console — profile, KYC verification
//! (and why the documents await manual review, while they do), active blocks and company — searchable by phone, e-mail and licence number as the domain
//! normalised them.
//!
//! Personal data reaches it decrypted (the store's codec) while the customer's key exists; an
//! erased customer (`CustomerErased`, or on a replay after it, events the codec marks as erased)
//! keeps their row with the personal columns NULL and `erased_at` set.

use crate::projector::{ProjectionError, Projector, decode_page, to_bigint};
use crate::rows::{Guard, Row, Rows, guard, micros};
use chrono::{DateTime, NaiveDate, Utc};
use domain::customer::{CustomerEvent, VerificationStatus};
use domain::ids::CustomerId;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// Writes `customers_view` from the `customer` streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct CustomersProjector;

impl Projector for CustomersProjector {
    fn name(&self) -> &'static str {
        "customers_view"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["customers_view"]
    }

    fn categories(&self) -> &'static [&'static str] {
        &[CustomerId::CATEGORY]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, events))
    }
}

/// A `customers_view` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CustomerRow {
    customer_id: Uuid,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    birth_date: Option<NaiveDate>,
    licence_number: Option<String>,
    /// `pending`, `verified` or `rejected`.
    verification: String,
    rejection_reason: Option<String>,
    manual_review_reason: Option<String>,
    /// The active block reasons, sorted, each once.
    blocks: Vec<String>,
    company_id: Option<Uuid>,
    registered_at: DateTime<Utc>,
    erased_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    stream_version: i64,
}

impl Row for CustomerRow {
    const TABLE: &'static str = "customers_view";
    const KEY: &'static str = "customer_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.customer_id
    }
}

fn customer_of(event: &CustomerEvent) -> CustomerId {
    match event {
        CustomerEvent::CustomerRegistered { profile, .. } => profile.customer_id,
        CustomerEvent::CustomerVerified { customer_id, .. }
        | CustomerEvent::CustomerVerificationRejected { customer_id, .. }
        | CustomerEvent::CustomerBlocked { customer_id, .. }
        | CustomerEvent::CustomerUnblocked { customer_id, .. }
        | CustomerEvent::KycDocumentsSubmitted { customer_id, .. }
        | CustomerEvent::CustomerJoinedCompany { customer_id, .. }
        | CustomerEvent::CustomerLeftCompany { customer_id, .. }
        | CustomerEvent::KycManualReviewRequested { customer_id, .. }
        | CustomerEvent::CustomerErased { customer_id, .. }
        | CustomerEvent::KycCheckCompleted { customer_id, .. }
        | CustomerEvent::CustomerNotified { customer_id, .. } => *customer_id,
    }
}

async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    let decoded = decode_page::<CustomerEvent>(events)?;
    let mut customers = Rows::<CustomerRow>::default();
    customers
        .load(conn, decoded.iter().map(|(_, event)| customer_of(event).0))
        .await?;
    for (event, customer_event) in &decoded {
        fold(&mut customers, event, customer_event).map_err(|error| error.at(event))?;
    }
    customers.write(conn).await?;
    Ok(())
}

fn fold(
    customers: &mut Rows<CustomerRow>,
    event: &RecordedEvent,
    customer_event: &CustomerEvent,
) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    // Placeholders of erased personal data are not data.
    let erased = event_store::codec::is_erased(event);
    let customer_id = customer_of(customer_event).0;
    if let CustomerEvent::CustomerRegistered {
        profile,
        registered_at,
    } = customer_event
    {
        if customers.get(&customer_id).is_none() {
            let at = micros(*registered_at);
            customers.put(CustomerRow {
                customer_id,
                name: (!erased).then(|| profile.name.as_str().to_owned()),
                phone: (!erased).then(|| profile.phone.as_str().to_owned()),
                email: (!erased).then(|| profile.email.as_str().to_owned()),
                birth_date: (!erased).then_some(profile.birth_date),
                licence_number: (!erased).then(|| profile.licence.number.as_str().to_owned()),
                verification: VerificationStatus::Pending.as_str().to_owned(),
                rejection_reason: None,
                manual_review_reason: None,
                blocks: Vec::new(),
                company_id: None,
                registered_at: at,
                erased_at: None,
                updated_at: at,
                stream_version: version,
            });
        }
        return Ok(());
    }
    let current = customers.get(&customer_id).map(|row| row.stream_version);
    if guard(
        "customers_view",
        &customer_id,
        current,
        version,
        &event.event_type,
    )? == Guard::Applied
    {
        return Ok(());
    }
    let Some(row) = customers.get_mut(&customer_id) else {
        return Ok(());
    };
    let at = match customer_event {
        CustomerEvent::CustomerRegistered { registered_at, .. } => *registered_at,
        CustomerEvent::CustomerVerified { verified_at, .. } => {
            row.verification = "verified".to_owned();
            row.rejection_reason = None;
            row.manual_review_reason = None;
            *verified_at
        }
        CustomerEvent::CustomerVerificationRejected {
            reason,
            rejected_at,
            ..
        } => {
            row.verification = "rejected".to_owned();
            row.rejection_reason = Some(reason.clone());
            row.manual_review_reason = None;
            *rejected_at
        }
        CustomerEvent::CustomerBlocked {
            reason, blocked_at, ..
        } => {
            let reason = reason.as_str().to_owned();
            if !row.blocks.contains(&reason) {
                row.blocks.push(reason);
            }
            row.blocks.sort();
            row.blocks.dedup();
            *blocked_at
        }
        CustomerEvent::CustomerUnblocked {
            reason,
            unblocked_at,
            ..
        } => {
            row.blocks.retain(|block| block != reason.as_str());
            *unblocked_at
        }
        CustomerEvent::KycDocumentsSubmitted {
            documents,
            submitted_at,
            ..
        } => {
            // The documents replace the registration's licence and birth date; verification
            // is pending again (as in the customer decider's evolve).
            row.licence_number = (!erased).then(|| documents.licence.number.as_str().to_owned());
            row.birth_date = (!erased).then_some(documents.birth_date);
            row.verification = "pending".to_owned();
            row.rejection_reason = None;
            row.manual_review_reason = None;
            *submitted_at
        }
        CustomerEvent::CustomerJoinedCompany {
            company_id,
            joined_at,
            ..
        } => {
            row.company_id = Some(company_id.0);
            *joined_at
        }
        CustomerEvent::CustomerLeftCompany { left_at, .. } => {
            row.company_id = None;
            *left_at
        }
        CustomerEvent::KycManualReviewRequested {
            reason,
            requested_at,
            ..
        } => {
            row.manual_review_reason = Some(reason.clone());
            *requested_at
        }
        CustomerEvent::CustomerErased { erased_at, .. } => {
            row.name = None;
            row.phone = None;
            row.email = None;
            row.birth_date = None;
            row.licence_number = None;
            row.erased_at = Some(micros(*erased_at));
            *erased_at
        }
        // Facts the row does not show (the provider's raw answer, a notice): only the version
        // moves on.
        CustomerEvent::KycCheckCompleted {
            completed_at: at, ..
        }
        | CustomerEvent::CustomerNotified {
            notified_at: at, ..
        } => *at,
    };
    row.updated_at = micros(at);
    row.stream_version = version;
    Ok(())
}
