//! `accounts_view`, `account_charges_view` and `account_adjustments_view`: each payer's account
//! with its sums, its charges, and every refund and waiver with the agent who made it — what the
//! customer, support and auditors read at `GET /v1/accounts/{account_id}`.
//!
//! The account row's `stream_version` guards the whole projection of an account stream: an event
//! at or below it was applied before (a rebuild or replay) and is skipped as a whole, so the sums
//! are never counted twice.

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use chrono::{DateTime, Utc};
use domain::account::{AccountEvent, AccountId, ChargeId};
use domain::money::Kopecks;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

/// Writes the account tables from the `account` streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccountsProjector;

impl Projector for AccountsProjector {
    fn name(&self) -> &'static str {
        "accounts_view"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "accounts_view",
            "account_charges_view",
            "account_adjustments_view",
        ]
    }

    fn categories(&self) -> &'static [&'static str] {
        &[AccountId::CATEGORY]
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
    let account_id = AccountId::from_stream_id(&event.stream_id).ok_or_else(|| {
        ProjectionError::Inconsistent(format!("{} is not an account stream", event.stream_id))
    })?;
    let account_event: AccountEvent = decode_event(event)?;
    let account = account_id.to_string();
    let applied: Option<i64> = sqlx::query_scalar(
        "SELECT stream_version FROM accounts_view WHERE account_id = $1 FOR UPDATE",
    )
    .bind(&account)
    .fetch_optional(&mut *conn)
    .await?;
    if applied.is_some_and(|applied| applied >= version) {
        return Ok(());
    }
    match &account_event {
        AccountEvent::ChargeAdded {
            charge_id,
            reason,
            source,
            amount_kopecks,
            customer_id,
            added_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO accounts_view (account_id, charged_kopecks, open_kopecks, updated_at,
                     stream_version)
                 VALUES ($1, $2, $2, $3, $4)
                 ON CONFLICT (account_id) DO UPDATE
                 SET charged_kopecks = accounts_view.charged_kopecks + $2,
                     open_kopecks = accounts_view.open_kopecks + $2,
                     updated_at = $3, stream_version = $4",
            )
            .bind(&account)
            .bind(amount_kopecks.get())
            .bind(added_at)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO account_charges_view (charge_id, account_id, customer_id, reason,
                     source_kind, source_id, amount_kopecks, added_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(charge_id.0)
            .bind(&account)
            .bind(customer_id.0)
            .bind(reason.as_str())
            .bind(source.kind())
            .bind(source.id())
            .bind(amount_kopecks.get())
            .bind(added_at)
            .execute(&mut *conn)
            .await?;
        }
        AccountEvent::ChargeRefunded {
            charge_id,
            refund_id,
            amount_kopecks,
            reason,
            refunded_at,
        } => {
            let adjustment = Adjustment {
                id: refund_id.0,
                charge_id: *charge_id,
                kind: Kind::Refund,
                amount: *amount_kopecks,
                reason,
                at: *refunded_at,
            };
            adjust(conn, event, &account, version, adjustment).await?;
        }
        AccountEvent::ChargeWaived {
            charge_id,
            amount_kopecks,
            reason,
            waived_at,
        } => {
            let adjustment = Adjustment {
                id: event.event_id,
                charge_id: *charge_id,
                kind: Kind::Waiver,
                amount: *amount_kopecks,
                reason,
                at: *waived_at,
            };
            adjust(conn, event, &account, version, adjustment).await?;
        }
        AccountEvent::PaymentCaptured {
            charge_id,
            amount_kopecks,
            captured_at,
            ..
        } => {
            paid(
                conn,
                event,
                &account,
                version,
                *charge_id,
                amount_kopecks.get(),
                *captured_at,
            )
            .await?;
        }
        AccountEvent::PaymentRefunded {
            charge_id,
            amount_kopecks,
            refunded_at,
            ..
        } => {
            paid(
                conn,
                event,
                &account,
                version,
                *charge_id,
                -amount_kopecks.get(),
                *refunded_at,
            )
            .await?;
        }
        AccountEvent::PaymentFailed {
            charge_id,
            failed_at,
            ..
        } => {
            flag(
                conn,
                &account,
                version,
                *charge_id,
                "payment_failed",
                *failed_at,
            )
            .await?;
        }
        AccountEvent::DebtHandedToAgency {
            charge_id,
            handed_at,
            ..
        } => {
            flag(
                conn,
                &account,
                version,
                *charge_id,
                "with_agency",
                *handed_at,
            )
            .await?;
        }
        AccountEvent::PaymentHeld { held_at: at, .. }
        | AccountEvent::HoldReleased {
            released_at: at, ..
        }
        | AccountEvent::HoldAbandoned {
            abandoned_at: at, ..
        }
        | AccountEvent::DebtNoticeSent { sent_at: at, .. } => {
            touch(conn, &account, version, *at).await?;
        }
    }
    Ok(())
}

