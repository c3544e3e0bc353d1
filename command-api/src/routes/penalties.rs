//! Penalties: support issues one against a trip; it is charged to the trip's payer in the same
//! append.

use crate::CommandContext;
use crate::charges::{account_write, load_account};
use crate::load::Streams;
use crate::pipeline::{Decision, execute, write};
use crate::request::Command;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use domain::Rejection;
use domain::account::{ChargeId, payer_of_trip};
use domain::ids::{CustomerId, PenaltyId, TripId};
use domain::money::Kopecks;
use domain::penalty::{IssuePenalty, Penalty, PenaltyEvent, PenaltyKind, issue_penalty};
use domain::trip::Trip;
use event_store::Claims;
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, roles};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/penalties` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuePenaltyBody {
    /// The trip, running or ended, the penalty is for.
    trip_id: Uuid,
    kind: PenaltyKind,
    /// What support saw, for the customer and a later dispute.
    #[schema(example = "Ash on the driver's seat; photos in ticket 4711")]
    note: String,
    /// The amount, when not the fee schedule's default for the kind.
    #[serde(default)]
    amount_kopecks: Option<i64>,
}

/// An issued penalty and its charge.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PenaltyIssued {
    penalty_id: PenaltyId,
    /// The charge on the payer's account.
    charge_id: ChargeId,
    trip_id: TripId,
    /// The trip's customer, who is charged.
    customer_id: CustomerId,
    /// `customer:<uuid>`.
    account_id: String,
    kind: PenaltyKind,
    amount_kopecks: Kopecks,
}

/// Support issues a penalty against a trip; the trip's customer is charged for it.
#[utoipa::path(
    post,
    path = "/v1/penalties",
    operation_id = "issue_penalty",
    tag = "penalties",
    request_body = IssuePenaltyBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Issued and charged", body = PenaltyIssued), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn issue(
    State(context): State<CommandContext>,
    Command { envelope, body, .. }: Command<IssuePenaltyBody, roles::Support>,
) -> Result<Response, Problem> {
    let penalty_id = PenaltyId(Uuid::now_v7());
    let charge_id = ChargeId(Uuid::now_v7());
    let trip_id = TripId(body.trip_id);
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let (trip_stream, penalty_stream) = (trip_id.stream_id(), penalty_id.stream_id());
        let streams = Streams::read(
            &context.store,
            &[trip_stream.clone(), penalty_stream.clone()],
        )
        .await?;
        let trip = streams.fold::<Trip>(&trip_stream).await?;
        let penalty = streams.fold::<Penalty>(&penalty_stream).await?;
        let account_id = payer_of_trip(&trip.state).ok_or(Rejection::TripNotFound { trip_id })?;
        let account = load_account(&context.store, account_id).await?;
        let now = context.clock.now();
        let decision = issue_penalty(IssuePenalty {
            penalty_id,
            charge_id,
            now,
            penalty: &penalty.state,
            trip_id,
            trip: &trip.state,
            account_id,
            account: &account.state,
            kind: body.kind,
            note: body.note.clone(),
            amount_kopecks: body.amount_kopecks.map(Kopecks),
            tariff: &context.penalty_tariff,
        })?;
        let Some(PenaltyEvent::PenaltyIssued { facts, .. }) = decision.penalty.first() else {
            return Err(Rejection::PenaltyAlreadyIssued { penalty_id }.into());
        };
        let answer = json!(PenaltyIssued {
            penalty_id,
            charge_id,
            trip_id,
            customer_id: facts.customer_id,
            account_id: account_id.to_string(),
            kind: facts.kind,
            amount_kopecks: facts.amount_kopecks,
        });
        Ok(Decision {
            writes: vec![
                write(penalty_stream, penalty.expected(), &decision.penalty, now)?,
                account_write(account_id, &account, &decision.account, now)?,
            ],
            claims: Claims::default(),
            status: StatusCode::CREATED,
            body: answer,
        })
    })
    .await;
    Ok(response)
}
