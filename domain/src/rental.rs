//! Quotes, reservations and trips: the rules that span customer, vehicle, quote, reservation and
//! trip.
//!
//! A trip starts only for a registered, verified, unblocked customer with a valid licence and no
//! other active trip or reservation, on a car that is in the fleet and available — or reserved
//! by that customer, in which case the reservation turns into the trip and its terms apply. A
//! trip started with a quote uses exactly the quote's tariff; without one, the standard tariff.
//! It ends only with the car inside the operating area (or a surcharge zone, whose fee is added)
//! and locked. A reservation obeys the same customer rules, holds an available car, and ends by
//! conversion, cancellation or expiry. A car handed back with a low tank also gets a refuel task
//! (see [`crate::fleet::after_trip`]), opened in the same append as the trip's end, so a car is
//! never back in rotation with an empty tank.
//!
//! Each decision names events for several streams, which the command side appends in one
//! transaction, and the exclusive claims that the store enforces under concurrency: one active
//! trip per customer and per car, one reservation per car, and one car held per customer.

use crate::claims::Claim;
use crate::customer::{CustomerState, VerificationStatus};
use crate::decider::Decider;
use crate::fleet::{self, FleetPolicy, OpenServiceTask, OpenedServiceTask};
use crate::ids::{CustomerId, QuoteId, ReservationId, ServiceTaskId, TripId, VehicleId};
use crate::pricing::{DemandObservation, PricingPolicy, RentalTerms};
use crate::quote::{Quote, QuoteCommand, QuoteContext, QuoteEvent, QuoteState};
use crate::rejection::Rejection;
use crate::reservation::{
    Reservation, ReservationCommand, ReservationContext, ReservationEvent, ReservationState,
};
use crate::service_task::ServiceTaskState;
use crate::trip::{Tariff, Trip, TripCommand, TripContext, TripEvent, TripStart, TripState};
use crate::vehicle::{
    Vehicle, VehicleCommand, VehicleContext, VehicleEvent, VehicleState, VehicleStatus,
};
use crate::zone::OperatingArea;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[cfg(test)]
mod reservation_tests;
#[cfg(test)]
mod tests;

/// The events a rental step appends, by stream, and the exclusive claims it takes or gives up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RentalDecision {
    /// Events for the trip's stream.
    pub trip: Vec<TripEvent>,
    /// Events for the vehicle's stream.
    pub vehicle: Vec<VehicleEvent>,
    /// Events for the reservation's stream (made, converted, cancelled, expired).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reservation: Vec<ReservationEvent>,
    /// Claims to take: no one else may hold them at the same time.
    pub acquire: Vec<String>,
    /// Claims to give up.
    pub release: Vec<String>,
    /// A service task opened with this step (a refuel task after a trip ended with a low tank),
    /// for its own new stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_task: Option<OpenedServiceTask>,
}

/// The claim that a customer has an active trip.
pub fn customer_trip_claim(customer_id: CustomerId) -> String {
    Claim::CustomerActiveTrip(customer_id).key()
}

/// The claim that a car is in an active trip.
pub fn vehicle_trip_claim(vehicle_id: VehicleId) -> String {
    Claim::VehicleActiveTrip(vehicle_id).key()
}

/// The claim that a customer holds a car, by a trip or a reservation.
pub fn customer_holds_car_claim(customer_id: CustomerId) -> String {
    Claim::CustomerHoldsCar(customer_id).key()
}

/// The claim that a car is held by a reservation.
pub fn vehicle_reservation_claim(vehicle_id: VehicleId) -> String {
    Claim::VehicleReservation(vehicle_id).key()
}

