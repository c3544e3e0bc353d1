//! Vehicle rules, one test per rule: given the car's history, when fleet staff, the telematics
//! unit or a trip asks something, then these events or this rejection.

use super::*;
use crate::rejection::FieldError;
use crate::testing::*;
use insta::assert_yaml_snapshot;

fn kia_now() -> VehicleContext {
    vehicle_context(KIA, NOW)
}

fn add(vehicle_id: VehicleId) -> VehicleCommand {
    VehicleCommand::AddToFleet {
        details: details(vehicle_id),
        position: red_square(),
        fuel_percent: fuel(80),
        odometer_m: OdometerM::from_m(START_ODOMETER_M),
    }
}

fn returned(trip_id: TripId) -> VehicleEvent {
    VehicleEvent::VehicleReturned {
        vehicle_id: KIA,
        trip_id,
        returned_at: at("2026-11-24T18:30:00Z"),
    }
}

// Joining the fleet.

#[test]
fn add_to_fleet_records_the_car_where_it_stands() {
    let scenario = Vehicle::given([]).when(add(KIA), kia_now()).then();
    assert!(matches!(
        scenario.events(),
        [VehicleEvent::VehicleAddedToFleet { .. }]
    ));
    let state = Vehicle::fold(scenario.events());
    assert_eq!(state.status, VehicleStatus::Available);
    assert_eq!(state.telemetry.map(|t| t.doors_locked), Some(true));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn add_the_same_car_twice_is_rejected() {
    let scenario = Vehicle::given([added(KIA)])
        .when(add(KIA), kia_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleAlreadyAdded { vehicle_id: KIA }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn add_with_details_of_another_car_is_rejected() {
    let scenario = Vehicle::given([]).when(add(SKODA), kia_now()).then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "vehicle_id"
    ));
    assert_yaml_snapshot!(scenario);
}

// Telemetry.

#[test]
fn telemetry_that_changed_is_recorded() {
    let moved = reading(chistye_prudy(), 78, START_ODOMETER_M + 2_400, false);
    let scenario = Vehicle::given([added(KIA)])
        .when(VehicleCommand::RecordTelemetry(moved.clone()), kia_now())
        .then();
    assert_eq!(
        scenario.events(),
        [VehicleEvent::TelemetryRecorded {
            vehicle_id: KIA,
            telemetry: moved,
            recorded_at: at(NOW),
        }]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn telemetry_identical_to_the_last_reading_records_nothing() {
    let same = reading(red_square(), 80, START_ODOMETER_M, true);
    let scenario = Vehicle::given([added(KIA)])
        .when(VehicleCommand::RecordTelemetry(same), kia_now())
        .then();
    assert!(scenario.events().is_empty());
    assert_yaml_snapshot!(scenario);
}

#[test]
fn telemetry_within_the_noise_thresholds_records_nothing() {
    // 11 m of GPS jitter, fuel 80 → 81 % (same band), 40 m on the odometer of a parked car.
    let square = red_square();
    let jitter = crate::geo::GeoPoint {
        lat: square.lat + 0.0001,
        lon: square.lon,
    };
    let noisy = reading(jitter, 81, START_ODOMETER_M + 40, true);
    let scenario = Vehicle::given([added(KIA)])
        .when(VehicleCommand::RecordTelemetry(noisy), kia_now())
        .then();
    assert!(scenario.events().is_empty());
    assert_yaml_snapshot!(scenario);
}

#[test]
fn telemetry_with_the_odometer_going_backwards_is_rejected() {
    let rolled_back = reading(red_square(), 80, START_ODOMETER_M - 1, true);
    let scenario = Vehicle::given([added(KIA)])
        .when(VehicleCommand::RecordTelemetry(rolled_back), kia_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::OdometerWentBackwards {
            vehicle_id: KIA,
            last_m: START_ODOMETER_M,
            reported_m: START_ODOMETER_M - 1,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn telemetry_for_a_car_not_in_the_fleet_is_rejected() {
    let scenario = Vehicle::given([])
        .when(
            VehicleCommand::RecordTelemetry(reading(red_square(), 80, START_ODOMETER_M, true)),
            kia_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotFound { vehicle_id: KIA }
    );
    assert_yaml_snapshot!(scenario);
}

// Renting and returning.

#[test]
fn rent_an_available_car() {
    let scenario = Vehicle::given([added(KIA)])
        .when(
            VehicleCommand::Rent {
                trip_id: TRIP_1,
                customer_id: IVAN,
            },
            kia_now(),
        )
        .then();
    assert_eq!(scenario.events(), [rented(KIA, TRIP_1, IVAN, NOW)]);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn rent_a_car_in_a_trip_is_rejected() {
    let scenario = Vehicle::given([
        added(KIA),
        rented(KIA, TRIP_1, IVAN, "2026-11-25T09:40:00Z"),
    ])
    .when(
        VehicleCommand::Rent {
            trip_id: TRIP_2,
            customer_id: MARIA,
        },
        kia_now(),
    )
    .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::VehicleNotAvailable { status, .. } if status == "in_trip"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn rent_a_car_returned_from_its_last_trip() {
    let scenario = Vehicle::given([
        added(KIA),
        rented(KIA, TRIP_1, IVAN, "2026-11-24T18:00:00Z"),
        returned(TRIP_1),
    ])
    .when(
        VehicleCommand::Rent {
            trip_id: TRIP_2,
            customer_id: MARIA,
        },
        kia_now(),
    )
    .then();
    assert_eq!(scenario.events(), [rented(KIA, TRIP_2, MARIA, NOW)]);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn return_from_the_trip_that_has_the_car() {
    let scenario = Vehicle::given([
        added(KIA),
        rented(KIA, TRIP_1, IVAN, "2026-11-25T09:40:00Z"),
    ])
    .when(VehicleCommand::Return { trip_id: TRIP_1 }, kia_now())
    .then();
    assert_eq!(
        scenario.events(),
        [VehicleEvent::VehicleReturned {
            vehicle_id: KIA,
            trip_id: TRIP_1,
            returned_at: at(NOW),
        }]
    );
    assert_eq!(
        Vehicle::fold(scenario.given.iter().chain(scenario.events())).status,
        VehicleStatus::Available
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn return_from_another_trip_is_rejected() {
    let scenario = Vehicle::given([
        added(KIA),
        rented(KIA, TRIP_1, IVAN, "2026-11-25T09:40:00Z"),
    ])
    .when(VehicleCommand::Return { trip_id: TRIP_2 }, kia_now())
    .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotInTrip {
            vehicle_id: KIA,
            trip_id: TRIP_2,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn return_a_car_that_is_in_no_trip_is_rejected() {
    let scenario = Vehicle::given([added(KIA)])
        .when(VehicleCommand::Return { trip_id: TRIP_1 }, kia_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotInTrip {
            vehicle_id: KIA,
            trip_id: TRIP_1,
        }
    );
    assert_yaml_snapshot!(scenario);
}

// Reservations.

#[test]
fn reserve_an_available_car() {
    let scenario = Vehicle::given([added(KIA)])
        .when(
            VehicleCommand::Reserve {
                reservation_id: RESERVATION_1,
                customer_id: IVAN,
            },
            kia_now(),
        )
        .then();
    assert_eq!(scenario.events(), [reserved(RESERVATION_1, IVAN, NOW)]);
    assert_eq!(
        Vehicle::fold([added(KIA)].iter().chain(scenario.events())).status,
        VehicleStatus::Reserved {
            reservation_id: RESERVATION_1,
            customer_id: IVAN,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reserve_a_reserved_car_is_rejected() {
    let scenario = Vehicle::given([
        added(KIA),
        reserved(RESERVATION_1, IVAN, "2026-11-25T09:55:00Z"),
    ])
    .when(
        VehicleCommand::Reserve {
            reservation_id: RESERVATION_2,
            customer_id: MARIA,
        },
        kia_now(),
    )
    .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::VehicleNotAvailable { status, .. } if status == "reserved"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn rent_a_car_reserved_by_the_same_customer_takes_it_from_the_reservation() {
    let scenario = Vehicle::given([
        added(KIA),
        reserved(RESERVATION_1, IVAN, "2026-11-25T09:55:00Z"),
    ])
    .when(
        VehicleCommand::Rent {
            trip_id: TRIP_1,
            customer_id: IVAN,
        },
        kia_now(),
    )
    .then();
    assert_eq!(
        scenario.events(),
        [VehicleEvent::VehicleRented {
            vehicle_id: KIA,
            trip_id: TRIP_1,
            customer_id: IVAN,
            rented_at: at(NOW),
            reservation_id: Some(RESERVATION_1),
        }]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn rent_a_car_reserved_by_another_customer_is_rejected() {
    let scenario = Vehicle::given([
        added(KIA),
        reserved(RESERVATION_1, IVAN, "2026-11-25T09:55:00Z"),
    ])
    .when(
        VehicleCommand::Rent {
            trip_id: TRIP_2,
            customer_id: MARIA,
        },
        kia_now(),
    )
    .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::VehicleNotAvailable { status, .. } if status == "reserved"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn release_by_the_reservation_holding_the_car_makes_it_available() {
    let scenario = Vehicle::given([
        added(KIA),
        reserved(RESERVATION_1, IVAN, "2026-11-25T09:55:00Z"),
    ])
    .when(
        VehicleCommand::ReleaseReservation {
            reservation_id: RESERVATION_1,
        },
        kia_now(),
    )
    .then();
    assert_eq!(
        scenario.events(),
        [VehicleEvent::VehicleReservationReleased {
            vehicle_id: KIA,
            reservation_id: RESERVATION_1,
            released_at: at(NOW),
        }]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn release_by_a_reservation_not_holding_the_car_is_rejected() {
    let scenario = Vehicle::given([
        added(KIA),
        reserved(RESERVATION_1, IVAN, "2026-11-25T09:55:00Z"),
    ])
    .when(
        VehicleCommand::ReleaseReservation {
            reservation_id: RESERVATION_2,
        },
        kia_now(),
    )
    .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotReserved {
            vehicle_id: KIA,
            reservation_id: RESERVATION_2,
        }
    );
    assert_yaml_snapshot!(scenario);
}

// Service: the car's side of fleet work (the task's side is in `crate::fleet`'s tests).

fn sent_to_service(task_id: crate::ids::ServiceTaskId) -> VehicleEvent {
    VehicleEvent::VehicleSentToService {
        vehicle_id: KIA,
        task_id,
        kind: crate::service_task::ServiceTaskKind::Wash,
        sent_at: at("2026-11-25T09:00:00Z"),
    }
}

#[test]
fn rent_a_car_in_service_is_rejected() {
    let scenario = Vehicle::given([added(KIA), sent_to_service(WASH_TASK)])
        .when(
            VehicleCommand::Rent {
                trip_id: TRIP_1,
                customer_id: IVAN,
            },
            kia_now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::VehicleNotAvailable { status, .. } if status == "in_service"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn send_to_service_a_car_in_a_trip_is_rejected() {
    let scenario = Vehicle::given([added(KIA), rented(KIA, TRIP_1, IVAN, NOW)])
        .when(
            VehicleCommand::SendToService {
                task_id: WASH_TASK,
                kind: crate::service_task::ServiceTaskKind::Wash,
            },
            kia_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleInUse {
            vehicle_id: KIA,
            status: "in_trip".to_owned(),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn close_a_service_task_the_car_does_not_have_is_rejected() {
    let scenario = Vehicle::given([added(KIA), sent_to_service(WASH_TASK)])
        .when(
            VehicleCommand::CloseServiceTask {
                task_id: REFUEL_TASK,
            },
            kia_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotInService {
            vehicle_id: KIA,
            task_id: REFUEL_TASK,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn returning_from_a_trip_remembers_it_as_the_last_trip() {
    let state = Vehicle::fold(&[added(KIA), rented(KIA, TRIP_1, IVAN, NOW), returned(TRIP_1)]);
    assert_eq!(
        state.last_trip,
        Some(LastTrip {
            trip_id: TRIP_1,
            customer_id: IVAN,
            returned_at: at("2026-11-24T18:30:00Z"),
        })
    );
}
