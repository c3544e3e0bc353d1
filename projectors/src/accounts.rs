//! `accounts_view`, `account_charges_view` and `account_adjustments_view`: each payer's account
//! with its sums, its charges, and every refund and waiver with the agent who made it — what the
//! customer, support and auditors read at `GET /v1/accounts/{account_id}`.
//!
//! The account row's `stream_version` guards the whole projection of an account stream: an event
//! at or below it was applied before (a rebuild or replay) and is skipped as a whole, so the sums
//! are never counted twice.

use crate::projector::{ProjectionError, Projector, decode_event, to_bigint};
use crate::rows::{Row, Rows, micros};
use chrono::{DateTime, Utc};
use domain::account::{AccountEvent, AccountId, ChargeId};
use domain::money::Kopecks;
use event_store::RecordedEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
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
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, events))
    }
}

/// An `accounts_view` row: a payer's sums.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AccountRow {
    account_id: String,
    charged_kopecks: i64,
    refunded_kopecks: i64,
    waived_kopecks: i64,
    paid_kopecks: i64,
    open_kopecks: i64,
    updated_at: DateTime<Utc>,
    stream_version: i64,
}

impl Row for AccountRow {
    const TABLE: &'static str = "accounts_view";
    const KEY: &'static str = "account_id";
    type Key = String;

    fn key(&self) -> String {
        self.account_id.clone()
    }
}

/// An `account_charges_view` row: one charge and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ChargeRow {
    charge_id: Uuid,
    account_id: String,
    customer_id: Uuid,
    reason: String,
    source_kind: String,
    source_id: Uuid,
    amount_kopecks: i64,
    refunded_kopecks: i64,
    waived_kopecks: i64,
    paid_kopecks: i64,
    payment_failed: bool,
    with_agency: bool,
    added_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row for ChargeRow {
    const TABLE: &'static str = "account_charges_view";
    const KEY: &'static str = "charge_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.charge_id
    }
}

/// An `account_adjustments_view` row: a refund or a waiver, with who made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AdjustmentRow {
    adjustment_id: Uuid,
    charge_id: Uuid,
    /// `refund` or `waiver`.
    kind: String,
    amount_kopecks: i64,
    reason: String,
    actor: String,
    at: DateTime<Utc>,
}

impl Row for AdjustmentRow {
    const TABLE: &'static str = "account_adjustments_view";
    const KEY: &'static str = "adjustment_id";
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.adjustment_id
    }
}

/// What a page touches of the three tables.
#[derive(Debug, Default)]
struct Page {
    accounts: Rows<AccountRow>,
    charges: Rows<ChargeRow>,
    adjustments: Rows<AdjustmentRow>,
}

/// The charge an account event is about, if any.
fn charge_of(event: &AccountEvent) -> Option<ChargeId> {
    match event {
        AccountEvent::ChargeAdded { charge_id, .. }
        | AccountEvent::ChargeRefunded { charge_id, .. }
        | AccountEvent::ChargeWaived { charge_id, .. }
        | AccountEvent::PaymentCaptured { charge_id, .. }
        | AccountEvent::PaymentRefunded { charge_id, .. }
        | AccountEvent::PaymentFailed { charge_id, .. }
        | AccountEvent::DebtHandedToAgency { charge_id, .. }
        | AccountEvent::DebtNoticeSent { charge_id, .. } => Some(*charge_id),
        AccountEvent::PaymentHeld { .. }
        | AccountEvent::HoldReleased { .. }
        | AccountEvent::HoldAbandoned { .. } => None,
    }
}