/// Whether `customer_id` may take a car now: registered, verified, unblocked, with a valid
/// licence. The same rules hold for starting a trip and for reserving.
fn customer_may_rent(
    customer_id: CustomerId,
    customer: &CustomerState,
    now: DateTime<Utc>,
) -> Result<(), Rejection> {
    // State loaded for another id would decide for the wrong customer: treat it as absent.
    let Some(profile) = customer
        .profile
        .as_ref()
        .filter(|p| p.customer_id == customer_id)
    else {
        return Err(Rejection::CustomerNotFound { customer_id });
    };
    if customer.erased_at.is_some() {
        return Err(Rejection::CustomerErased { customer_id });
    }
    if customer.verification != VerificationStatus::Verified {
        return Err(Rejection::CustomerNotVerified { customer_id });
    }
    if !customer.blocks.is_empty() {
        let reasons: Vec<&str> = customer.blocks.iter().map(|r| r.as_str()).collect();
        return Err(Rejection::CustomerBlocked {
            customer_id,
            reasons: reasons.join(", "),
        });
    }
    if !profile.licence.is_valid_on(now.date_naive()) {
        return Err(Rejection::LicenceExpired {
            customer_id,
            expired_on: profile.licence.expires_on,
        });
    }
    Ok(())
}

/// Whether `vehicle` is the state of the car `vehicle_id` (and that car is in the fleet).
fn is_state_of(vehicle: &VehicleState, vehicle_id: VehicleId) -> bool {
    vehicle
        .details
        .as_ref()
        .is_some_and(|details| details.vehicle_id == vehicle_id)
}

/// Everything a start decision looks at.
#[derive(Clone, Debug)]
pub struct StartTrip<'a> {
    /// The new trip's id.
    pub trip_id: TripId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// The trip's state; empty unless the id was used before.
    pub trip: &'a TripState,
    /// Who wants to rent.
    pub customer_id: CustomerId,
    /// Their state.
    pub customer: &'a CustomerState,
    /// The customer's active trip, if any, as known to the caller.
    pub customer_active_trip: Option<TripId>,
    /// Which car.
    pub vehicle_id: VehicleId,
    /// Its state.
    pub vehicle: &'a VehicleState,
    /// The standard rates, fixed for this trip unless a quote or a reservation brings its own.
    pub tariff: Tariff,
    /// The customer's active reservation, if any, as known to the caller.
    pub customer_reservation: Option<ReservationId>,
    /// The state of the reservation holding the car, when the car is reserved.
    pub reservation: Option<&'a ReservationState>,
    /// The quote the customer starts with, and its state.
    pub quote: Option<(QuoteId, &'a QuoteState)>,
}

