//! Accounts: support refunds part or all of a charge, or waives what is still owed on it. The
//! agent is the actor of the events they cause (the pipeline records the caller as the actor).

use crate::CommandContext;
use crate::charges::{account_write, load_account};
use crate::pipeline::{Decision, Envelope, execute};
use crate::request::{Command, path_id};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::Decider;
use domain::account::{
    Account, AccountCommand, AccountContext, AccountEvent, AccountId, ChargeId, RefundId,
};
use domain::ids::CustomerId;
use domain::money::Kopecks;
use event_store::Claims;
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, ProblemType, roles};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/accounts/{account_id}/charges/{charge_id}/refunds` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefundBody {
    /// How much to refund: positive, at most what may still be refunded of the charge.
    #[schema(example = 25_000)]
    amount_kopecks: i64,
    /// Why, for the customer and the record.
    #[schema(example = "Navigation failed mid-trip")]
    reason: String,
}

/// A recorded refund and where the charge stands after it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RefundRecorded {
    refund_id: RefundId,
    charge_id: ChargeId,
    /// `customer:<uuid>`.
    account_id: String,
    amount_kopecks: Kopecks,
    /// All refunds of the charge so far, this one included.
    refunded_kopecks: Kopecks,
    /// What is still owed on the charge.
    open_kopecks: Kopecks,
}

/// `POST /v1/accounts/{account_id}/charges/{charge_id}/waive` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaiveBody {
    /// Why the debt is forgiven, for the customer and the record.
    #[schema(example = "Customer was in hospital; goodwill")]
    reason: String,
}

/// A recorded waiver.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WaiverRecorded {
    charge_id: ChargeId,
    /// `customer:<uuid>`.
    account_id: String,
    /// What was forgiven: everything that was still owed.
    waived_kopecks: Kopecks,
    /// Always 0 after a waiver.
    open_kopecks: Kopecks,
}

/// The account and charge named by the path.
fn charge_in_path(raw_account: &str, raw_charge: &str) -> Result<(AccountId, ChargeId), Problem> {
    let account_id = account_of(raw_account)?;
    let charge_id = ChargeId(path_id(raw_charge, ProblemType::ChargeNotFound, "charge")?);
    Ok((account_id, charge_id))
}

/// The account a path names: a customer's id, or `company:<uuid>` for a company's account.
fn account_of(raw: &str) -> Result<AccountId, Problem> {
    match path_id(raw, ProblemType::ChargeNotFound, "account") {
        Ok(id) => Ok(AccountId::Customer(CustomerId(id))),
        Err(problem) => raw.parse().map_err(|_| problem),
    }
}

/// Decides `command` on the account and appends its events, answering with `respond(state
/// after, events)`.
async fn account_command(
    context: &CommandContext,
    envelope: Envelope,
    account_id: AccountId,
    command: AccountCommand,
    status: StatusCode,
    respond: impl Fn(&domain::account::AccountState, &[AccountEvent]) -> serde_json::Value,
) -> Response {
    let command = &command;
    let respond = &respond;
    execute(context, envelope, || async move {
        let account = load_account(&context.store, account_id).await?;
        let now = context.clock.now();
        let events = Account::decide(&account.state, command, &AccountContext { account_id, now })?;
        let after = events.iter().fold(account.state.clone(), |state, event| {
            Account::evolve(state, event)
        });
        Ok(Decision {
            writes: vec![account_write(account_id, &account, &events, now)?],
            claims: Claims::default(),
            status,
            body: respond(&after, &events),
        })
    })
    .await
}

/// Support refunds part or all of a charge. Until payments exist, at most what was charged minus
/// what was already refunded or waived; once they do, at most what was paid minus what was
/// already refunded.
#[utoipa::path(
    post,
    path = "/v1/accounts/{account_id}/charges/{charge_id}/refunds",
    operation_id = "refund_charge",
    tag = "accounts",
    request_body = RefundBody,
    params(
        ("account_id" = String, Path, description = "The account holding the charge: a customer's id, or `company:<uuid>`"),
        ("charge_id" = Uuid, Path, description = "The charge"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing"),
    ),
    responses((status = 201, description = "Refunded", body = RefundRecorded), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn refund_charge(
    State(context): State<CommandContext>,
    Path((raw_account, raw_charge)): Path<(String, String)>,
    Command { envelope, body, .. }: Command<RefundBody, roles::Support>,
) -> Result<Response, Problem> {
    let (account_id, charge_id) = charge_in_path(&raw_account, &raw_charge)?;
    let refund_id = RefundId(Uuid::now_v7());
    let command = AccountCommand::Refund {
        charge_id,
        refund_id,
        amount_kopecks: Kopecks(body.amount_kopecks),
        reason: body.reason.clone(),
    };
    let response = account_command(
        &context,
        envelope,
        account_id,
        command,
        StatusCode::CREATED,
        |after, _| {
            let charge = after.charge(charge_id);
            json!(RefundRecorded {
                refund_id,
                charge_id,
                account_id: account_id.to_string(),
                amount_kopecks: Kopecks(body.amount_kopecks),
                refunded_kopecks: charge.map(|c| c.refunded_kopecks).unwrap_or_default(),
                open_kopecks: charge.map(|c| c.open_kopecks()).unwrap_or_default(),
            })
        },
    )
    .await;
    Ok(response)
}

/// Support forgives what is still owed on a charge.
#[utoipa::path(
    post,
    path = "/v1/accounts/{account_id}/charges/{charge_id}/waive",
    operation_id = "waive_charge",
    tag = "accounts",
    request_body = WaiveBody,
    params(
        ("account_id" = String, Path, description = "The account holding the charge: a customer's id, or `company:<uuid>`"),
        ("charge_id" = Uuid, Path, description = "The charge"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing"),
    ),
    responses((status = 200, description = "Waived: nothing is owed on the charge any more", body = WaiverRecorded), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn waive_charge(
    State(context): State<CommandContext>,
    Path((raw_account, raw_charge)): Path<(String, String)>,
    Command { envelope, body, .. }: Command<WaiveBody, roles::Support>,
) -> Result<Response, Problem> {
    let (account_id, charge_id) = charge_in_path(&raw_account, &raw_charge)?;
    let command = AccountCommand::Waive {
        charge_id,
        reason: body.reason,
    };
    let response = account_command(
        &context,
        envelope,
        account_id,
        command,
        StatusCode::OK,
        |after, events| {
            let waived = events
                .iter()
                .map(|event| match event {
                    AccountEvent::ChargeWaived { amount_kopecks, .. } => *amount_kopecks,
                    _ => Kopecks::ZERO,
                })
                .fold(Kopecks::ZERO, |sum, amount| sum + amount);
            json!(WaiverRecorded {
                charge_id,
                account_id: account_id.to_string(),
                waived_kopecks: waived,
                open_kopecks: after
                    .charge(charge_id)
                    .map(|c| c.open_kopecks())
                    .unwrap_or_default(),
            })
        },
    )
    .await;
    Ok(response)
}

/// What recording a payment fact did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PaymentRecorded {
    /// `customer:<uuid>`.
    account_id: String,
    /// False when a fact with the same key was recorded before (nothing was appended).
    recorded: bool,
    /// What is still owed on the account after it.
    open_kopecks: Kopecks,
    /// Money the account has paid and kept.
    paid_kopecks: Kopecks,
}

/// The payment saga records what the payment gateway did (a hold released, a capture, a refused
/// payment, a refund to the card) and the steps of collecting a debt (notices, the hand-over to
/// an agency). Internal: the `service` role only. A fact with a key recorded before records
/// nothing.
#[utoipa::path(
    post,
    path = "/v1/accounts/{account_id}/payments",
    operation_id = "record_payment",
    tag = "accounts",
    request_body = domain::account::PaymentFact,
    params(
        ("account_id" = String, Path, description = "The customer's id (company accounts are invoiced, not charged to a card)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing"),
    ),
    responses((status = 201, description = "Recorded (or already recorded under its key)", body = PaymentRecorded), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn record_payment(
    State(context): State<CommandContext>,
    Path(raw_account): Path<String>,
    Command { envelope, body, .. }: Command<domain::account::PaymentFact, roles::Service>,
) -> Result<Response, Problem> {
    let account_id = account_of(&raw_account)?;
    let response = account_command(
        &context,
        envelope,
        account_id,
        AccountCommand::Record(body),
        StatusCode::CREATED,
        |after, events| {
            let totals = after.totals();
            json!(PaymentRecorded {
                account_id: account_id.to_string(),
                recorded: !events.is_empty(),
                open_kopecks: totals.open_kopecks,
                paid_kopecks: totals.paid_kopecks,
            })
        },
    )
    .await;
    Ok(response)
}