async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    let decoded = events
        .iter()
        .map(|event| {
            let account_id = AccountId::from_stream_id(&event.stream_id).ok_or_else(|| {
                ProjectionError::Inconsistent(format!(
                    "{} is not an account stream",
                    event.stream_id
                ))
                .at(event)
            })?;
            let decoded: AccountEvent = decode_event(event).map_err(|error| error.at(event))?;
            Ok((*event, account_id.to_string(), decoded))
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    let mut page = Page::default();
    page.accounts
        .load(conn, decoded.iter().map(|(_, account, _)| account.clone()))
        .await?;
    page.charges
        .load(
            conn,
            decoded
                .iter()
                .filter_map(|(_, _, event)| charge_of(event).map(|charge| charge.0)),
        )
        .await?;
    for (event, account, account_event) in &decoded {
        fold(&mut page, event, account, account_event).map_err(|error| error.at(event))?;
    }
    page.accounts.write(conn).await?;
    page.charges.write(conn).await?;
    page.adjustments.write(conn).await?;
    Ok(())
}

fn fold(
    page: &mut Page,
    event: &RecordedEvent,
    account: &str,
    account_event: &AccountEvent,
) -> Result<(), ProjectionError> {
    let version = to_bigint("stream version", event.stream_version)?;
    let key = account.to_owned();
    if page
        .accounts
        .get(&key)
        .is_some_and(|row| row.stream_version >= version)
    {
        return Ok(());
    }
    match account_event {
        AccountEvent::ChargeAdded {
            charge_id,
            reason,
            source,
            amount_kopecks,
            customer_id,
            added_at,
            ..
        } => {
            let at = micros(*added_at);
            let amount = amount_kopecks.get();
            let row = touch(page, account, version, at);
            row.charged_kopecks += amount;
            row.open_kopecks += amount;
            if page.charges.get(&charge_id.0).is_some() {
                return Err(ProjectionError::Inconsistent(format!(
                    "charge {charge_id} was added twice"
                )));
            }
            page.charges.put(ChargeRow {
                charge_id: charge_id.0,
                account_id: account.to_owned(),
                customer_id: customer_id.0,
                reason: reason.as_str().to_owned(),
                source_kind: source.kind().to_owned(),
                source_id: source.id(),
                amount_kopecks: amount,
                refunded_kopecks: 0,
                waived_kopecks: 0,
                paid_kopecks: 0,
                payment_failed: false,
                with_agency: false,
                added_at: at,
                updated_at: at,
            });
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
                at: micros(*refunded_at),
            };
            adjust(page, event, account, version, adjustment)?;
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
                at: micros(*waived_at),
            };
            adjust(page, event, account, version, adjustment)?;
        }
        AccountEvent::PaymentCaptured {
            charge_id,
            amount_kopecks,
            captured_at,
            ..
        } => {
            paid(
                page,
                event,
                account,
                version,
                *charge_id,
                amount_kopecks.get(),
                micros(*captured_at),
            )?;
        }
        AccountEvent::PaymentRefunded {
            charge_id,
            amount_kopecks,
            refunded_at,
            ..
        } => {
            paid(
                page,
                event,
                account,
                version,
                *charge_id,
                -amount_kopecks.get(),
                micros(*refunded_at),
            )?;
        }
        AccountEvent::PaymentFailed {
            charge_id,
            failed_at,
            ..
        } => {
            let at = micros(*failed_at);
            if let Some(charge) = charge_of_account(page, *charge_id, account) {
                charge.payment_failed = true;
                charge.updated_at = at;
            }
            touch(page, account, version, at);
        }
        AccountEvent::DebtHandedToAgency {
            charge_id,
            handed_at,
            ..
        } => {
            let at = micros(*handed_at);
            if let Some(charge) = charge_of_account(page, *charge_id, account) {
                charge.with_agency = true;
                charge.updated_at = at;
            }
            touch(page, account, version, at);
        }
        AccountEvent::PaymentHeld { held_at: at, .. }
        | AccountEvent::HoldReleased {
            released_at: at, ..
        }
        | AccountEvent::HoldAbandoned {
            abandoned_at: at, ..
        }
        | AccountEvent::DebtNoticeSent { sent_at: at, .. } => {
            touch(page, account, version, micros(*at));
        }
    }
    Ok(())
}

/// The account's row with its version moved on, created if this is its first event (a hold
/// comes before any charge).
fn touch<'a>(
    page: &'a mut Page,
    account: &str,
    version: i64,
    at: DateTime<Utc>,
) -> &'a mut AccountRow {
    let row = page
        .accounts
        .get_or_put(&account.to_owned(), || AccountRow {
            account_id: account.to_owned(),
            charged_kopecks: 0,
            refunded_kopecks: 0,
            waived_kopecks: 0,
            paid_kopecks: 0,
            open_kopecks: 0,
            updated_at: at,
            stream_version: version,
        });
    row.updated_at = at;
    row.stream_version = version;
    row
}

/// The charge `charge_id` if it is on `account`.
fn charge_of_account<'a>(
    page: &'a mut Page,
    charge_id: ChargeId,
    account: &str,
) -> Option<&'a mut ChargeRow> {
    page.charges
        .get_mut(&charge_id.0)
        .filter(|charge| charge.account_id == account)
}

/// Money kept for a charge changed by `delta` (a capture, or minus a refund to the card).
fn paid(
    page: &mut Page,
    event: &RecordedEvent,
    account: &str,
    version: i64,
    charge_id: ChargeId,
    delta: i64,
    at: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    let has_account = page.accounts.get(&account.to_owned()).is_some();
    let Some(charge) = charge_of_account(page, charge_id, account).filter(|_| has_account) else {
        return Err(ProjectionError::Inconsistent(format!(
            "{} (version {version}) of {account} is for charge {charge_id}, which the read model does not have",
            event.event_type
        )));
    };
    charge.paid_kopecks += delta;
    charge.updated_at = at;
    let row = touch(page, account, version, at);
    row.paid_kopecks += delta;
    row.open_kopecks -= delta;
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
fn adjust(
    page: &mut Page,
    event: &RecordedEvent,
    account: &str,
    version: i64,
    adjustment: Adjustment<'_>,
) -> Result<(), ProjectionError> {
    let has_account = page.accounts.get(&account.to_owned()).is_some();
    let amount = adjustment.amount.get();
    let Some(charge) =
        charge_of_account(page, adjustment.charge_id, account).filter(|_| has_account)
    else {
        return Err(ProjectionError::Inconsistent(format!(
            "{} (version {version}) of {account} is for charge {}, which the read model does not have",
            event.event_type, adjustment.charge_id
        )));
    };
    match adjustment.kind {
        Kind::Refund => charge.refunded_kopecks += amount,
        Kind::Waiver => charge.waived_kopecks += amount,
    }
    charge.updated_at = adjustment.at;
    let row = touch(page, account, version, adjustment.at);
    match adjustment.kind {
        Kind::Refund => row.refunded_kopecks += amount,
        Kind::Waiver => row.waived_kopecks += amount,
    }
    row.open_kopecks -= amount;
    page.adjustments.put(AdjustmentRow {
        adjustment_id: adjustment.id,
        charge_id: adjustment.charge_id.0,
        kind: adjustment.kind.as_str().to_owned(),
        amount_kopecks: amount,
        reason: adjustment.reason.to_owned(),
        actor: event.metadata.actor.clone(),
        at: adjustment.at,
    });
    Ok(())
}