/// Decides whether a trip may start, and what it records.
pub fn start_trip(input: StartTrip<'_>) -> Result<RentalDecision, Rejection> {
    let StartTrip {
        trip_id,
        now,
        trip,
        customer_id,
        customer,
        customer_active_trip,
        vehicle_id,
        vehicle,
        tariff,
        customer_reservation,
        reservation,
        quote,
    } = input;
    if trip.started.is_some() {
        return Err(Rejection::TripAlreadyStarted { trip_id });
    }
    customer_may_rent(customer_id, customer, now)?;
    if let Some(active) = customer_active_trip {
        return Err(Rejection::CustomerHasActiveTrip {
            customer_id,
            trip_id: active,
        });
    }
    // The car this customer has reserved, if this is it: the reservation turns into the trip.
    let converting = match vehicle.status {
        VehicleStatus::Reserved {
            reservation_id,
            customer_id: holder,
        } if holder == customer_id && is_state_of(vehicle, vehicle_id) => Some(reservation_id),
        _ => None,
    };
    if let Some(held) = customer_reservation
        && converting != Some(held)
    {
        return Err(Rejection::CustomerHasActiveReservation {
            customer_id,
            reservation_id: held,
        });
    }
    if !is_state_of(vehicle, vehicle_id) {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    }
    let vehicle_events = Vehicle::decide(
        vehicle,
        &VehicleCommand::Rent {
            trip_id,
            customer_id,
        },
        &VehicleContext { vehicle_id, now },
    )?;
    let Some(telemetry) = &vehicle.telemetry else {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    };
    let acquire = vec![
        customer_trip_claim(customer_id),
        vehicle_trip_claim(vehicle_id),
        customer_holds_car_claim(customer_id),
    ];
    let mut release = Vec::new();
    let mut reservation_events = Vec::new();
    let (tariff, quote_id, reservation_id) = match converting {
        Some(reservation_id) => {
            let state = reservation
                .filter(|r| r.made.as_ref().map(|m| m.reservation_id) == Some(reservation_id))
                .ok_or(Rejection::ReservationNotFound { reservation_id })?;
            let Some(made) = &state.made else {
                return Err(Rejection::ReservationNotFound { reservation_id });
            };
            if let Some((quote_id, _)) = quote
                && made.quote_id != Some(quote_id)
            {
                return Err(Rejection::QuoteNotForReservation {
                    quote_id,
                    reservation_id,
                });
            }
            reservation_events = Reservation::decide(
                state,
                &ReservationCommand::Convert { trip_id },
                &ReservationContext {
                    reservation_id,
                    now,
                },
            )?;
            // The reservation's hold passes to the trip in the same append.
            release = vec![
                vehicle_reservation_claim(vehicle_id),
                customer_holds_car_claim(customer_id),
            ];
            (
                made.terms.tariff.clone(),
                made.quote_id,
                Some(reservation_id),
            )
        }
        None => match quote {
            Some((quote_id, state)) => {
                let terms = state.terms_for(quote_id, customer_id, vehicle_id, now)?;
                (terms.tariff.clone(), Some(quote_id), None)
            }
            None => (tariff, None, None),
        },
    };
    let trip_events = Trip::decide(
        trip,
        &TripCommand::Start(TripStart {
            trip_id,
            customer_id,
            vehicle_id,
            tariff,
            start_position: telemetry.position,
            start_odometer_m: telemetry.odometer_m,
            quote_id,
            reservation_id,
            company_id: customer.company_id,
        }),
        &TripContext { trip_id, now },
    )?;
    Ok(RentalDecision {
        trip: trip_events,
        vehicle: vehicle_events,
        reservation: reservation_events,
        acquire,
        release,
        service_task: None,
    })
}

/// Everything an end decision looks at.
#[derive(Clone, Debug)]
pub struct EndTrip<'a> {
    /// The trip to end.
    pub trip_id: TripId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// The trip's state.
    pub trip: &'a TripState,
    /// The state of the trip's car.
    pub vehicle: &'a VehicleState,
    /// Where trips may end.
    pub area: &'a OperatingArea,
    /// When a car handed back needs a refuel task.
    pub fleet: &'a FleetPolicy,
    /// The id a refuel task gets if the trip's end opens one.
    pub service_task_id: ServiceTaskId,
}

/// Decides whether a trip may end where the car stands, and prices it.
pub fn end_trip(input: EndTrip<'_>) -> Result<RentalDecision, Rejection> {
    let EndTrip {
        trip_id,
        now,
        trip,
        vehicle,
        area,
        fleet: fleet_policy,
        service_task_id,
    } = input;
    let Some(start) = &trip.started else {
        return Err(Rejection::TripNotFound { trip_id });
    };
    if !trip.is_active() {
        return Err(Rejection::TripAlreadyEnded { trip_id });
    }
    let vehicle_id = start.vehicle_id;
    if !is_state_of(vehicle, vehicle_id) {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    }
    let Some(telemetry) = &vehicle.telemetry else {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    };
    // Outside the area or in a forbidden zone: one rule, `vehicle-outside-operating-zone`.
    let Ok(surcharge) = area.ending_at(&telemetry.position) else {
        return Err(Rejection::VehicleOutsideOperatingZone { vehicle_id });
    };
    if !telemetry.doors_locked {
        return Err(Rejection::VehicleNotLocked { vehicle_id });
    }
    let trip_events = Trip::decide(
        trip,
        &TripCommand::End {
            end_position: telemetry.position,
            end_odometer_m: telemetry.odometer_m,
            surcharge,
        },
        &TripContext { trip_id, now },
    )?;
    let mut vehicle_events = Vehicle::decide(
        vehicle,
        &VehicleCommand::Return { trip_id },
        &VehicleContext { vehicle_id, now },
    )?;
    let returned = vehicle_events.iter().fold(vehicle.clone(), |state, event| {
        Vehicle::evolve(state, event)
    });
    let mut service_task = None;
    if let Some(task) = fleet::after_trip(&returned, fleet_policy) {
        let opened = fleet::open_service_task(OpenServiceTask {
            task_id: service_task_id,
            now,
            task: &ServiceTaskState::default(),
            vehicle_id,
            vehicle: &returned,
            kind: task.kind,
            note: Some(task.note),
            after_trip_id: Some(trip_id),
        })?;
        vehicle_events.extend(opened.vehicle);
        service_task = Some(OpenedServiceTask {
            task_id: service_task_id,
            events: opened.task,
        });
    }
    Ok(RentalDecision {
        trip: trip_events,
        vehicle: vehicle_events,
        reservation: Vec::new(),
        acquire: Vec::new(),
        release: vec![
            customer_trip_claim(start.customer_id),
            vehicle_trip_claim(vehicle_id),
            customer_holds_car_claim(start.customer_id),
        ],
        service_task,
    })
}

