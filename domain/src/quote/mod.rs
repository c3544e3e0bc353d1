//! The quote: a price offered to one customer for one car, valid for a few minutes. It fixes the
//! terms (trip tariff and reservation waiting) at the demand multiplier of the car's pricing
//! zone, and records the observations the multiplier came from, so that the price of any trip or
//! reservation started on it can be explained later (see [`crate::pricing`]).
//!
//! Whether a customer may ask for a quote for a car is decided in [`crate::rental`]; this
//! decider fixes the price and answers whether a quote may be used.

#[cfg(test)]
mod tests;

use crate::decider::{Decider, DomainEvent};
use crate::geo::GeoPoint;
use crate::ids::{CustomerId, QuoteId, VehicleId};
use crate::pricing::{DemandObservation, PricingPolicy, PricingZone, RentalTerms};
use crate::rejection::{FieldError, Rejection};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The quote decider.
#[derive(Debug)]
pub struct Quote;

/// What was offered, fixed when the quote was issued.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuoteDetails {
    /// The quote.
    pub quote_id: QuoteId,
    /// Who it is for.
    pub customer_id: CustomerId,
    /// Which car it prices.
    pub vehicle_id: VehicleId,
    /// Where the car stood.
    pub position: GeoPoint,
    /// The pricing zone of that position.
    pub zone: PricingZone,
    /// What was seen in the zone.
    pub observed: DemandObservation,
    /// The multiplier those observations give, in permille.
    pub multiplier_permille: u32,
    /// The standard terms the multiplier was applied to.
    pub base: RentalTerms,
    /// The terms offered: `base` with the multiplier applied.
    pub terms: RentalTerms,
    /// Until when the quote may be used (exclusive).
    pub expires_at: DateTime<Utc>,
}

/// What a quote's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QuoteState {
    /// The offer, or `None` if no quote with this id was issued.
    pub issued: Option<QuoteDetails>,
}

impl QuoteState {
    /// The terms of quote `quote_id` for `customer_id` starting on `vehicle_id` at `now`, or why
    /// they may not be used.
    pub fn terms_for(
        &self,
        quote_id: QuoteId,
        customer_id: CustomerId,
        vehicle_id: VehicleId,
        now: DateTime<Utc>,
    ) -> Result<&RentalTerms, Rejection> {
        let Some(quote) = self.issued.as_ref().filter(|q| q.quote_id == quote_id) else {
            return Err(Rejection::QuoteNotFound { quote_id });
        };
        if quote.customer_id != customer_id {
            return Err(Rejection::QuoteOfAnotherCustomer { quote_id });
        }
        if quote.vehicle_id != vehicle_id {
            return Err(Rejection::QuoteForAnotherVehicle {
                quote_id,
                quoted_vehicle_id: quote.vehicle_id,
                vehicle_id,
            });
        }
        if now >= quote.expires_at {
            return Err(Rejection::QuoteExpired {
                quote_id,
                expired_at: quote.expires_at,
            });
        }
        Ok(&quote.terms)
    }
}

/// What can be asked of a quote.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command")]
pub enum QuoteCommand {
    /// Price `vehicle_id`, standing at `position`, for `customer_id` (the rental workflow checks
    /// customer and car first).
    Issue {
        customer_id: CustomerId,
        vehicle_id: VehicleId,
        position: GeoPoint,
        observed: DemandObservation,
        standard: RentalTerms,
        policy: PricingPolicy,
    },
}

/// What happened to a quote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum QuoteEvent {
    /// A price was offered.
    QuoteIssued {
        #[serde(flatten)]
        details: QuoteDetails,
        issued_at: DateTime<Utc>,
    },
}

impl DomainEvent for QuoteEvent {}

/// What a quote decision needs from outside.
#[derive(Clone, Debug)]
pub struct QuoteContext {
    /// The quote the command is for.
    pub quote_id: QuoteId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

impl Decider for Quote {
    type State = QuoteState;
    type Command = QuoteCommand;
    type Event = QuoteEvent;
    type Context = QuoteContext;

    fn decide(
        state: &QuoteState,
        command: &QuoteCommand,
        context: &QuoteContext,
    ) -> Result<Vec<QuoteEvent>, Rejection> {
        let QuoteContext { quote_id, now } = *context;
        match command {
            QuoteCommand::Issue {
                customer_id,
                vehicle_id,
                position,
                observed,
                standard,
                policy,
            } => {
                if state.issued.is_some() {
                    return Err(Rejection::QuoteAlreadyIssued { quote_id });
                }
                // The observation is recorded as the reason for the price: it must be the one
                // the policy asks for, or the explanation would not add up.
                if observed.window_s != policy.demand_window_s {
                    return Err(FieldError::new(
                        "observed.window_s",
                        "must be the policy's demand window",
                    )
                    .into());
                }
                let multiplier_permille = policy.multiplier_permille(observed);
                Ok(vec![QuoteEvent::QuoteIssued {
                    details: QuoteDetails {
                        quote_id,
                        customer_id: *customer_id,
                        vehicle_id: *vehicle_id,
                        position: *position,
                        zone: policy.zone_grid.zone_of(position),
                        observed: *observed,
                        multiplier_permille,
                        base: standard.clone(),
                        terms: standard.multiplied(multiplier_permille),
                        expires_at: now + Duration::seconds(i64::from(policy.quote_valid_s)),
                    },
                    issued_at: now,
                }])
            }
        }
    }

    fn evolve(mut state: QuoteState, event: &QuoteEvent) -> QuoteState {
        match event {
            QuoteEvent::QuoteIssued { details, .. } => state.issued = Some(details.clone()),
        }
        state
    }
}
