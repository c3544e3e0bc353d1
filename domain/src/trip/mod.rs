//! The trip: one rental from taking the car to handing it back, its driving and parking time,
//! and its price from the tariff fixed when it started.
//!
//! Starting and ending a trip also involve the customer and the vehicle; those cross-aggregate
//! rules live in [`crate::rental`], which calls this decider for the trip's own part.

mod decide;
mod evolve;
pub mod pricing;
#[cfg(test)]
mod tests;

use crate::decider::{Decider, DomainEvent};
use crate::geo::GeoPoint;
use crate::ids::{CompanyId, CustomerId, QuoteId, ReservationId, TripId, VehicleId};
use crate::money::{Currency, Kopecks};
use crate::rejection::Rejection;
use crate::value::OdometerM;
use crate::zone::ZoneSurcharge;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use pricing::{PriceBreakdown, price};

/// The trip decider.
#[derive(Debug)]
pub struct Trip;

/// Rates a trip is charged at, fixed when it starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tariff {
    /// Which tariff (`standard`), for people and reports.
    pub name: String,
    /// Currency of every rate.
    pub currency: Currency,
    /// Per started minute of driving.
    pub driving_kopecks_per_minute: Kopecks,
    /// Per started minute parked during the trip.
    pub parking_kopecks_per_minute: Kopecks,
    /// Kilometres included in the time price.
    pub included_km: u32,
    /// Per started kilometre beyond `included_km`.
    pub kopecks_per_extra_km: Kopecks,
}

/// Where a trip is in its life.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum TripPhase {
    /// No trip with this id has started.
    #[default]
    NotStarted,
    /// The customer is driving, since the given time.
    Driving { since: DateTime<Utc> },
    /// The car is parked within the trip, since the given time.
    Parked { since: DateTime<Utc> },
    /// The trip is over.
    Ended { ended_at: DateTime<Utc> },
}

/// What a trip's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TripState {
    /// The facts fixed at start, or `None` before the trip started.
    pub started: Option<TripStart>,
    /// Where the trip is now.
    pub phase: TripPhase,
    /// Seconds spent driving in finished driving spells.
    pub driving_s: u64,
    /// Seconds spent parked in finished parking spells.
    pub parking_s: u64,
    /// The final price, once ended.
    pub price: Option<PriceBreakdown>,
}

impl TripState {
    /// Whether the trip has started and not yet ended.
    pub fn is_active(&self) -> bool {
        matches!(
            self.phase,
            TripPhase::Driving { .. } | TripPhase::Parked { .. }
        )
    }

    /// Driving and parking seconds up to `now`, counting the spell in progress.
    pub fn durations_until(&self, now: DateTime<Utc>) -> (u64, u64) {
        match self.phase {
            TripPhase::Driving { since } => (self.driving_s + spell_s(since, now), self.parking_s),
            TripPhase::Parked { since } => (self.driving_s, self.parking_s + spell_s(since, now)),
            _ => (self.driving_s, self.parking_s),
        }
    }
}

/// The seconds of a spell from `from` to `to`, counted as ticks of the clock's seconds (whole
/// seconds of each end subtracted), never negative. Consecutive spells then add up to exactly the
/// whole trip; truncating each spell's own duration instead would lose up to a second per spell,
/// and with it, sometimes, a started minute.
fn spell_s(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from(to.timestamp() - from.timestamp()).unwrap_or(0)
}

/// The facts fixed when a trip starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TripStart {
    /// The trip.
    pub trip_id: TripId,
    /// Who rents.
    pub customer_id: CustomerId,
    /// Which car.
    pub vehicle_id: VehicleId,
    /// The rates, fixed for the whole trip.
    pub tariff: Tariff,
    /// Where the car stood.
    pub start_position: GeoPoint,
    /// The odometer at the start.
    pub start_odometer_m: OdometerM,
    /// The quote whose tariff the trip started on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_id: Option<QuoteId>,
    /// The reservation the trip turned into, if any (its tariff is the trip's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<ReservationId>,
    /// The company the customer drove for when the trip started: its account pays the trip's
    /// price, penalties and fines. `None`: the customer pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<CompanyId>,
}

/// What can be asked of a trip.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command")]
pub enum TripCommand {
    /// Begin the trip (the rental workflow checks customer and car first).
    Start(TripStart),
    /// Park within the trip: the parking rate applies.
    Park,
    /// Drive on after parking.
    Resume,
    /// Hand the car back where it stands, with the odometer it shows (the rental workflow checks
    /// zone and locks first, and names the surcharge of the zone the car stands in).
    End {
        end_position: GeoPoint,
        end_odometer_m: OdometerM,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        surcharge: Option<ZoneSurcharge>,
    },
}

/// What happened in a trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TripEvent {
    /// The trip started: the car is the customer's and the tariff is fixed.
    TripStarted {
        #[serde(flatten)]
        start: TripStart,
        started_at: DateTime<Utc>,
    },
    /// The customer parked within the trip.
    TripParked {
        trip_id: TripId,
        parked_at: DateTime<Utc>,
    },
    /// The customer drove on.
    TripResumed {
        trip_id: TripId,
        resumed_at: DateTime<Utc>,
    },
    /// The trip ended and was priced.
    TripEnded {
        trip_id: TripId,
        customer_id: CustomerId,
        vehicle_id: VehicleId,
        end_position: GeoPoint,
        end_odometer_m: OdometerM,
        ended_at: DateTime<Utc>,
        price: PriceBreakdown,
    },
}

impl DomainEvent for TripEvent {}

/// What a trip decision needs from outside.
#[derive(Clone, Debug)]
pub struct TripContext {
    /// The trip the command is for.
    pub trip_id: TripId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

impl Decider for Trip {
    type State = TripState;
    type Command = TripCommand;
    type Event = TripEvent;
    type Context = TripContext;

    fn decide(
        state: &TripState,
        command: &TripCommand,
        context: &TripContext,
    ) -> Result<Vec<TripEvent>, Rejection> {
        decide::decide(state, command, context)
    }

    fn evolve(state: TripState, event: &TripEvent) -> TripState {
        evolve::evolve(state, event)
    }
}