/// Everything a quote decision looks at.
#[derive(Clone, Debug)]
pub struct RequestQuote<'a> {
    /// The new quote's id.
    pub quote_id: QuoteId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// The quote's state; empty unless the id was used before.
    pub quote: &'a QuoteState,
    /// Who asks.
    pub customer_id: CustomerId,
    /// Their state.
    pub customer: &'a CustomerState,
    /// Which car.
    pub vehicle_id: VehicleId,
    /// Its state.
    pub vehicle: &'a VehicleState,
    /// Supply and demand in the car's pricing zone, as the caller observed them.
    pub observed: DemandObservation,
    /// The standard terms.
    pub standard: &'a RentalTerms,
    /// Zones, bounds and validity.
    pub policy: &'a PricingPolicy,
}

/// Decides whether a customer may be quoted a price for a car, and fixes it. Anyone registered
/// may ask (the rules for taking the car apply when they use the quote); the car must be
/// available, since nobody else can take a car that is held.
pub fn request_quote(input: RequestQuote<'_>) -> Result<Vec<QuoteEvent>, Rejection> {
    let RequestQuote {
        quote_id,
        now,
        quote,
        customer_id,
        customer,
        vehicle_id,
        vehicle,
        observed,
        standard,
        policy,
    } = input;
    if quote.issued.is_some() {
        return Err(Rejection::QuoteAlreadyIssued { quote_id });
    }
    if customer
        .profile
        .as_ref()
        .is_none_or(|p| p.customer_id != customer_id)
    {
        return Err(Rejection::CustomerNotFound { customer_id });
    }
    if !is_state_of(vehicle, vehicle_id) {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    }
    let Some(telemetry) = &vehicle.telemetry else {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    };
    if vehicle.status != VehicleStatus::Available {
        return Err(Rejection::VehicleNotAvailable {
            vehicle_id,
            status: vehicle.status.as_str().to_owned(),
        });
    }
    Quote::decide(
        quote,
        &QuoteCommand::Issue {
            customer_id,
            vehicle_id,
            position: telemetry.position,
            observed,
            standard: standard.clone(),
            policy: policy.clone(),
        },
        &QuoteContext { quote_id, now },
    )
}

/// Everything a reserve decision looks at.
#[derive(Clone, Debug)]
pub struct Reserve<'a> {
    /// The new reservation's id.
    pub reservation_id: ReservationId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// The reservation's state; empty unless the id was used before.
    pub reservation: &'a ReservationState,
    /// Who reserves.
    pub customer_id: CustomerId,
    /// Their state.
    pub customer: &'a CustomerState,
    /// The customer's active trip, if any, as known to the caller.
    pub customer_active_trip: Option<TripId>,
    /// The customer's active reservation, if any, as known to the caller.
    pub customer_reservation: Option<ReservationId>,
    /// Which car.
    pub vehicle_id: VehicleId,
    /// Its state.
    pub vehicle: &'a VehicleState,
    /// The quote the customer reserves with, and its state.
    pub quote: Option<(QuoteId, &'a QuoteState)>,
    /// The standard terms, for a reservation without a quote.
    pub standard: &'a RentalTerms,
}

