//! The reservation: a car held for one customer before their trip. The first minutes of waiting
//! are free, then each started minute costs the waiting rate, up to a limit at which the
//! reservation expires by itself. It ends in one of three ways — the customer starts a trip in
//! the car (converted), cancels, or runs out of time (expired) — and the event that ends it
//! records the paid waiting, so a charge can be made from it.
//!
//! The deadline is in `ReservationMade` (`expires_at`); the server's expiry worker finds due
//! reservations in a read model and sends `Expire` through the command pipeline, which this
//! decider accepts only once the deadline has passed and only while the reservation is active.
//! The rules spanning customer, car and reservation are in [`crate::rental`].

mod decide;
mod evolve;
#[cfg(test)]
mod tests;

use crate::decider::{Decider, DomainEvent};
use crate::geo::GeoPoint;
use crate::ids::{CustomerId, QuoteId, ReservationId, TripId, VehicleId};
use crate::money::Kopecks;
use crate::pricing::RentalTerms;
use crate::rejection::Rejection;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use decide::waiting_charge;

/// The reservation decider.
#[derive(Debug)]
pub struct Reservation;

/// The facts fixed when a reservation is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReservationDetails {
    /// The reservation.
    pub reservation_id: ReservationId,
    /// Who holds the car.
    pub customer_id: CustomerId,
    /// Which car.
    pub vehicle_id: VehicleId,
    /// Where the car stood.
    pub position: GeoPoint,
    /// The quote whose terms apply, if the customer reserved with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_id: Option<QuoteId>,
    /// The waiting tariff of the reservation and the tariff of the trip it turns into.
    pub terms: RentalTerms,
    /// When the car was taken off the market; waiting is counted from here.
    pub made_at: DateTime<Utc>,
    /// Waiting is free until this time.
    pub free_until: DateTime<Utc>,
    /// The reservation expires at this time.
    pub expires_at: DateTime<Utc>,
}

/// Where a reservation is in its life.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReservationStatus {
    /// No reservation with this id was made.
    #[default]
    NotMade,
    /// The car is held.
    Active,
    /// The customer started a trip in the car.
    Converted { trip_id: TripId },
    /// The customer let the car go.
    Cancelled,
    /// Time ran out.
    Expired,
}

impl ReservationStatus {
    /// The status as a word, as the API shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotMade => "not_made",
            Self::Active => "active",
            Self::Converted { .. } => "converted",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// What a reservation's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReservationState {
    /// The facts fixed when it was made, or `None` before.
    pub made: Option<ReservationDetails>,
    /// Where it is in its life.
    pub status: ReservationStatus,
}

impl ReservationState {
    /// Whether the car is still held.
    pub fn is_active(&self) -> bool {
        self.status == ReservationStatus::Active
    }
}

/// The waiting a reservation is charged for when it ends, kept in the event that ends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitingCharge {
    /// Seconds from making the reservation to its end, never past its limit.
    pub waited_s: u64,
    /// Minutes that were free.
    pub free_minutes: u32,
    /// Started minutes after the free ones.
    pub paid_minutes: u64,
    /// The rate they are charged at.
    pub waiting_kopecks_per_minute: Kopecks,
    /// `paid_minutes × waiting_kopecks_per_minute`: what the customer owes for waiting.
    pub paid_waiting_kopecks: Kopecks,
}

/// What can be asked of a reservation.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command")]
pub enum ReservationCommand {
    /// Hold the car (the rental workflow checks customer and car first).
    Make {
        customer_id: CustomerId,
        vehicle_id: VehicleId,
        position: GeoPoint,
        quote_id: Option<QuoteId>,
        terms: RentalTerms,
    },
    /// The customer starts a trip in the car.
    Convert { trip_id: TripId },
    /// The customer lets the car go.
    Cancel,
    /// The limit has passed (sent by the expiry worker).
    Expire,
}

/// What happened to a reservation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ReservationEvent {
    /// The car is held for the customer until `expires_at`.
    ReservationMade {
        #[serde(flatten)]
        details: ReservationDetails,
    },
    /// The customer started a trip in the car.
    ReservationConverted {
        reservation_id: ReservationId,
        customer_id: CustomerId,
        vehicle_id: VehicleId,
        trip_id: TripId,
        converted_at: DateTime<Utc>,
        #[serde(flatten)]
        waiting: WaitingCharge,
    },
    /// The customer let the car go.
    ReservationCancelled {
        reservation_id: ReservationId,
        customer_id: CustomerId,
        vehicle_id: VehicleId,
        cancelled_at: DateTime<Utc>,
        #[serde(flatten)]
        waiting: WaitingCharge,
    },
    /// The limit passed; the car is free again. `expired_at` is when this was recorded, which
    /// may be a moment after the deadline; the waiting is charged up to the deadline only.
    ReservationExpired {
        reservation_id: ReservationId,
        customer_id: CustomerId,
        vehicle_id: VehicleId,
        expired_at: DateTime<Utc>,
        #[serde(flatten)]
        waiting: WaitingCharge,
    },
}

impl DomainEvent for ReservationEvent {}

/// What a reservation decision needs from outside.
#[derive(Clone, Debug)]
pub struct ReservationContext {
    /// The reservation the command is for.
    pub reservation_id: ReservationId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

impl Decider for Reservation {
    type State = ReservationState;
    type Command = ReservationCommand;
    type Event = ReservationEvent;
    type Context = ReservationContext;

    fn decide(
        state: &ReservationState,
        command: &ReservationCommand,
        context: &ReservationContext,
    ) -> Result<Vec<ReservationEvent>, Rejection> {
        decide::decide(state, command, context)
    }

    fn evolve(state: ReservationState, event: &ReservationEvent) -> ReservationState {
        evolve::evolve(state, event)
    }
}
