//! Reservations: a customer holds an available car for a while before the trip, cancels, or
//! lets it expire (the expiry worker sends that command); starting a trip in the car turns the
//! reservation into the trip (`POST /v1/trips`).

use crate::CommandContext;
use crate::charges::{account_write, load_account};
use crate::holdings::customer_holdings;
use crate::load::{Loaded, Streams, load};
use crate::pipeline::{CommandError, Decision, Envelope, execute, write};
use crate::request::{Command, PathCommand, customer_of, path_id};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::account::{AccountContext, AccountId, ChargeId, paid_waiting_charge};
use domain::customer::Customer;
use domain::ids::{CustomerId, QuoteId, ReservationId, VehicleId};
use domain::pricing::RentalTerms;
use domain::quote::Quote;
use domain::rental::{self, ReleaseBy, ReleaseReservation, Reserve};
use domain::reservation::{Reservation, ReservationEvent, ReservationState, WaitingCharge};
use domain::vehicle::Vehicle;
use event_store::{Claims, EventStore};
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, ProblemType, roles};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/reservations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReserveBody {
    /// The available car to hold.
    vehicle_id: Uuid,
    /// A quote of this customer for this car, still valid: its terms apply. Without one, the
    /// standard terms apply.
    #[serde(default)]
    quote_id: Option<Uuid>,
}

/// A reservation made.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReservationMade {
    reservation_id: ReservationId,
    vehicle_id: VehicleId,
    /// Waiting is free until then, and charged per started minute after.
    free_until: DateTime<Utc>,
    /// The reservation expires then, and the car is free again.
    expires_at: DateTime<Utc>,
    /// The waiting tariff, and the trip tariff the reservation turns into.
    terms: RentalTerms,
}

/// A reservation ended without a trip.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReservationEnded {
    reservation_id: ReservationId,
    /// `cancelled` or `expired`.
    status: &'static str,
    /// The waiting charged.
    waiting: WaitingCharge,
    /// The charge on the customer's account for the paid waiting, absent when it was all free.
    charge_id: Option<ChargeId>,
}

/// A customer reserves an available car, at the standard terms or those of their quote.
#[utoipa::path(
    post,
    path = "/v1/reservations",
    operation_id = "reserve_vehicle",
    tag = "reservations",
    request_body = ReserveBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Reserved: the car is held for the customer", body = ReservationMade), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn reserve(
    State(context): State<CommandContext>,
    Command {
        caller,
        envelope,
        body,
        ..
    }: Command<ReserveBody, roles::Customer>,
) -> Result<Response, Problem> {
    let customer_id = customer_of(&caller)?;
    let vehicle_id = VehicleId(body.vehicle_id);
    let quote_id = body.quote_id.map(QuoteId);
    let reservation_id = ReservationId(Uuid::now_v7());
    let context = &context;
    let response = execute(context, envelope, || async move {
        let (customer_stream, vehicle_stream, reservation_stream) = (
            customer_id.stream_id(),
            vehicle_id.stream_id(),
            reservation_id.stream_id(),
        );
        let mut stream_ids = vec![
            customer_stream.clone(),
            vehicle_stream.clone(),
            reservation_stream.clone(),
        ];
        stream_ids.extend(quote_id.map(|id| id.stream_id()));
        let streams = Streams::read(&context.store, &stream_ids).await?;
        let customer = streams.fold::<Customer>(&customer_stream).await?;
        let vehicle = streams.fold::<Vehicle>(&vehicle_stream).await?;
        let reservation = streams.fold::<Reservation>(&reservation_stream).await?;
        let quote = match quote_id {
            Some(id) => Some((id, streams.fold::<Quote>(&id.stream_id()).await?.state)),
            None => None,
        };
        let (customer_active_trip, customer_reservation) =
            customer_holdings(&context.store, customer_id).await?;
        let now = context.clock.now();
        let decision = rental::reserve(Reserve {
            reservation_id,
            now,
            reservation: &reservation.state,
            customer_id,
            customer: &customer.state,
            customer_active_trip,
            customer_reservation,
            vehicle_id,
            vehicle: &vehicle.state,
            quote: quote.as_ref().map(|(id, state)| (*id, state)),
            standard: &context.pricing.standard,
        })?;
        let body = decision.reservation.iter().find_map(|event| match event {
            ReservationEvent::ReservationMade { details } => Some(ReservationMade {
                reservation_id,
                vehicle_id,
                free_until: details.free_until,
                expires_at: details.expires_at,
                terms: details.terms.clone(),
            }),
            _ => None,
        });
        Ok(Decision {
            writes: vec![
                write(
                    reservation_stream.clone(),
                    reservation.expected(),
                    &decision.reservation,
                    now,
                )?,
                write(vehicle_stream, vehicle.expected(), &decision.vehicle, now)?,
            ],
            claims: Claims {
                acquire: decision.acquire,
                holder: Some(reservation_stream),
                release: decision.release,
            },
            status: StatusCode::CREATED,
            body: json!(body),
        })
    })
    .await;
    Ok(response)
}

