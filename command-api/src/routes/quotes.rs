//! Quotes: a customer asks what a car would cost now, and gets a price valid for a few minutes,
//! multiplied by the demand in the car's pricing zone.

use crate::CommandContext;
use crate::demand::observe;
use crate::load::Streams;
use crate::pipeline::{Decision, execute, write};
use crate::request::{Command, customer_of};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::customer::Customer;
use domain::ids::{QuoteId, VehicleId};
use domain::pricing::{DemandObservation, PricingZone, WaitingTariff};
use domain::quote::{Quote, QuoteEvent};
use domain::rental::{self, RequestQuote};
use domain::trip::Tariff;
use domain::vehicle::Vehicle;
use event_store::Claims;
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, roles};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/quotes` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestQuoteBody {
    /// The available car to price.
    vehicle_id: Uuid,
}

/// A price for one car, for the asking customer, until `expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QuoteIssued {
    quote_id: QuoteId,
    vehicle_id: VehicleId,
    /// The car's pricing zone (a cell of the city's grid).
    zone: PricingZone,
    /// The demand multiplier in permille (1250 = 1.25×), applied to every per-minute rate.
    multiplier_permille: u32,
    /// The supply and demand in the zone the multiplier was computed from.
    observed: DemandObservation,
    /// The trip's rates: driving, parking, included kilometres and the per-km rate.
    tariff: Tariff,
    /// A reservation's free waiting minutes, paid waiting rate and limit.
    waiting: WaitingTariff,
    issued_at: DateTime<Utc>,
    /// Pass `quote_id` to `POST /v1/trips` or `POST /v1/reservations` before this time.
    expires_at: DateTime<Utc>,
}

/// A customer asks for the current price of an available car.
#[utoipa::path(
    post,
    path = "/v1/quotes",
    operation_id = "request_quote",
    tag = "quotes",
    request_body = RequestQuoteBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Quoted: the price holds until `expires_at`", body = QuoteIssued), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn request(
    State(context): State<CommandContext>,
    Command {
        caller,
        envelope,
        body,
        ..
    }: Command<RequestQuoteBody, roles::Customer>,
) -> Result<Response, Problem> {
    let customer_id = customer_of(&caller)?;
    let vehicle_id = VehicleId(body.vehicle_id);
    let quote_id = QuoteId(Uuid::now_v7());
    let context = &context;
    let response = execute(context, envelope, || async move {
        let (customer_stream, vehicle_stream, quote_stream) = (
            customer_id.stream_id(),
            vehicle_id.stream_id(),
            quote_id.stream_id(),
        );
        let streams = Streams::read(
            &context.store,
            &[
                customer_stream.clone(),
                vehicle_stream.clone(),
                quote_stream.clone(),
            ],
        )
        .await?;
        let customer = streams.fold::<Customer>(&customer_stream).await?;
        let vehicle = streams.fold::<Vehicle>(&vehicle_stream).await?;
        let quote = streams.fold::<Quote>(&quote_stream).await?;
        let now = context.clock.now();
        let pricing = &context.pricing;
        let observed = match &vehicle.state.telemetry {
            Some(telemetry) => {
                let zone = pricing.policy.zone_grid.zone_of(&telemetry.position);
                observe(
                    context.store.pool(),
                    &pricing.policy,
                    zone,
                    customer_id,
                    now,
                )
                .await?
            }
            // No such car: the decision refuses it before any observation matters.
            None => DemandObservation {
                free_cars: 0,
                recent_customers: 0,
                window_s: pricing.policy.demand_window_s,
            },
        };
        let events = rental::request_quote(RequestQuote {
            quote_id,
            now,
            quote: &quote.state,
            customer_id,
            customer: &customer.state,
            vehicle_id,
            vehicle: &vehicle.state,
            observed,
            standard: &pricing.standard,
            policy: &pricing.policy,
        })?;
        let body = events.iter().map(|event| match event {
            QuoteEvent::QuoteIssued { details, issued_at } => QuoteIssued {
                quote_id,
                vehicle_id,
                zone: details.zone,
                multiplier_permille: details.multiplier_permille,
                observed: details.observed,
                tariff: details.terms.tariff.clone(),
                waiting: details.terms.waiting.clone(),
                issued_at: *issued_at,
                expires_at: details.expires_at,
            },
        });
        let body = json!(body.collect::<Vec<_>>().pop());
        Ok(Decision {
            writes: vec![write(quote_stream, quote.expected(), &events, now)?],
            claims: Claims::default(),
            status: StatusCode::CREATED,
            body,
        })
    })
    .await;
    Ok(response)
}