/// Decides whether a customer may reserve a car, and on which terms.
pub fn reserve(input: Reserve<'_>) -> Result<RentalDecision, Rejection> {
    let Reserve {
        reservation_id,
        now,
        reservation,
        customer_id,
        customer,
        customer_active_trip,
        customer_reservation,
        vehicle_id,
        vehicle,
        quote,
        standard,
    } = input;
    if reservation.made.is_some() {
        return Err(Rejection::ReservationAlreadyMade { reservation_id });
    }
    customer_may_rent(customer_id, customer, now)?;
    if let Some(active) = customer_active_trip {
        return Err(Rejection::CustomerHasActiveTrip {
            customer_id,
            trip_id: active,
        });
    }
    if let Some(held) = customer_reservation {
        return Err(Rejection::CustomerHasActiveReservation {
            customer_id,
            reservation_id: held,
        });
    }
    if !is_state_of(vehicle, vehicle_id) {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    }
    let Some(telemetry) = &vehicle.telemetry else {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    };
    let vehicle_events = Vehicle::decide(
        vehicle,
        &VehicleCommand::Reserve {
            reservation_id,
            customer_id,
        },
        &VehicleContext { vehicle_id, now },
    )?;
    let (terms, quote_id) = match quote {
        Some((quote_id, state)) => (
            state.terms_for(quote_id, customer_id, vehicle_id, now)?,
            Some(quote_id),
        ),
        None => (standard, None),
    };
    let reservation_events = Reservation::decide(
        reservation,
        &ReservationCommand::Make {
            customer_id,
            vehicle_id,
            position: telemetry.position,
            quote_id,
            terms: terms.clone(),
        },
        &ReservationContext {
            reservation_id,
            now,
        },
    )?;
    Ok(RentalDecision {
        trip: Vec::new(),
        vehicle: vehicle_events,
        reservation: reservation_events,
        acquire: vec![
            customer_holds_car_claim(customer_id),
            vehicle_reservation_claim(vehicle_id),
        ],
        release: Vec::new(),
        service_task: None,
    })
}

/// How a reservation ends without a trip.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseBy {
    /// Its customer cancels.
    Cancel,
    /// Its limit has passed.
    Expire,
}

/// Everything a cancel or expire decision looks at.
#[derive(Clone, Debug)]
pub struct ReleaseReservation<'a> {
    /// The reservation.
    pub reservation_id: ReservationId,
    /// Cancel or expire.
    pub by: ReleaseBy,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// The reservation's state.
    pub reservation: &'a ReservationState,
    /// The state of the reservation's car.
    pub vehicle: &'a VehicleState,
}

/// Decides whether a reservation may be cancelled or expired now, lets the car go, and charges
/// the waiting.
pub fn release_reservation(input: ReleaseReservation<'_>) -> Result<RentalDecision, Rejection> {
    let ReleaseReservation {
        reservation_id,
        by,
        now,
        reservation,
        vehicle,
    } = input;
    let Some(made) = &reservation.made else {
        return Err(Rejection::ReservationNotFound { reservation_id });
    };
    let command = match by {
        ReleaseBy::Cancel => ReservationCommand::Cancel,
        ReleaseBy::Expire => ReservationCommand::Expire,
    };
    let reservation_events = Reservation::decide(
        reservation,
        &command,
        &ReservationContext {
            reservation_id,
            now,
        },
    )?;
    let vehicle_id = made.vehicle_id;
    if !is_state_of(vehicle, vehicle_id) {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    }
    let vehicle_events = Vehicle::decide(
        vehicle,
        &VehicleCommand::ReleaseReservation { reservation_id },
        &VehicleContext { vehicle_id, now },
    )?;
    Ok(RentalDecision {
        trip: Vec::new(),
        vehicle: vehicle_events,
        reservation: reservation_events,
        acquire: Vec::new(),
        release: vec![
            customer_holds_car_claim(made.customer_id),
            vehicle_reservation_claim(vehicle_id),
        ],
        service_task: None,
    })
}
