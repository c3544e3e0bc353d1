//! Starting and ending a trip: the rules that span customer, vehicle and trip.
//!
//! A trip starts only for a registered, verified, unblocked customer with a valid licence and no
//! other active trip, on a car that is in the fleet and available. It ends only with the car
//! inside the operating area and locked. The decision names events for two streams (the trip's
//! and the car's), which the command side appends in one transaction, and the exclusive claims
//! (one active trip per customer, one per car) that the store enforces under concurrency.
//!
//! A car handed back with a low tank also gets a refuel task (see [`crate::fleet::after_trip`]):
//! the end decision then names a third stream, the new task's, appended in the same transaction
//! as the trip's end, so a car is never back in rotation with an empty tank.

use crate::claims::Claim;
use crate::customer::{CustomerState, VerificationStatus};
use crate::decider::Decider;
use crate::fleet::{self, FleetPolicy, OpenServiceTask, OpenedServiceTask};
use crate::ids::{CustomerId, ServiceTaskId, TripId, VehicleId};
use crate::rejection::Rejection;
use crate::service_task::ServiceTaskState;
use crate::trip::{Tariff, Trip, TripCommand, TripContext, TripEvent, TripStart, TripState};
use crate::vehicle::{Vehicle, VehicleCommand, VehicleContext, VehicleEvent, VehicleState};
use crate::zone::OperatingArea;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[cfg(test)]
mod tests;

/// The events a rental step appends, by stream, and the exclusive claims it takes or gives up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RentalDecision {
    /// Events for the trip's stream.
    pub trip: Vec<TripEvent>,
    /// Events for the vehicle's stream.
    pub vehicle: Vec<VehicleEvent>,
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
    /// The rates to fix for this trip.
    pub tariff: Tariff,
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
    } = input;
    if trip.started.is_some() {
        return Err(Rejection::TripAlreadyStarted { trip_id });
    }
    // State loaded for another id would decide for the wrong customer or car: treat it as absent.
    let Some(profile) = customer
        .profile
        .as_ref()
        .filter(|p| p.customer_id == customer_id)
    else {
        return Err(Rejection::CustomerNotFound { customer_id });
    };
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
    if let Some(active) = customer_active_trip {
        return Err(Rejection::CustomerHasActiveTrip {
            customer_id,
            trip_id: active,
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
    let trip_events = Trip::decide(
        trip,
        &TripCommand::Start(TripStart {
            trip_id,
            customer_id,
            vehicle_id,
            tariff,
            start_position: telemetry.position,
            start_odometer_m: telemetry.odometer_m,
        }),
        &TripContext { trip_id, now },
    )?;
    Ok(RentalDecision {
        trip: trip_events,
        vehicle: vehicle_events,
        acquire: vec![
            customer_trip_claim(customer_id),
            vehicle_trip_claim(vehicle_id),
        ],
        release: Vec::new(),
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
    if !area.allows_ending_at(&telemetry.position) {
        return Err(Rejection::VehicleOutsideOperatingZone { vehicle_id });
    }
    if !telemetry.doors_locked {
        return Err(Rejection::VehicleNotLocked { vehicle_id });
    }
    let trip_events = Trip::decide(
        trip,
        &TripCommand::End {
            end_position: telemetry.position,
            end_odometer_m: telemetry.odometer_m,
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
        acquire: Vec::new(),
        release: vec![
            customer_trip_claim(start.customer_id),
            vehicle_trip_claim(vehicle_id),
        ],
        service_task,
    })
}
