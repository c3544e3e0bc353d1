//! Vehicle rules.

use super::{VehicleCommand, VehicleContext, VehicleEvent, VehicleState, VehicleStatus, telemetry};
use crate::rejection::{FieldError, Rejection};

pub(super) fn decide(
    state: &VehicleState,
    command: &VehicleCommand,
    context: &VehicleContext,
) -> Result<Vec<VehicleEvent>, Rejection> {
    let vehicle_id = context.vehicle_id;
    let now = context.now;
    if !state.exists() && !matches!(command, VehicleCommand::AddToFleet { .. }) {
        return Err(Rejection::VehicleNotFound { vehicle_id });
    }
    match command {
        VehicleCommand::AddToFleet {
            details,
            position,
            fuel_percent,
            odometer_m,
        } => {
            if state.exists() {
                return Err(Rejection::VehicleAlreadyAdded { vehicle_id });
            }
            // The details are appended to this car's stream; another id in them would file one
            // car's registration under another car's history.
            if details.vehicle_id != vehicle_id {
                return Err(FieldError::new(
                    "vehicle_id",
                    "must be the id of the vehicle being added",
                )
                .into());
            }
            Ok(vec![VehicleEvent::VehicleAddedToFleet {
                details: details.clone(),
                position: *position,
                fuel_percent: *fuel_percent,
                odometer_m: *odometer_m,
                added_at: now,
            }])
        }
        VehicleCommand::RecordTelemetry(reading) => {
            if let Some(last) = &state.telemetry {
                if reading.odometer_m < last.odometer_m {
                    return Err(Rejection::OdometerWentBackwards {
                        vehicle_id,
                        last_m: last.odometer_m.get(),
                        reported_m: reading.odometer_m.get(),
                    });
                }
                // A unit reports every few seconds; only a meaningful change is worth an event.
                let in_trip = matches!(state.status, VehicleStatus::InTrip { .. });
                if !telemetry::is_meaningful(last, reading, in_trip) {
                    return Ok(Vec::new());
                }
            }
            Ok(vec![VehicleEvent::TelemetryRecorded {
                vehicle_id,
                telemetry: reading.clone(),
                recorded_at: now,
            }])
        }
        VehicleCommand::Rent {
            trip_id,
            customer_id,
        } => match state.status {
            VehicleStatus::Available => Ok(vec![VehicleEvent::VehicleRented {
                vehicle_id,
                trip_id: *trip_id,
                customer_id: *customer_id,
                rented_at: now,
                reservation_id: None,
            }]),
            // The reserving customer turns the reservation into a trip; nobody else may.
            VehicleStatus::Reserved {
                reservation_id,
                customer_id: holder,
            } if holder == *customer_id => Ok(vec![VehicleEvent::VehicleRented {
                vehicle_id,
                trip_id: *trip_id,
                customer_id: *customer_id,
                rented_at: now,
                reservation_id: Some(reservation_id),
            }]),
            ref other => Err(Rejection::VehicleNotAvailable {
                vehicle_id,
                status: other.as_str().to_owned(),
            }),
        },
        VehicleCommand::Return { trip_id } => match state.status {
            VehicleStatus::InTrip {
                trip_id: current, ..
            } if current == *trip_id => Ok(vec![VehicleEvent::VehicleReturned {
                vehicle_id,
                trip_id: *trip_id,
                returned_at: now,
            }]),
            _ => Err(Rejection::VehicleNotInTrip {
                vehicle_id,
                trip_id: *trip_id,
            }),
        },
        VehicleCommand::SendToService { task_id, kind } => match &state.status {
            // A car already in service may take more work (a wash on top of a repair).
            VehicleStatus::Available | VehicleStatus::InService { .. } => {
                Ok(vec![VehicleEvent::VehicleSentToService {
                    vehicle_id,
                    task_id: *task_id,
                    kind: *kind,
                    sent_at: now,
                }])
            }
            // In a trip or reserved: the car is a customer's; it goes to service after them.
            other => Err(Rejection::VehicleInUse {
                vehicle_id,
                status: other.as_str().to_owned(),
            }),
        },
        VehicleCommand::Reserve {
            reservation_id,
            customer_id,
        } => match state.status {
            VehicleStatus::Available => Ok(vec![VehicleEvent::VehicleReserved {
                vehicle_id,
                reservation_id: *reservation_id,
                customer_id: *customer_id,
                reserved_at: now,
            }]),
            ref other => Err(Rejection::VehicleNotAvailable {
                vehicle_id,
                status: other.as_str().to_owned(),
            }),
        },
        VehicleCommand::CloseServiceTask { task_id } => match &state.status {
            VehicleStatus::InService { open_tasks } if open_tasks.contains(task_id) => {
                let mut events = vec![VehicleEvent::VehicleServiceTaskClosed {
                    vehicle_id,
                    task_id: *task_id,
                    closed_at: now,
                }];
                if open_tasks.len() == 1 {
                    events.push(VehicleEvent::VehicleReleasedFromService {
                        vehicle_id,
                        released_at: now,
                    });
                }
                Ok(events)
            }
            _ => Err(Rejection::VehicleNotInService {
                vehicle_id,
                task_id: *task_id,
            }),
        },
        VehicleCommand::ReleaseReservation { reservation_id } => match state.status {
            VehicleStatus::Reserved {
                reservation_id: current,
                ..
            } if current == *reservation_id => Ok(vec![VehicleEvent::VehicleReservationReleased {
                vehicle_id,
                reservation_id: *reservation_id,
                released_at: now,
            }]),
            _ => Err(Rejection::VehicleNotReserved {
                vehicle_id,
                reservation_id: *reservation_id,
            }),
        },
    }
}