/// Moves the account's version on, creating its row if this is its first event (a hold comes
/// before any charge).
async fn touch(
    conn: &mut PgConnection,
    account: &str,
    version: i64,
    at: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO accounts_view (account_id, updated_at, stream_version) VALUES ($1, $2, $3)
         ON CONFLICT (account_id) DO UPDATE SET updated_at = $2, stream_version = $3",
    )
    .bind(account)
    .bind(at)
    .bind(version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets a debt flag of a charge.
async fn flag(
    conn: &mut PgConnection,
    account: &str,
    version: i64,
    charge_id: ChargeId,
    column: &'static str,
    at: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    sqlx::query(&format!(
        "UPDATE account_charges_view SET {column} = true, updated_at = $3
         WHERE charge_id = $1 AND account_id = $2"
    ))
    .bind(charge_id.0)
    .bind(account)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    touch(conn, account, version, at).await
}

/// Money kept for a charge changed by `delta` (a capture, or minus a refund to the card).
async fn paid(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    account: &str,
    version: i64,
    charge_id: ChargeId,
    delta: i64,
    at: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    let charge = sqlx::query(
        "UPDATE account_charges_view SET paid_kopecks = paid_kopecks + $3, updated_at = $4
         WHERE charge_id = $1 AND account_id = $2",
    )
    .bind(charge_id.0)
    .bind(account)
    .bind(delta)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    let totals = sqlx::query(
        "UPDATE accounts_view SET paid_kopecks = paid_kopecks + $2, open_kopecks = open_kopecks - $2,
             updated_at = $3, stream_version = $4
         WHERE account_id = $1",
    )
    .bind(account)
    .bind(delta)
    .bind(at)
    .bind(version)
    .execute(&mut *conn)
    .await?;
    if charge.rows_affected() != 1 || totals.rows_affected() != 1 {
        return Err(ProjectionError::Inconsistent(format!(
            "{} (version {version}) of {account} is for charge {charge_id}, which the read model does not have",
            event.event_type
        )));
    }
    Ok(())
}

#[derive(Copy, Clone, Debug)]
enum Kind {
    Refund,
    Waiver,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Refund => "refund",
            Kind::Waiver => "waiver",
        }
    }

    /// The column of the charge and of the account that sums this kind.
    fn column(self) -> &'static str {
        match self {
            Kind::Refund => "refunded_kopecks",
            Kind::Waiver => "waived_kopecks",
        }
    }
}

#[derive(Debug)]
struct Adjustment<'a> {
    id: Uuid,
    charge_id: ChargeId,
    kind: Kind,
    amount: Kopecks,
    reason: &'a str,
    at: DateTime<Utc>,
}

/// Records a refund or waiver and adds it to the charge's and the account's sums.
async fn adjust(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    account: &str,
    version: i64,
    adjustment: Adjustment<'_>,
) -> Result<(), ProjectionError> {
    let column = adjustment.kind.column();
    let charge = sqlx::query(&format!(
        "UPDATE account_charges_view SET {column} = {column} + $3, updated_at = $4
         WHERE charge_id = $1 AND account_id = $2"
    ))
    .bind(adjustment.charge_id.0)
    .bind(account)
    .bind(adjustment.amount.get())
    .bind(adjustment.at)
    .execute(&mut *conn)
    .await?;
    let totals = sqlx::query(&format!(
        "UPDATE accounts_view SET {column} = {column} + $2, open_kopecks = open_kopecks - $2,
             updated_at = $3, stream_version = $4
         WHERE account_id = $1"
    ))
    .bind(account)
    .bind(adjustment.amount.get())
    .bind(adjustment.at)
    .bind(version)
    .execute(&mut *conn)
    .await?;
    if charge.rows_affected() != 1 || totals.rows_affected() != 1 {
        return Err(ProjectionError::Inconsistent(format!(
            "{} (version {version}) of {account} is for charge {}, which the read model does not have",
            event.event_type, adjustment.charge_id
        )));
    }
    sqlx::query(
        "INSERT INTO account_adjustments_view (adjustment_id, charge_id, kind, amount_kopecks,
             reason, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(adjustment.id)
    .bind(adjustment.charge_id.0)
    .bind(adjustment.kind.as_str())
    .bind(adjustment.amount.get())
    .bind(adjustment.reason)
    .bind(&event.metadata.actor)
    .bind(adjustment.at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
