//! `customers_view`: one row per customer for the support console — profile, KYC verification
//! (and why the documents await manual review, while they do), active blocks and company — searchable by phone, e-mail and licence number as the domain
//! normalised them.
//!
//! Personal data reaches it decrypted (the store's codec) while the customer's key exists; an
//! erased customer (`CustomerErased`, or on a replay after it, events the codec marks as erased)
//! keeps their row with the personal columns NULL and `erased_at` set.

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use crate::view::{Guarded, View};
use domain::customer::{CustomerEvent, VerificationStatus};
use domain::ids::CustomerId;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

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
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

async fn apply(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let customer_event: CustomerEvent = decode_event(event)?;
    // Placeholders of erased personal data are not data.
    let erased = event_store::codec::is_erased(event);
    let (customer_id, written) = match &customer_event {
        CustomerEvent::CustomerRegistered {
            profile,
            registered_at,
        } => {
            let written = sqlx::query(
                "INSERT INTO customers_view (customer_id, name, phone, email, birth_date,
                     licence_number, verification, blocks, company_id, registered_at, updated_at,
                     stream_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, '{}', NULL, $8, $8, $9)
                 ON CONFLICT (customer_id) DO NOTHING",
            )
            .bind(profile.customer_id.0)
            .bind((!erased).then(|| profile.name.as_str()))
            .bind((!erased).then(|| profile.phone.as_str()))
            .bind((!erased).then(|| profile.email.as_str()))
            .bind((!erased).then_some(profile.birth_date))
            .bind((!erased).then(|| profile.licence.number.as_str()))
            .bind(VerificationStatus::Pending.as_str())
            .bind(registered_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (profile.customer_id, written.rows_affected())
        }
        CustomerEvent::CustomerVerified {
            customer_id,
            verified_at,
        } => {
            let written = update(
                conn,
                "verification = 'verified', rejection_reason = NULL, manual_review_reason = NULL",
                *customer_id,
                *verified_at,
                version,
                None,
            )
            .await?;
            (*customer_id, written)
        }
        CustomerEvent::CustomerVerificationRejected {
            customer_id,
            reason,
            rejected_at,
        } => {
            let written = update(
                conn,
                "verification = 'rejected', rejection_reason = $4, manual_review_reason = NULL",
                *customer_id,
                *rejected_at,
                version,
                Some(Param::Text(reason.clone())),
            )
            .await?;
            (*customer_id, written)
        }
        CustomerEvent::CustomerBlocked {
            customer_id,
            reason,
            blocked_at,
            ..
        } => {
            let written = update(
                conn,
                "blocks = ARRAY(SELECT DISTINCT b FROM unnest(array_append(blocks, $4)) AS b
                                ORDER BY b)",
                *customer_id,
                *blocked_at,
                version,
                Some(Param::Text(reason.as_str().to_owned())),
            )
            .await?;
            (*customer_id, written)
        }
        CustomerEvent::CustomerUnblocked {
            customer_id,
            reason,
            unblocked_at,
            ..
        } => {
            let written = update(
                conn,
                "blocks = array_remove(blocks, $4)",
                *customer_id,
                *unblocked_at,
                version,
                Some(Param::Text(reason.as_str().to_owned())),
            )
            .await?;
            (*customer_id, written)
        }
        CustomerEvent::KycDocumentsSubmitted {
            customer_id,
            documents,
            submitted_at,
        } => {
            // The documents replace the registration's licence and birth date; verification
            // is pending again (as in the customer decider's evolve).
            let written = sqlx::query(
                "UPDATE customers_view
                 SET licence_number = $2, birth_date = $3, verification = 'pending',
                     rejection_reason = NULL, manual_review_reason = NULL, updated_at = $4,
                     stream_version = $5
                 WHERE customer_id = $1 AND stream_version < $5",
            )
            .bind(customer_id.0)
            .bind((!erased).then(|| documents.licence.number.as_str()))
            .bind((!erased).then_some(documents.birth_date))
            .bind(submitted_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            (*customer_id, written.rows_affected())
        }
        CustomerEvent::CustomerJoinedCompany {
            customer_id,
            company_id,
            joined_at,
        } => {
            let written = update(
                conn,
                "company_id = $4",
                *customer_id,
                *joined_at,
                version,
                Some(Param::Uuid(company_id.0)),
            )
            .await?;
            (*customer_id, written)
        }
        CustomerEvent::CustomerLeftCompany {
            customer_id,
            left_at,
            ..
        } => {
            let written = update(
                conn,
                "company_id = NULL",
                *customer_id,
                *left_at,
                version,
                None,
            )
            .await?;
            (*customer_id, written)
        }
        CustomerEvent::KycManualReviewRequested {
            customer_id,
            reason,
            requested_at,
        } => {
            let written = update(
                conn,
                "manual_review_reason = $4",
                *customer_id,
                *requested_at,
                version,
                Some(Param::Text(reason.clone())),
            )
            .await?;
            (*customer_id, written)
        }
        CustomerEvent::CustomerErased {
            customer_id,
            erased_at,
            ..
        } => {
            let written = update(
                conn,
                "name = NULL, phone = NULL, email = NULL, birth_date = NULL,
                 licence_number = NULL, erased_at = $4",
                *customer_id,
                *erased_at,
                version,
                Some(Param::Time(*erased_at)),
            )
            .await?;
            (*customer_id, written)
        }
        // Facts the row does not show (the provider's raw answer, a notice): only the version
        // moves on.
        CustomerEvent::KycCheckCompleted {
            customer_id,
            completed_at: at,
            ..
        }
        | CustomerEvent::CustomerNotified {
            customer_id,
            notified_at: at,
            ..
        } => {
            let written = update(
                conn,
                "verification = verification",
                *customer_id,
                *at,
                version,
                None,
            )
            .await?;
            (*customer_id, written)
        }
    };
    Guarded {
        view: View::Customers,
        id: customer_id.0,
        version,
        event_type: &event.event_type,
    }
    .check(conn, written)
    .await
}

/// The one extra value an update binds as `$4`.
#[derive(Debug)]
enum Param {
    Text(String),
    Uuid(uuid::Uuid),
    Time(chrono::DateTime<chrono::Utc>),
}

/// A version-guarded update of one customer's row: `set` plus the time and version; returns the
/// rows changed.
async fn update(
    conn: &mut PgConnection,
    set: &str,
    customer_id: CustomerId,
    at: chrono::DateTime<chrono::Utc>,
    version: i64,
    param: Option<Param>,
) -> Result<u64, ProjectionError> {
    let sql = format!(
        "UPDATE customers_view SET {set}, updated_at = $2, stream_version = $3
         WHERE customer_id = $1 AND stream_version < $3"
    );
    let query = sqlx::query(&sql).bind(customer_id.0).bind(at).bind(version);
    let query = match param {
        Some(Param::Text(text)) => query.bind(text),
        Some(Param::Uuid(id)) => query.bind(id),
        Some(Param::Time(at)) => query.bind(at),
        None => query,
    };
    Ok(query.execute(&mut *conn).await?.rows_affected())
}
