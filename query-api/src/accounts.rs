//! `GET /v1/accounts/{account_id}`: a customer's account — every charge with its reason, its
//! source, its refunds and waivers, and the sums (charged, refunded, waived, open) — for the
//! customer themselves, support and auditors. Read from the accounts read model.
//!
//! An account with no charges is empty rather than missing: every customer has one from the
//! start, and the read model only learns of it with its first charge.

use crate::QueryContext;
use crate::error::QueryError;
use crate::params::InvalidParam;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::account::AccountId;
use domain::ids::CustomerId;
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The account as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AccountResponse {
    /// `customer:<uuid>` or `company:<uuid>`.
    account_id: String,
    /// The customer who pays, for a customer's own account.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<Uuid>,
    /// The company that pays, for a company's account (each charge names the employee).
    #[serde(skip_serializing_if = "Option::is_none")]
    company_id: Option<Uuid>,
    /// The currency of every amount.
    currency: &'static str,
    /// The sums over all charges: `charged = refunded + waived + open`.
    totals: Totals,
    /// Every charge, oldest first.
    charges: Vec<Charge>,
    /// How many account events the answer reflects (0: none yet).
    version: i64,
}

/// Sums of an account or a charge, in kopecks.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct Totals {
    charged_kopecks: i64,
    refunded_kopecks: i64,
    waived_kopecks: i64,
    /// Money taken by card and kept (captures minus refunds to the card).
    paid_kopecks: i64,
    /// The balance: charged − refunded − waived − paid. Positive: still owed; negative: being
    /// given back to the card.
    open_kopecks: i64,
}

/// What caused a charge.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Source {
    /// `trip`, `reservation`, `fine` or `penalty`.
    kind: String,
    /// The id of the trip, reservation, fine or penalty.
    id: Uuid,
}

/// One charge.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Charge {
    charge_id: Uuid,
    /// `trip_price`, `paid_waiting`, `fine`, `fine_admin_fee` or `penalty`.
    reason: String,
    source: Source,
    /// Who caused it (the driver).
    customer_id: Uuid,
    amount_kopecks: i64,
    refunded_kopecks: i64,
    waived_kopecks: i64,
    /// Money taken by card for it and kept.
    paid_kopecks: i64,
    /// Its balance: amount − refunded − waived − paid (positive: still owed).
    open_kopecks: i64,
    /// A card payment for it was refused: it is (or was) a debt.
    payment_failed: bool,
    /// Its debt went to a collection agency.
    with_agency: bool,
    added_at: DateTime<Utc>,
    refunds: Vec<Refund>,
    waivers: Vec<Waiver>,
}

/// A refund of (part of) a charge.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Refund {
    refund_id: Uuid,
    amount_kopecks: i64,
    reason: String,
    refunded_at: DateTime<Utc>,
    /// The agent who refunded (`support:<name>`); shown to support and auditors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
}

/// A waiver of what was owed on a charge.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Waiver {
    amount_kopecks: i64,
    reason: String,
    waived_at: DateTime<Utc>,
    /// The agent who waived (`support:<name>`); shown to support and auditors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct AccountRow {
    charged_kopecks: i64,
    refunded_kopecks: i64,
    waived_kopecks: i64,
    paid_kopecks: i64,
    open_kopecks: i64,
    stream_version: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct ChargeRow {
    charge_id: Uuid,
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
}

#[derive(Debug, sqlx::FromRow)]
struct AdjustmentRow {
    adjustment_id: Uuid,
    charge_id: Uuid,
    kind: String,
    amount_kopecks: i64,
    reason: String,
    actor: String,
    at: DateTime<Utc>,
}

