//! How vehicle events change what we know about the car.

use super::{LastTrip, Telemetry, VehicleEvent, VehicleState, VehicleStatus};
use std::collections::BTreeSet;

pub(super) fn evolve(mut state: VehicleState, event: &VehicleEvent) -> VehicleState {
    match event {
        VehicleEvent::VehicleAddedToFleet {
            details,
            position,
            fuel_percent,
            odometer_m,
            ..
        } => {
            state.details = Some(details.clone());
            state.telemetry = Some(Telemetry {
                position: *position,
                fuel_percent: *fuel_percent,
                odometer_m: *odometer_m,
                doors_locked: true,
            });
            state.status = VehicleStatus::Available;
        }
        VehicleEvent::TelemetryRecorded { telemetry, .. } => {
            state.telemetry = Some(telemetry.clone());
        }
        VehicleEvent::VehicleRented {
            trip_id,
            customer_id,
            ..
        } => {
            state.status = VehicleStatus::InTrip {
                trip_id: *trip_id,
                customer_id: *customer_id,
            };
        }
        VehicleEvent::VehicleReturned {
            trip_id,
            returned_at,
            ..
        } => {
            if let VehicleStatus::InTrip { customer_id, .. } = state.status {
                state.last_trip = Some(LastTrip {
                    trip_id: *trip_id,
                    customer_id,
                    returned_at: *returned_at,
                });
            }
            state.status = VehicleStatus::Available;
        }
        VehicleEvent::VehicleSentToService { task_id, .. } => match &mut state.status {
            VehicleStatus::InService { open_tasks } => {
                open_tasks.insert(*task_id);
            }
            _ => {
                state.status = VehicleStatus::InService {
                    open_tasks: BTreeSet::from([*task_id]),
                };
            }
        },
        VehicleEvent::VehicleServiceTaskClosed { task_id, .. } => {
            if let VehicleStatus::InService { open_tasks } = &mut state.status {
                open_tasks.remove(task_id);
            }
        }
        VehicleEvent::VehicleReleasedFromService { .. } => {
            state.status = VehicleStatus::Available;
        }
        VehicleEvent::VehicleReserved {
            reservation_id,
            customer_id,
            ..
        } => {
            state.status = VehicleStatus::Reserved {
                reservation_id: *reservation_id,
                customer_id: *customer_id,
            };
        }
        VehicleEvent::VehicleReservationReleased { .. } => {
            state.status = VehicleStatus::Available;
        }
    }
    state
}
