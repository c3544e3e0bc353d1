//! Trips: a customer starts one on an available car, parks and resumes, and ends it.

use crate::CommandContext;
use crate::charges::{account_write, load_account};
use crate::holdings::customer_holdings;
use crate::load::{Streams, load};
use crate::pipeline::{CommandError, Decision, Envelope, execute, write};
use crate::request::{Command, PathCommand, customer_of, path_id};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::Decider;
use domain::account::{
    AccountContext, AccountId, ChargeId, paid_waiting_charge, payer_of_trip, trip_price_charge,
};
use domain::customer::Customer;
use domain::ids::{CustomerId, QuoteId, TripId, VehicleId};
use domain::quote::Quote;
use domain::rental::{self, EndTrip, StartTrip};
use domain::reservation::Reservation;
use domain::trip::PriceBreakdown;
use domain::trip::{Trip, TripCommand, TripContext, TripEvent, TripState};
use domain::vehicle::{Vehicle, VehicleStatus};
use event_store::Claims;
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, ProblemType, roles};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/trips` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartTripBody {
    /// The available car to take, or the car the customer reserved (the reservation turns into
    /// the trip, on the reservation's terms).
    vehicle_id: Uuid,
    /// A quote of this customer for this car, still valid: the trip uses exactly its tariff.
    /// Without one, the standard tariff applies.
    #[serde(default)]
    quote_id: Option<Uuid>,
}

/// A started trip.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TripCreated {
    trip_id: TripId,
}

/// A trip's new phase.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TripPhaseChanged {
    trip_id: TripId,
    /// `parked` or `driving`.
    status: &'static str,
}

/// An ended trip and its price.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TripFinished {
    trip_id: TripId,
    /// Always `ended`.
    status: &'static str,
    price: Option<PriceBreakdown>,
    /// The charge for the price, absent when the trip cost nothing.
    charge: Option<TripCharge>,
}

/// Where a price or paid waiting was charged.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TripCharge {
    charge_id: ChargeId,
    /// The payer: `customer:<uuid>`, or `company:<uuid>` for an employee's trip.
    account_id: String,
}

/// A customer starts a trip on an available car at the standard tariff or their quote's, or on
/// the car they reserved, which turns the reservation into the trip.
#[utoipa::path(
    post,
    path = "/v1/trips",
    operation_id = "start_trip",
    tag = "trips",
    request_body = StartTripBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Started: the car is the customer's", body = TripCreated), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn start(
    State(context): State<CommandContext>,
    Command {
        caller,
        envelope,
        body,
        ..
    }: Command<StartTripBody, roles::Customer>,
) -> Result<Response, Problem> {
    let customer_id = customer_of(&caller)?;
    let vehicle_id = VehicleId(body.vehicle_id);
    let quote_id = body.quote_id.map(QuoteId);
    let trip_id = TripId(Uuid::now_v7());
    let waiting_charge_id = ChargeId(Uuid::now_v7());
    // The card hold of this start (see `payments::hold`): taken inside the decision, settled
    // with the answer.
    let hold = context.payments.as_ref().map(|payments| {
        payments.start_hold(
            customer_id,
            trip_id,
            &envelope.scope,
            envelope.key.as_deref(),
        )
    });
    let context = &context;
    let hold_ref = hold.as_ref();
    let response = execute(context, envelope, || async move {
        let (customer_stream, vehicle_stream, trip_stream) = (
            customer_id.stream_id(),
            vehicle_id.stream_id(),
            trip_id.stream_id(),
        );
        let mut stream_ids = vec![
            customer_stream.clone(),
            vehicle_stream.clone(),
            trip_stream.clone(),
        ];
        stream_ids.extend(quote_id.map(|id| id.stream_id()));
        let streams = Streams::read(&context.store, &stream_ids).await?;
        let customer = streams.fold::<Customer>(&customer_stream).await?;
        let vehicle = streams.fold::<Vehicle>(&vehicle_stream).await?;
        let trip = streams.fold::<Trip>(&trip_stream).await?;
        let quote = match quote_id {
            Some(id) => Some((id, streams.fold::<Quote>(&id.stream_id()).await?.state)),
            None => None,
        };
        // A car reserved by this customer: the reservation's stream is part of the decision and
        // of the append (its version guards against a concurrent cancel or expiry).
        let reservation = match vehicle.state.status {
            VehicleStatus::Reserved {
                reservation_id,
                customer_id: holder,
            } if holder == customer_id => Some((
                reservation_id,
                load::<Reservation>(&context.store, &reservation_id.stream_id()).await?,
            )),
            _ => None,
        };
        let (customer_active_trip, customer_reservation) =
            customer_holdings(&context.store, customer_id).await?;
        let now = context.clock.now();
        let decision = rental::start_trip(StartTrip {
            trip_id,
            now,
            trip: &trip.state,
            customer_id,
            customer: &customer.state,
            customer_active_trip,
            vehicle_id,
            vehicle: &vehicle.state,
            tariff: (*context.tariff).clone(),
            customer_reservation,
            reservation: reservation.as_ref().map(|(_, loaded)| &loaded.state),
            quote: quote.as_ref().map(|(id, state)| (*id, state)),
        })?;
        let mut writes = vec![
            write(trip_stream.clone(), trip.expected(), &decision.trip, now)?,
            write(vehicle_stream, vehicle.expected(), &decision.vehicle, now)?,
        ];
        // Money is held on the card of a customer who pays for their own trips; a declined
        // card refuses the start. (A company's employees are invoiced to the company.)
        let self_paid = decision.trip.iter().any(|event| {
            matches!(event, TripEvent::TripStarted { start, .. } if start.company_id.is_none())
        });
        let hold = hold_ref.filter(|_| self_paid);
        // The account is read only when something goes on it: paid waiting or a hold.
        let account_id = AccountId::Customer(customer_id);
        let account = match reservation.is_some() || hold.is_some() {
            true => Some(load_account(&context.store, account_id).await?),
            false => None,
        };
        let mut account_events = Vec::new();
        if let Some((reservation_id, loaded)) = &reservation {
            writes.push(write(
                reservation_id.stream_id(),
                loaded.expected(),
                &decision.reservation,
                now,
            )?);
            // Waiting past the free minutes is charged to the customer with the conversion.
            if let (Some(converted), Some(account)) = (decision.reservation.first(), &account) {
                let account_context = AccountContext { account_id, now };
                if let Some(charge) = paid_waiting_charge(
                    &account.state,
                    &account_context,
                    waiting_charge_id,
                    converted,
                )? {
                    account_events.push(charge);
                }
            }
        }
        if let (Some(hold), Some(account)) = (hold, &account) {
            // The account's state as it stands after the paid waiting, if any.
            let mut state = account.state.clone();
            for event in &account_events {
                state = domain::account::Account::evolve(state, event);
            }
            account_events.extend(hold.take(&state, now).await.map_err(hold_refused)?);
        }
        if let (false, Some(account)) = (account_events.is_empty(), &account) {
            writes.push(account_write(account_id, account, &account_events, now)?);
        }
        Ok(Decision {
            writes,
            claims: Claims {
                acquire: decision.acquire,
                holder: Some(trip_stream),
                release: decision.release,
            },
            status: StatusCode::CREATED,
            body: json!(TripCreated { trip_id }),
        })
    })
    .await;
    if let Some(hold) = &hold {
        hold.settle(response.status() == StatusCode::CREATED).await;
    }
    Ok(response)
}

/// How a start without a hold is answered.
fn hold_refused(refused: payments::HoldRefused) -> CommandError {
    match refused {
        payments::HoldRefused::Declined(reason) => {
            CommandError::Rejected(domain::Rejection::PaymentDeclined { reason })
        }
        payments::HoldRefused::Released => CommandError::Refused(Problem::new(
            ProblemType::HoldReleased,
            "the card hold made for this Idempotency-Key was released; start again with a new Idempotency-Key",
        )),
        payments::HoldRefused::Unavailable(reason) => CommandError::Refused(Problem::new(
            ProblemType::PaymentUnavailable,
            format!(
                "no hold could be made on the card ({reason}); retry with the same Idempotency-Key"
            ),
        )),
        payments::HoldRefused::Rejected(rejection) => CommandError::Rejected(rejection),
        payments::HoldRefused::Failed(error) => CommandError::Refused(Problem::unavailable(&error)),
    }
}

/// Loads a trip and checks that `customer_id` is its customer.
async fn owned_trip(
    context: &CommandContext,
    trip_id: TripId,
    customer_id: CustomerId,
) -> Result<crate::load::Loaded<TripState>, CommandError> {
    let trip = load::<Trip>(&context.store, &trip_id.stream_id()).await?;
    match &trip.state.started {
        None => Err(domain::Rejection::TripNotFound { trip_id }.into()),
        Some(start) if start.customer_id != customer_id => {
            Err(Problem::forbidden(format!("trip {trip_id} belongs to another customer")).into())
        }
        Some(_) => Ok(trip),
    }
}

/// What the park, resume and end routes share: a customer acting on their own trip.
struct TripRequest {
    customer_id: CustomerId,
    trip_id: TripId,
    envelope: Envelope,
}

impl TripRequest {
    fn read(raw_id: &str, command: PathCommand<roles::Customer>) -> Result<Self, Problem> {
        Ok(Self {
            customer_id: customer_of(&command.caller)?,
            trip_id: TripId(path_id(raw_id, ProblemType::TripNotFound, "trip")?),
            envelope: command.envelope,
        })
    }
}

/// Park or resume: the trip's own rules, no other aggregate involved.
async fn change_phase(
    context: CommandContext,
    request: TripRequest,
    command: TripCommand,
    status: &'static str,
) -> Response {
    let context = &context;
    let command = &command;
    let TripRequest {
        customer_id,
        trip_id,
        envelope,
    } = request;
    execute(context, envelope, || async move {
        let trip = owned_trip(context, trip_id, customer_id).await?;
        let now = context.clock.now();
        let events = Trip::decide(&trip.state, command, &TripContext { trip_id, now })?;
        Ok(Decision {
            writes: vec![write(trip_id.stream_id(), trip.expected(), &events, now)?],
            claims: Claims::default(),
            status: StatusCode::OK,
            body: json!(TripPhaseChanged { trip_id, status }),
        })
    })
    .await
}

/// The customer parks within the trip; the parking rate applies until they resume.
#[utoipa::path(
    post,
    path = "/v1/trips/{trip_id}/park",
    operation_id = "park_trip",
    tag = "trips",
    params(("trip_id" = Uuid, Path, description = "The customer's trip"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Parked", body = TripPhaseChanged), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn park(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    command: PathCommand<roles::Customer>,
) -> Result<Response, Problem> {
    let request = TripRequest::read(&raw_id, command)?;
    Ok(change_phase(context, request, TripCommand::Park, "parked").await)
}

/// The customer drives on.
#[utoipa::path(
    post,
    path = "/v1/trips/{trip_id}/resume",
    operation_id = "resume_trip",
    tag = "trips",
    params(("trip_id" = Uuid, Path, description = "The customer's trip"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Driving again", body = TripPhaseChanged), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn resume(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    command: PathCommand<roles::Customer>,
) -> Result<Response, Problem> {
    let request = TripRequest::read(&raw_id, command)?;
    Ok(change_phase(context, request, TripCommand::Resume, "driving").await)
}

/// The customer ends the trip where the car stands; the answer carries the price.
#[utoipa::path(
    post,
    path = "/v1/trips/{trip_id}/end",
    operation_id = "end_trip",
    tag = "trips",
    params(("trip_id" = Uuid, Path, description = "The customer's trip"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Ended and priced; the car is available again", body = TripFinished), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn end(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    command: PathCommand<roles::Customer>,
) -> Result<Response, Problem> {
    let TripRequest {
        customer_id,
        trip_id,
        envelope,
    } = TripRequest::read(&raw_id, command)?;
    // The id of the refuel task the end opens if the tank is low (a new stream of its own), and
    // of the charge for the price.
    let service_task_id = domain::ids::ServiceTaskId(Uuid::now_v7());
    let charge_id = ChargeId(Uuid::now_v7());
    let context = &context;
    let response = execute(context, envelope, || async move {
        let trip = owned_trip(context, trip_id, customer_id).await?;
        let Some(start) = &trip.state.started else {
            return Err(domain::Rejection::TripNotFound { trip_id }.into());
        };
        let vehicle_stream = start.vehicle_id.stream_id();
        let vehicle = load::<Vehicle>(&context.store, &vehicle_stream).await?;
        let now = context.clock.now();
        let decision = rental::end_trip(EndTrip {
            trip_id,
            now,
            trip: &trip.state,
            vehicle: &vehicle.state,
            area: &context.area,
            fleet: &context.fleet,
            service_task_id,
        })?;
        let ended = decision
            .trip
            .iter()
            .find(|event| matches!(event, TripEvent::TripEnded { .. }));
        let price = ended.and_then(|event| match event {
            TripEvent::TripEnded { price, .. } => Some(price.clone()),
            _ => None,
        });
        let mut writes = vec![
            write(trip_id.stream_id(), trip.expected(), &decision.trip, now)?,
            write(vehicle_stream, vehicle.expected(), &decision.vehicle, now)?,
        ];
        // The price is charged to the trip's payer (its company, or the customer) in the same
        // append: the trip never ends without its charge.
        let mut charged = None;
        if let (Some(ended), Some(account_id)) = (ended, payer_of_trip(&trip.state)) {
            let account = load_account(&context.store, account_id).await?;
            let account_context = AccountContext { account_id, now };
            if let Some(charge) =
                trip_price_charge(&account.state, &account_context, charge_id, ended)?
            {
                writes.push(account_write(account_id, &account, &[charge], now)?);
                charged = Some(TripCharge {
                    charge_id,
                    account_id: account_id.to_string(),
                });
            }
        }
        if let Some(task) = &decision.service_task {
            // Same append as the trip's end: the car never shows as available in between.
            writes.push(write(
                task.task_id.stream_id(),
                event_store::ExpectedVersion::NoStream,
                &task.events,
                now,
            )?);
        }
        Ok(Decision {
            writes,
            claims: Claims {
                acquire: decision.acquire,
                holder: None,
                release: decision.release,
            },
            status: StatusCode::OK,
            body: json!(TripFinished {
                trip_id,
                status: "ended",
                price,
                charge: charged,
            }),
        })
    })
    .await;
    Ok(response)
}
