//! The vehicle: a car in the fleet, where it is and what state it reports, and whether it can be
//! rented.

mod decide;
mod evolve;
pub mod telemetry;
#[cfg(test)]
mod tests;

use crate::decider::{Decider, DomainEvent};
use crate::geo::GeoPoint;
use crate::ids::{CustomerId, ReservationId, ServiceTaskId, TripId, VehicleId};
use crate::rejection::Rejection;
use crate::service_task::ServiceTaskKind;
use crate::value::{FuelPercent, ModelName, OdometerM, Plate, Vin};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The vehicle decider.
#[derive(Debug)]
pub struct Vehicle;

/// What a vehicle's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VehicleState {
    /// Registration data, or `None` before the car joined the fleet.
    pub details: Option<VehicleDetails>,
    /// The last meaningful telemetry reading.
    pub telemetry: Option<Telemetry>,
    /// Whether it can be rented.
    pub status: VehicleStatus,
    /// The last trip that handed the car back, so that its customer may still report damage
    /// found on the car for a short while after (see [`crate::fleet`]).
    pub last_trip: Option<LastTrip>,
}

/// A finished trip as the car remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastTrip {
    /// The trip.
    pub trip_id: TripId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// When it handed the car back.
    pub returned_at: DateTime<Utc>,
}

impl VehicleState {
    /// Whether the car is in the fleet.
    pub fn exists(&self) -> bool {
        self.details.is_some()
    }
}

/// What identifies a car.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VehicleDetails {
    /// The car's id.
    pub vehicle_id: VehicleId,
    /// Registration plate.
    pub plate: Plate,
    /// Vehicle identification number.
    pub vin: Vin,
    /// Marketed model name.
    pub model: ModelName,
}

/// A telemetry reading from the car's unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// Where the car is.
    pub position: GeoPoint,
    /// Fuel or charge level.
    pub fuel_percent: FuelPercent,
    /// Odometer.
    pub odometer_m: OdometerM,
    /// Whether all doors are locked.
    pub doors_locked: bool,
}

/// Whether a car can be rented.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VehicleStatus {
    /// Free for anyone to take.
    #[default]
    Available,
    /// In a trip (driving or parked), exclusively the trip's customer's.
    InTrip {
        trip_id: TripId,
        customer_id: CustomerId,
    },
    /// Out of rotation while fleet staff work on it; available again when its last open service
    /// task is completed. Never empty: the set holds the open tasks.
    InService { open_tasks: BTreeSet<ServiceTaskId> },
    /// Held for one customer by a reservation: only they may start a trip in it.
    Reserved {
        reservation_id: ReservationId,
        customer_id: CustomerId,
    },
}

impl VehicleStatus {
    /// The status as a word, as the API shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::InTrip { .. } => "in_trip",
            Self::InService { .. } => "in_service",
            Self::Reserved { .. } => "reserved",
        }
    }
}

/// What can be asked of a vehicle.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command")]
pub enum VehicleCommand {
    /// Fleet staff add a car, with its first reading.
    AddToFleet {
        details: VehicleDetails,
        position: GeoPoint,
        fuel_percent: FuelPercent,
        odometer_m: OdometerM,
    },
    /// The telematics unit reports.
    RecordTelemetry(Telemetry),
    /// A trip takes the car (issued by the rental workflow, not by a person).
    Rent {
        trip_id: TripId,
        customer_id: CustomerId,
    },
    /// A trip hands the car back.
    Return { trip_id: TripId },
    /// A service task takes the car out of rotation (issued with the task's opening).
    SendToService {
        task_id: ServiceTaskId,
        kind: ServiceTaskKind,
    },
    /// A service task on the car is done (issued with the task's completion).
    CloseServiceTask { task_id: ServiceTaskId },
    /// A reservation holds the car for its customer (issued by the rental workflow).
    Reserve {
        reservation_id: ReservationId,
        customer_id: CustomerId,
    },
    /// A cancelled or expired reservation lets the car go.
    ReleaseReservation { reservation_id: ReservationId },
}

/// What happened to a vehicle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum VehicleEvent {
    /// The car joined the fleet, locked, where it stands.
    VehicleAddedToFleet {
        #[serde(flatten)]
        details: VehicleDetails,
        position: GeoPoint,
        fuel_percent: FuelPercent,
        odometer_m: OdometerM,
        added_at: DateTime<Utc>,
    },
    /// A telemetry reading that differs from the last one.
    TelemetryRecorded {
        vehicle_id: VehicleId,
        #[serde(flatten)]
        telemetry: Telemetry,
        recorded_at: DateTime<Utc>,
    },
    /// A trip took the car.
    VehicleRented {
        vehicle_id: VehicleId,
        trip_id: TripId,
        customer_id: CustomerId,
        rented_at: DateTime<Utc>,
        /// The reservation that held the car for the trip's customer, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reservation_id: Option<ReservationId>,
    },
    /// The trip handed the car back.
    VehicleReturned {
        vehicle_id: VehicleId,
        trip_id: TripId,
        returned_at: DateTime<Utc>,
    },
    /// A service task was opened on the car: it is out of rotation until its tasks are done.
    VehicleSentToService {
        vehicle_id: VehicleId,
        task_id: ServiceTaskId,
        kind: ServiceTaskKind,
        sent_at: DateTime<Utc>,
    },
    /// One of the car's service tasks was completed.
    VehicleServiceTaskClosed {
        vehicle_id: VehicleId,
        task_id: ServiceTaskId,
        closed_at: DateTime<Utc>,
    },
    /// The car's last open service task was completed: it is available again.
    VehicleReleasedFromService {
        vehicle_id: VehicleId,
        released_at: DateTime<Utc>,
    },
    /// A reservation took the car for its customer.
    VehicleReserved {
        vehicle_id: VehicleId,
        reservation_id: ReservationId,
        customer_id: CustomerId,
        reserved_at: DateTime<Utc>,
    },
    /// The reservation was cancelled or expired: the car is available again.
    VehicleReservationReleased {
        vehicle_id: VehicleId,
        reservation_id: ReservationId,
        released_at: DateTime<Utc>,
    },
}

impl DomainEvent for VehicleEvent {}

/// What a vehicle decision needs from outside.
#[derive(Clone, Debug)]
pub struct VehicleContext {
    /// The vehicle the command is for.
    pub vehicle_id: VehicleId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

impl Decider for Vehicle {
    type State = VehicleState;
    type Command = VehicleCommand;
    type Event = VehicleEvent;
    type Context = VehicleContext;

    fn decide(
        state: &VehicleState,
        command: &VehicleCommand,
        context: &VehicleContext,
    ) -> Result<Vec<VehicleEvent>, Rejection> {
        decide::decide(state, command, context)
    }

    fn evolve(state: VehicleState, event: &VehicleEvent) -> VehicleState {
        evolve::evolve(state, event)
    }
}
