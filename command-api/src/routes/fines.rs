//! Fines: the traffic-fine feed imports each fine once per resolution number.
//!
//! The import decides against the fine that already holds the resolution number's claim, if any
//! (a fresh fine otherwise), and a new fine takes the claim in the append that records it. So a
//! repeated import is answered 200 with the first fine and appends nothing, a contradicting one
//! is a 409, and of two concurrent imports exactly one lands: the other loses the claim, decides
//! again against the winner's fine and becomes the repeat.
//!
//! Matching (`POST /v1/fines/{id}/match`, sent by the fine saga) reads one read model on purpose:
//! `vehicle_possessions` finds the trip that had the car at the time of the offence. It waits for
//! that read model to reach the fine first, and records the trip it found in `FineMatched`; the
//! charge itself is decided on the trip's and the account's streams.

use crate::CommandContext;
use crate::charges::account_write;
use crate::load::{Streams, load};
use crate::pipeline::{CommandError, Decision, execute, write};
use crate::request::{Command, PathCommand, path_id};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use domain::account::{Account, ChargeId, payer_of_trip, positive_amount};
use domain::claims::Claim;
use domain::customer::Customer;
use domain::fine::{
    Fine, FineCommand, FineContext, FineDetails, FineStatus, MatchFine, ResolutionNumber,
};
use domain::geo::GeoPoint;
use domain::ids::{CustomerId, FineId, TripId};
use domain::money::Kopecks;
use domain::trip::Trip;
use domain::value::Plate;
use domain::{Decider, Rejection};
use event_store::Claims;
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, ProblemType, roles};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/fines` body: one resolution from the feed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportFineBody {
    /// The fined car's plate.
    #[schema(example = "А123ВС777")]
    plate: String,
    /// When the offence happened; not in the future.
    occurred_at: DateTime<Utc>,
    /// Where.
    #[schema(example = 55.7648)]
    lat: f64,
    #[schema(example = 37.6056)]
    lon: f64,
    /// The fine as resolved: positive.
    #[schema(example = 50_000)]
    amount_kopecks: i64,
    /// The resolution's number (its UIN): 20 or 25 digits.
    #[schema(example = "18810177231125000017")]
    resolution_number: String,
    /// The day the resolution was issued: not before the offence.
    issued_on: NaiveDate,
}

impl ImportFineBody {
    fn details(&self) -> Result<FineDetails, domain::FieldError> {
        Ok(FineDetails {
            resolution_number: ResolutionNumber::parse(
                "resolution_number",
                &self.resolution_number,
            )?,
            plate: Plate::parse("plate", &self.plate)?,
            occurred_at: self.occurred_at,
            place: GeoPoint::parse("lat", self.lat, "lon", self.lon)?,
            amount_kopecks: positive_amount("amount_kopecks", self.amount_kopecks)?,
            issued_on: self.issued_on,
        })
    }
}

/// The imported fine.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FineImported {
    fine_id: FineId,
    /// `open`: not yet matched to a driver.
    status: &'static str,
    /// Whether this resolution had been imported before (nothing was appended this time).
    duplicate: bool,
}

/// The fine feed imports a fine; a resolution number already imported is answered with its fine.
#[utoipa::path(
    post,
    path = "/v1/fines",
    operation_id = "import_fine",
    tag = "fines",
    request_body = ImportFineBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses(
        (status = 201, description = "Imported: the fine is open", body = FineImported),
        (status = 200, description = "Imported before with the same details: the existing fine, nothing appended", body = FineImported),
        CommandProblems,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn import(
    State(context): State<CommandContext>,
    Command { envelope, body, .. }: Command<ImportFineBody, roles::Service>,
) -> Result<Response, Problem> {
    let new_fine_id = FineId(Uuid::now_v7());
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let details = body.details()?;
        let claim = Claim::FineResolution(details.resolution_number.to_string()).key();
        let holder = context
            .store
            .claim_holder(&claim)
            .await?
            .and_then(|stream| FineId::from_stream_id(&stream));
        let fine_id = holder.unwrap_or(new_fine_id);
        let stream_id = fine_id.stream_id();
        let fine = load::<Fine>(&context.store, &stream_id).await?;
        let now = context.clock.now();
        let events = Fine::decide(
            &fine.state,
            &FineCommand::Receive(details),
            &FineContext { fine_id, now },
        )?;
        let status = fine.state.status.as_str();
        if events.is_empty() {
            return Ok(Decision {
                writes: Vec::new(),
                claims: Claims::default(),
                status: StatusCode::OK,
                body: json!(FineImported {
                    fine_id,
                    status,
                    duplicate: true,
                }),
            });
        }
        Ok(Decision {
            claims: Claims {
                acquire: events
                    .iter()
                    .flat_map(Claim::acquired_by_fine)
                    .map(|claim| claim.key())
                    .collect(),
                holder: Some(stream_id.clone()),
                release: Vec::new(),
            },
            writes: vec![write(stream_id, fine.expected(), &events, now)?],
            status: StatusCode::CREATED,
            body: json!(FineImported {
                fine_id,
                status: domain::fine::FineStatus::Open.as_str(),
                duplicate: false,
            }),
        })
    })
    .await;
    Ok(response)
}

/// The read model that says who had which car when, by its projector's name.
const POSSESSIONS: &str = "vehicle_possessions";
/// How long matching waits for that read model to reach the fine before answering 503.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The matched fine.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FineMatchResult {
    fine_id: FineId,
    /// `matched` (charged to the trip's payer) or `assigned_to_fleet` (no trip had the car).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trip_id: Option<TripId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<CustomerId>,
    /// The account charged, `customer:<uuid>` or `company:<uuid>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    /// The fine's and the admin fee's charges.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    charge_ids: Vec<ChargeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_fee_kopecks: Option<Kopecks>,
}

