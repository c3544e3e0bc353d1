//! Fleet operations across aggregates: opening a service task takes its car out of rotation and
//! completing the car's last open task puts it back; a low tank after a trip opens a refuel
//! task by itself; a damage report is accepted from a customer only for a car they have or just
//! had.
//!
//! Each step returns the events for every stream it touches; the command side appends them in
//! one transaction, with the version checks of every stream read, so a trip can never start on
//! a car in the same instant it goes to service.

use crate::damage::{
    DamageFiling, DamageReport, DamageReportCommand, DamageReportContext, DamageReportEvent,
    DamageReportState, PhotoUrl, Reporter,
};
use crate::decider::Decider;
use crate::ids::{DamageReportId, ServiceTaskId, TripId, VehicleId};
use crate::rejection::{FieldError, Rejection};
use crate::service_task::{
    ServiceTask, ServiceTaskCommand, ServiceTaskContext, ServiceTaskEvent, ServiceTaskKind,
    ServiceTaskState, StaffId,
};
use crate::trip::TripState;
use crate::vehicle::{
    Vehicle, VehicleCommand, VehicleContext, VehicleEvent, VehicleState, VehicleStatus,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Fleet thresholds. Data, not code: the values come from `fixtures/data/fleet.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetPolicy {
    /// A car handed back with less fuel (or charge) than this, in percent, gets a refuel task.
    pub low_fuel_percent: u8,
    /// How long after handing a car back its customer may still report damage on it, in seconds.
    pub damage_report_window_s: u32,
}

/// The events a fleet step appends, by stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetDecision {
    /// Events for the task's stream.
    pub task: Vec<ServiceTaskEvent>,
    /// Events for the car's stream.
    pub vehicle: Vec<VehicleEvent>,
}

/// A service task opened together with another step (a trip's end), for its own stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpenedServiceTask {
    /// The new task's id (its stream is new: append with "no stream yet").
    pub task_id: ServiceTaskId,
    /// The task's events.
    pub events: Vec<ServiceTaskEvent>,
}

/// A task the system opens by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AutomaticTask {
    /// What to do.
    pub kind: ServiceTaskKind,
    /// Why, for the staff member.
    pub note: String,
}

/// What a car handed back in `vehicle`'s state needs, if anything: a refuel task when its fuel
/// is below the policy's threshold.
pub fn after_trip(vehicle: &VehicleState, policy: &FleetPolicy) -> Option<AutomaticTask> {
    let fuel_percent = vehicle.telemetry.as_ref()?.fuel_percent.get();
    (fuel_percent < policy.low_fuel_percent).then(|| AutomaticTask {
        kind: ServiceTaskKind::Refuel,
        note: format!(
            "fuel at {fuel_percent} % after the trip, below {} %",
            policy.low_fuel_percent
        ),
    })
}

/// Whether `vehicle` is the state of the car `vehicle_id` (and that car is in the fleet).
fn is_state_of(vehicle: &VehicleState, vehicle_id: VehicleId) -> bool {
    vehicle
        .details
        .as_ref()
        .is_some_and(|details| details.vehicle_id == vehicle_id)
}

/// Everything opening a task looks at.
#[derive(Clone, Debug)]
pub struct OpenServiceTask<'a> {
    /// The new task's id.
    pub task_id: ServiceTaskId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// The task's state; empty unless the id was used before.
    pub task: &'a ServiceTaskState,
    /// The car.
    pub vehicle_id: VehicleId,
    /// Its state.
    pub vehicle: &'a VehicleState,
    /// What to do.
    pub kind: ServiceTaskKind,
    /// Free text for the staff member.
    pub note: Option<String>,
    /// The trip after which the system opens it, if it does.
    pub after_trip_id: Option<TripId>,
}

/// Opens a task on a car and takes the car out of rotation. A car in a trip or reserved is a
/// customer's and cannot be sent to service.
pub fn open_service_task(input: OpenServiceTask<'_>) -> Result<FleetDecision, Rejection> {
    let OpenServiceTask {
        task_id,
        now,
        task,
        vehicle_id,
        vehicle,
        kind,
        note,
        after_trip_id,
    } = input;
    if !is_state_of(vehicle, vehicle_id) {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    }
    let task = ServiceTask::decide(
        task,
        &ServiceTaskCommand::Open {
            vehicle_id,
            kind,
            note,
            after_trip_id,
        },
        &ServiceTaskContext { task_id, now },
    )?;
    let vehicle = Vehicle::decide(
        vehicle,
        &VehicleCommand::SendToService { task_id, kind },
        &VehicleContext { vehicle_id, now },
    )?;
    Ok(FleetDecision { task, vehicle })
}

/// Everything completing a task looks at.
#[derive(Clone, Debug)]
pub struct CompleteServiceTask<'a> {
    /// The task.
    pub task_id: ServiceTaskId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// Its state.
    pub task: &'a ServiceTaskState,
    /// The state of the task's car.
    pub vehicle: &'a VehicleState,
    /// Who finished the work.
    pub staff_id: StaffId,
    /// What they say about it.
    pub note: Option<String>,
}

/// Completes a task; when it was the car's last open task, the car is available again.
pub fn complete_service_task(input: CompleteServiceTask<'_>) -> Result<FleetDecision, Rejection> {
    let CompleteServiceTask {
        task_id,
        now,
        task,
        vehicle,
        staff_id,
        note,
    } = input;
    let Some(opened) = &task.opened else {
        return Err(Rejection::ServiceTaskNotFound { task_id });
    };
    let vehicle_id = opened.vehicle_id;
    let task = ServiceTask::decide(
        task,
        &ServiceTaskCommand::Complete { staff_id, note },
        &ServiceTaskContext { task_id, now },
    )?;
    if !is_state_of(vehicle, vehicle_id) {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    }
    let vehicle = Vehicle::decide(
        vehicle,
        &VehicleCommand::CloseServiceTask { task_id },
        &VehicleContext { vehicle_id, now },
    )?;
    Ok(FleetDecision { task, vehicle })
}

/// Everything a damage report decision looks at.
#[derive(Clone, Debug)]
pub struct ReportDamage<'a> {
    /// The new report's id.
    pub report_id: DamageReportId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// The report's state; empty unless the id was used before.
    pub report: &'a DamageReportState,
    /// The car.
    pub vehicle_id: VehicleId,
    /// Its state.
    pub vehicle: &'a VehicleState,
    /// The trip named in the report, with its state, if one was named.
    pub trip: Option<(TripId, &'a TripState)>,
    /// Who reports.
    pub reporter: Reporter,
    /// What and where.
    pub description: String,
    /// Photos.
    pub photo_urls: Vec<PhotoUrl>,
    /// How long after a trip its customer may still report.
    pub policy: &'a FleetPolicy,
}

/// Files a damage report. Staff may report on any car. A customer may report only on the car
/// they are in a trip with, or have handed back within the policy's window; the report is then
/// tied to that trip.
pub fn report_damage(input: ReportDamage<'_>) -> Result<Vec<DamageReportEvent>, Rejection> {
    let ReportDamage {
        report_id,
        now,
        report,
        vehicle_id,
        vehicle,
        trip,
        reporter,
        description,
        photo_urls,
        policy,
    } = input;
    if !is_state_of(vehicle, vehicle_id) {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    }
    if let Some((trip_id, state)) = trip {
        match &state.started {
            None => return Err(Rejection::TripNotFound { trip_id }),
            Some(start) if start.vehicle_id != vehicle_id => {
                return Err(FieldError::new("trip_id", "is a trip in another car").into());
            }
            Some(_) => {}
        }
    }
    let named_trip = trip.map(|(trip_id, _)| trip_id);
    let trip_id = match &reporter {
        Reporter::Staff => named_trip,
        Reporter::Customer { customer_id } => {
            let customer_id = *customer_id;
            let current = match &vehicle.status {
                VehicleStatus::InTrip {
                    trip_id,
                    customer_id: driver,
                } if *driver == customer_id => Some(*trip_id),
                _ => None,
            };
            let window = chrono::Duration::seconds(i64::from(policy.damage_report_window_s));
            let just_ended = vehicle
                .last_trip
                .as_ref()
                .filter(|last| last.customer_id == customer_id && now - last.returned_at <= window)
                .map(|last| last.trip_id);
            let Some(theirs) = current.or(just_ended) else {
                return Err(Rejection::VehicleNotRentedByCustomer {
                    vehicle_id,
                    customer_id,
                });
            };
            if named_trip.is_some_and(|named| named != theirs) {
                return Err(FieldError::new(
                    "trip_id",
                    "must be your current or just-ended trip in this car",
                )
                .into());
            }
            Some(theirs)
        }
    };
    DamageReport::decide(
        report,
        &DamageReportCommand::File(DamageFiling {
            vehicle_id,
            trip_id,
            description,
            photo_urls,
            reporter,
        }),
        &DamageReportContext { report_id, now },
    )
}
