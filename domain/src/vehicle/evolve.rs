//! How vehicle events change what we know about the car.

use super::{Telemetry, VehicleEvent, VehicleState, VehicleStatus};

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
        VehicleEvent::VehicleReturned { .. } => state.status = VehicleStatus::Available,
    }
    state
}