/// Matches an open fine to the trip that had the car when the offence happened: the fine and
/// the admin fee are charged to the trip's payer and the driver is notified, in one append; no
/// trip had the car, the fine is assigned to the fleet for review. The trip is found in the
/// `vehicle_possessions` read model, after waiting (at most 5 s, then 503: try again) until that
/// read model has caught up with the fine, so a lagging projection never reads as "no trip".
#[utoipa::path(
    post,
    path = "/v1/fines/{fine_id}/match",
    operation_id = "match_fine",
    tag = "fines",
    params(("fine_id" = Uuid, Path, description = "The fine"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses(
        (status = 200, description = "Matched and charged, or assigned to the fleet", body = FineMatchResult),
        CommandProblems,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn match_fine(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    PathCommand { envelope, .. }: PathCommand<(roles::Service, roles::Support)>,
) -> Result<Response, Problem> {
    let fine_id = FineId(path_id(&raw_id, ProblemType::FineNotFound, "fine")?);
    // Outside the pipeline, so that a 503 is not remembered under the idempotency key.
    possessions_caught_up(&context, fine_id).await?;
    let fine_charge_id = ChargeId(Uuid::now_v7());
    let fee_charge_id = ChargeId(Uuid::now_v7());
    let context = &context;
    let response = execute(context, envelope, || async move {
        let fine_stream = fine_id.stream_id();
        let fine = load::<Fine>(&context.store, &fine_stream).await?;
        let Some(details) = fine.state.received.clone() else {
            return Err(Rejection::FineNotFound { fine_id }.into());
        };
        let now = context.clock.now();
        let Some(trip_id) = holder_at(context, &details.plate, details.occurred_at).await? else {
            let events = Fine::decide(
                &fine.state,
                &FineCommand::AssignToFleet {
                    reason: format!(
                        "no trip had the car with plate {} at {}",
                        details.plate,
                        details.occurred_at.to_rfc3339()
                    ),
                },
                &FineContext { fine_id, now },
            )?;
            return Ok(Decision {
                writes: vec![write(fine_stream, fine.expected(), &events, now)?],
                claims: Claims::default(),
                status: StatusCode::OK,
                body: json!(FineMatchResult {
                    fine_id,
                    status: FineStatus::AssignedToFleet.as_str(),
                    trip_id: None,
                    customer_id: None,
                    account_id: None,
                    charge_ids: Vec::new(),
                    admin_fee_kopecks: None,
                }),
            });
        };
        let trip_stream = trip_id.stream_id();
        let trip = load::<Trip>(&context.store, &trip_stream).await?;
        let (account_id, customer_id) = match (payer_of_trip(&trip.state), &trip.state.started) {
            (Some(account_id), Some(start)) => (account_id, start.customer_id),
            _ => return Err(Rejection::TripNotFound { trip_id }.into()),
        };
        let customer_stream = customer_id.stream_id();
        let streams = Streams::read(
            &context.store,
            &[customer_stream.clone(), account_id.stream_id()],
        )
        .await?;
        let customer = streams.fold::<Customer>(&customer_stream).await?;
        let account = streams.fold::<Account>(&account_id.stream_id()).await?;
        let decision = domain::fine::match_fine(MatchFine {
            fine_id,
            fine: &fine.state,
            trip_id,
            trip: &trip.state,
            account_id,
            account: &account.state,
            customer: &customer.state,
            fine_charge_id,
            fee_charge_id,
            admin_fee_kopecks: context.fine_admin_fee_kopecks,
            now,
        })?;
        Ok(Decision {
            writes: vec![
                write(fine_stream, fine.expected(), &decision.fine, now)?,
                account_write(account_id, &account, &decision.account, now)?,
                write(
                    customer_stream,
                    customer.expected(),
                    &decision.customer,
                    now,
                )?,
            ],
            claims: Claims::default(),
            status: StatusCode::OK,
            body: json!(FineMatchResult {
                fine_id,
                status: FineStatus::Matched.as_str(),
                trip_id: Some(trip_id),
                customer_id: Some(customer_id),
                account_id: Some(account_id.to_string()),
                charge_ids: vec![fine_charge_id, fee_charge_id],
                admin_fee_kopecks: Some(context.fine_admin_fee_kopecks),
            }),
        })
    })
    .await;
    Ok(response)
}

/// Waits until the possessions read model has applied the fine's `FineReceived` (and so every
/// trip event committed before the fine was), at most [`CATCH_UP_WAIT`]. A fine that does not
/// exist needs no wait: the decision answers 404.
async fn possessions_caught_up(context: &CommandContext, fine_id: FineId) -> Result<(), Problem> {
    let events = context
        .store
        .read_stream(&fine_id.stream_id(), 0)
        .await
        .map_err(|error| Problem::unavailable(&error))?;
    let Some(received) = events.first() else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
    loop {
        let checkpoint = projectors::checkpoint(context.store.pool(), POSSESSIONS)
            .await
            .map_err(|error| Problem::unavailable(&error))?;
        if checkpoint >= received.log_position {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Problem::new(
                ProblemType::ReadModelBehind,
                format!(
                    "the {POSSESSIONS} read model has not yet reached fine {fine_id}; try again shortly"
                ),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The trip that had the car with `plate` at `at`, from the possessions read model.
async fn holder_at(
    context: &CommandContext,
    plate: &Plate,
    at: DateTime<Utc>,
) -> Result<Option<TripId>, CommandError> {
    let trip_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT p.trip_id
         FROM vehicle_plates v
         JOIN vehicle_possessions p ON p.vehicle_id = v.vehicle_id
         WHERE v.plate = $1 AND p.during @> $2::timestamptz
         ORDER BY lower(p.during) DESC
         LIMIT 1",
    )
    .bind(plate.as_str())
    .bind(at)
    .fetch_optional(context.store.pool())
    .await
    .map_err(|error| CommandError::Store(error.into()))?;
    Ok(trip_id.map(TripId))
}