/// An account: a customer's (the customer themselves, support and auditors may read it) or a
/// company's (`company:<uuid>`, support and auditors).
#[utoipa::path(
    get,
    path = "/v1/accounts/{account_id}",
    operation_id = "get_account",
    tag = "accounts",
    params(("account_id" = String, Path, description = "Who pays: a customer's id, or `company:<uuid>`")),
    responses((status = 200, description = "The account, its charges and their sums", body = AccountResponse), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn get_account(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AccountResponse>, Problem> {
    caller.require(&[Role::Customer, Role::Support, Role::Auditor])?;
    let account_id = parse_account(path)?;
    let own = match (account_id.customer(), caller.subject.parse::<Uuid>()) {
        (Some(customer_id), Ok(subject)) => customer_id.0 == subject,
        _ => false,
    };
    if caller.role == Role::Customer && !own {
        return Err(Problem::forbidden(format!(
            "the account {account_id} is someone else's"
        )));
    }
    let payer = account_id;
    let account_id = account_id.to_string();
    let account: Option<AccountRow> = sqlx::query_as(
        "SELECT charged_kopecks, refunded_kopecks, waived_kopecks, paid_kopecks, open_kopecks,
                stream_version
         FROM accounts_view WHERE account_id = $1",
    )
    .bind(&account_id)
    .fetch_optional(&context.pool)
    .await
    .map_err(QueryError::from)?;
    let charges: Vec<ChargeRow> = sqlx::query_as(
        "SELECT charge_id, customer_id, reason, source_kind, source_id, amount_kopecks,
                refunded_kopecks, waived_kopecks, paid_kopecks, payment_failed, with_agency,
                added_at
         FROM account_charges_view WHERE account_id = $1 ORDER BY added_at, charge_id",
    )
    .bind(&account_id)
    .fetch_all(&context.pool)
    .await
    .map_err(QueryError::from)?;
    let adjustments: Vec<AdjustmentRow> = sqlx::query_as(
        "SELECT a.adjustment_id, a.charge_id, a.kind, a.amount_kopecks, a.reason, a.actor, a.at
         FROM account_adjustments_view a
         JOIN account_charges_view c USING (charge_id)
         WHERE c.account_id = $1 ORDER BY a.at, a.adjustment_id",
    )
    .bind(&account_id)
    .fetch_all(&context.pool)
    .await
    .map_err(QueryError::from)?;
    // Who refunded or waived is internal to the operator; the customer sees what and why.
    let show_actor = caller.role != Role::Customer;
    Ok(Json(respond(
        payer,
        account,
        charges,
        adjustments,
        show_actor,
    )?))
}

fn respond(
    payer: AccountId,
    account: Option<AccountRow>,
    charges: Vec<ChargeRow>,
    adjustments: Vec<AdjustmentRow>,
    show_actor: bool,
) -> Result<AccountResponse, QueryError> {
    let mut by_charge: BTreeMap<Uuid, (Vec<Refund>, Vec<Waiver>)> = BTreeMap::new();
    for row in adjustments {
        let actor = show_actor.then_some(row.actor);
        let (refunds, waivers) = by_charge.entry(row.charge_id).or_default();
        match row.kind.as_str() {
            "refund" => refunds.push(Refund {
                refund_id: row.adjustment_id,
                amount_kopecks: row.amount_kopecks,
                reason: row.reason,
                refunded_at: row.at,
                actor,
            }),
            "waiver" => waivers.push(Waiver {
                amount_kopecks: row.amount_kopecks,
                reason: row.reason,
                waived_at: row.at,
                actor,
            }),
            other => {
                return Err(QueryError::Corrupt(format!(
                    "adjustment {} has kind {other:?}",
                    row.adjustment_id
                )));
            }
        }
    }
    let charges = charges
        .into_iter()
        .map(|row| {
            let (refunds, waivers) = by_charge.remove(&row.charge_id).unwrap_or_default();
            Charge {
                charge_id: row.charge_id,
                reason: row.reason,
                source: Source {
                    kind: row.source_kind,
                    id: row.source_id,
                },
                customer_id: row.customer_id,
                amount_kopecks: row.amount_kopecks,
                refunded_kopecks: row.refunded_kopecks,
                waived_kopecks: row.waived_kopecks,
                paid_kopecks: row.paid_kopecks,
                open_kopecks: row.amount_kopecks
                    - row.refunded_kopecks
                    - row.waived_kopecks
                    - row.paid_kopecks,
                payment_failed: row.payment_failed,
                with_agency: row.with_agency,
                added_at: row.added_at,
                refunds,
                waivers,
            }
        })
        .collect();
    let (totals, version) = match account {
        Some(row) => (
            Totals {
                charged_kopecks: row.charged_kopecks,
                refunded_kopecks: row.refunded_kopecks,
                waived_kopecks: row.waived_kopecks,
                paid_kopecks: row.paid_kopecks,
                open_kopecks: row.open_kopecks,
            },
            row.stream_version,
        ),
        None => (Totals::default(), 0),
    };
    Ok(AccountResponse {
        account_id: payer.to_string(),
        customer_id: payer.customer().map(|id| id.0),
        company_id: match payer {
            AccountId::Company(company_id) => Some(company_id.0),
            AccountId::Customer(_) => None,
        },
        currency: "RUB",
        totals,
        charges,
        version,
    })
}

/// A UUID from the path, or a 422 naming the parameter.
/// The account a path names: a customer's id, or `company:<uuid>`.
fn parse_account(path: Result<Path<String>, PathRejection>) -> Result<AccountId, InvalidParam> {
    let Path(raw) =
        path.map_err(|rejection| InvalidParam::new("account_id", rejection.body_text()))?;
    match raw.parse::<Uuid>() {
        Ok(id) => Ok(AccountId::Customer(CustomerId(id))),
        Err(_) => raw.parse().map_err(|_| {
            InvalidParam::new(
                "account_id",
                format!("must be a customer id (a UUID) or company:<uuid>, not {raw:?}"),
            )
        }),
    }
}

pub(crate) fn parse_id(
    path: Result<Path<String>, PathRejection>,
    name: &str,
) -> Result<Uuid, InvalidParam> {
    let Path(raw) = path.map_err(|rejection| InvalidParam::new(name, rejection.body_text()))?;
    raw.parse().map_err(|_| {
        InvalidParam::new(
            name,
            format!("must be a UUID (like 0194f5a0-0000-7000-8000-000000000001), not {raw:?}"),
        )
    })
}