/// The customer lets the car go; the waiting so far is charged.
#[utoipa::path(
    post,
    path = "/v1/reservations/{reservation_id}/cancel",
    operation_id = "cancel_reservation",
    tag = "reservations",
    params(("reservation_id" = Uuid, Path, description = "The customer's reservation"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Cancelled: the car is available again", body = ReservationEnded), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn cancel(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    PathCommand {
        caller, envelope, ..
    }: PathCommand<roles::Customer>,
) -> Result<Response, Problem> {
    let customer_id = customer_of(&caller)?;
    let reservation_id = ReservationId(path_id(
        &raw_id,
        ProblemType::ReservationNotFound,
        "reservation",
    )?);
    Ok(release(
        &context,
        envelope,
        reservation_id,
        ReleaseBy::Cancel,
        Some(customer_id),
    )
    .await)
}

/// Expires a reservation whose limit has passed, as the expiry worker does: through the same
/// pipeline as every command, recorded with the actor `service:reservation-expiry`. Expiring a
/// reservation that has already ended, or is not yet due, is refused and changes nothing.
pub async fn expire_reservation(
    context: &CommandContext,
    reservation_id: ReservationId,
) -> Response {
    let path = format!("/internal/reservations/{reservation_id}/expire");
    let envelope = match Envelope::read(
        None,
        "service:reservation-expiry",
        &HeaderMap::new(),
        &path,
        &[],
    ) {
        Ok(envelope) => envelope,
        Err(problem) => return problem.into_response(),
    };
    release(context, envelope, reservation_id, ReleaseBy::Expire, None).await
}

/// Loads a reservation and, for a customer, checks it is theirs.
async fn owned_reservation(
    store: &EventStore,
    reservation_id: ReservationId,
    customer_id: Option<CustomerId>,
) -> Result<Loaded<ReservationState>, CommandError> {
    let reservation = load::<Reservation>(store, &reservation_id.stream_id()).await?;
    match (&reservation.state.made, customer_id) {
        (None, _) => Err(domain::Rejection::ReservationNotFound { reservation_id }.into()),
        (Some(made), Some(customer_id)) if made.customer_id != customer_id => {
            Err(Problem::forbidden(format!(
                "reservation {reservation_id} belongs to another customer"
            ))
            .into())
        }
        (Some(_), _) => Ok(reservation),
    }
}

async fn release(
    context: &CommandContext,
    envelope: Envelope,
    reservation_id: ReservationId,
    by: ReleaseBy,
    customer_id: Option<CustomerId>,
) -> Response {
    let charge_id = ChargeId(Uuid::now_v7());
    execute(context, envelope, || async move {
        let reservation = owned_reservation(&context.store, reservation_id, customer_id).await?;
        let Some(made) = &reservation.state.made else {
            return Err(domain::Rejection::ReservationNotFound { reservation_id }.into());
        };
        let vehicle_stream = made.vehicle_id.stream_id();
        let vehicle = load::<Vehicle>(&context.store, &vehicle_stream).await?;
        let now = context.clock.now();
        let decision = rental::release_reservation(ReleaseReservation {
            reservation_id,
            by,
            now,
            reservation: &reservation.state,
            vehicle: &vehicle.state,
        })?;
        let ended = decision.reservation.iter().find_map(|event| match event {
            ReservationEvent::ReservationCancelled { waiting, .. } => {
                Some(("cancelled", waiting.clone()))
            }
            ReservationEvent::ReservationExpired { waiting, .. } => {
                Some(("expired", waiting.clone()))
            }
            _ => None,
        });
        let mut writes = vec![
            write(
                reservation_id.stream_id(),
                reservation.expected(),
                &decision.reservation,
                now,
            )?,
            write(vehicle_stream, vehicle.expected(), &decision.vehicle, now)?,
        ];
        // The paid waiting is charged to the customer in the same append as the end.
        let mut charge = None;
        if let Some(ending) = decision.reservation.first() {
            let account_id = AccountId::Customer(made.customer_id);
            let account = load_account(&context.store, account_id).await?;
            let account_context = AccountContext { account_id, now };
            if let Some(event) =
                paid_waiting_charge(&account.state, &account_context, charge_id, ending)?
            {
                writes.push(account_write(account_id, &account, &[event], now)?);
                charge = Some(charge_id);
            }
        }
        let body = ended.map(|(status, waiting)| ReservationEnded {
            reservation_id,
            status,
            waiting,
            charge_id: charge,
        });
        Ok(Decision {
            writes,
            claims: Claims {
                acquire: decision.acquire,
                holder: None,
                release: decision.release,
            },
            status: StatusCode::OK,
            body: json!(body),
        })
    })
    .await
}
