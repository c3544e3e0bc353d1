//! Fleet steps across the car and its tasks, one test per rule: given the car's (and the
//! task's, or the trip's) history, when a task is opened or completed or damage is reported,
//! then the events for each stream, or the rejection.

use super::*;
use crate::damage::MAX_PHOTOS;
use crate::service_task::ServiceTaskOpening;
use crate::testing::*;
use crate::trip::{Trip, TripEvent};
use crate::vehicle::Vehicle;
use insta::assert_yaml_snapshot;

#[derive(Debug, Default, Serialize)]
struct Given {
    vehicle: Vec<VehicleEvent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    task: Vec<ServiceTaskEvent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    trip: Vec<TripEvent>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
enum When {
    OpenServiceTask {
        at: DateTime<Utc>,
        task_id: ServiceTaskId,
        vehicle_id: VehicleId,
        kind: ServiceTaskKind,
        note: Option<String>,
    },
    CompleteServiceTask {
        at: DateTime<Utc>,
        task_id: ServiceTaskId,
        staff_id: StaffId,
    },
    ReportDamage {
        at: DateTime<Utc>,
        report_id: DamageReportId,
        vehicle_id: VehicleId,
        trip_id: Option<TripId>,
        reporter: Reporter,
        description: String,
        photo_urls: Vec<PhotoUrl>,
    },
}

#[derive(Debug, Serialize)]
struct Scenario<T> {
    given: Given,
    when: When,
    then: Result<T, Rejection>,
}

impl<T: std::fmt::Debug> Scenario<T> {
    fn decided(&self) -> &T {
        match &self.then {
            Ok(decision) => decision,
            Err(rejection) => panic!("expected a decision, got {rejection:?}"),
        }
    }

    fn rejection(&self) -> &Rejection {
        match &self.then {
            Err(rejection) => rejection,
            Ok(decision) => panic!("expected a rejection, got {decision:?}"),
        }
    }
}

fn open(given: Given, vehicle_id: VehicleId, kind: ServiceTaskKind) -> Scenario<FleetDecision> {
    let note = Some("Before the morning peak".to_owned());
    let then = open_service_task(OpenServiceTask {
        task_id: WASH_TASK,
        now: at(NOW),
        task: &ServiceTask::fold(&given.task),
        vehicle_id,
        vehicle: &Vehicle::fold(&given.vehicle),
        kind,
        note: note.clone(),
        after_trip_id: None,
    });
    Scenario {
        when: When::OpenServiceTask {
            at: at(NOW),
            task_id: WASH_TASK,
            vehicle_id,
            kind,
            note,
        },
        then,
        given,
    }
}

fn complete(given: Given, task_id: ServiceTaskId) -> Scenario<FleetDecision> {
    let staff_id = staff("fleet-7");
    let then = complete_service_task(CompleteServiceTask {
        task_id,
        now: at(NOW),
        task: &ServiceTask::fold(&given.task),
        vehicle: &Vehicle::fold(&given.vehicle),
        staff_id: staff_id.clone(),
        note: None,
    });
    Scenario {
        when: When::CompleteServiceTask {
            at: at(NOW),
            task_id,
            staff_id,
        },
        then,
        given,
    }
}

fn staff(id: &str) -> StaffId {
    StaffId::parse("staff_id", id).unwrap()
}

fn photo(n: usize) -> PhotoUrl {
    PhotoUrl::parse(
        "photo_urls",
        &format!("https://photos.velka.example/d/{n}.jpg"),
    )
    .unwrap()
}

/// A damage report on the Kia, at `when`, by `reporter`, naming `trip_id`.
fn report(
    given: Given,
    when: &str,
    reporter: Reporter,
    trip_id: Option<TripId>,
    photos: usize,
) -> Scenario<Vec<DamageReportEvent>> {
    let description = "Scratch on the rear bumper, left side".to_owned();
    let photo_urls: Vec<PhotoUrl> = (1..=photos).map(photo).collect();
    let trip = Trip::fold(&given.trip);
    let then = report_damage(ReportDamage {
        report_id: REPORT_1,
        now: at(when),
        report: &DamageReportState::default(),
        vehicle_id: KIA,
        vehicle: &Vehicle::fold(&given.vehicle),
        trip: trip_id.map(|id| (id, &trip)),
        reporter: reporter.clone(),
        description: description.clone(),
        photo_urls: photo_urls.clone(),
        policy: &fleet_policy(),
    });
    Scenario {
        when: When::ReportDamage {
            at: at(when),
            report_id: REPORT_1,
            vehicle_id: KIA,
            trip_id,
            reporter,
            description,
            photo_urls,
        },
        then,
        given,
    }
}

fn kia(events: impl IntoIterator<Item = VehicleEvent>) -> Given {
    Given {
        vehicle: events.into_iter().collect(),
        ..Given::default()
    }
}

fn sent(task_id: ServiceTaskId, kind: ServiceTaskKind) -> VehicleEvent {
    VehicleEvent::VehicleSentToService {
        vehicle_id: KIA,
        task_id,
        kind,
        sent_at: at("2026-11-25T08:00:00Z"),
    }
}

/// The wash task, opened on the Kia at 08:00 and started by fleet-7.
fn wash_in_progress() -> Vec<ServiceTaskEvent> {
    vec![
        ServiceTaskEvent::ServiceTaskOpened {
            opening: ServiceTaskOpening {
                task_id: WASH_TASK,
                vehicle_id: KIA,
                kind: ServiceTaskKind::Wash,
                note: None,
                after_trip_id: None,
            },
            opened_at: at("2026-11-25T08:00:00Z"),
        },
        ServiceTaskEvent::ServiceTaskAssigned {
            task_id: WASH_TASK,
            staff_id: staff("fleet-7"),
            assigned_at: at("2026-11-25T08:05:00Z"),
        },
        ServiceTaskEvent::ServiceTaskStarted {
            task_id: WASH_TASK,
            staff_id: staff("fleet-7"),
            started_at: at("2026-11-25T08:30:00Z"),
        },
    ]
}

fn ivan() -> Reporter {
    Reporter::Customer { customer_id: IVAN }
}

/// The Kia after Ivan's trip 1 handed it back at 10:20.
fn kia_after_trip_1() -> Vec<VehicleEvent> {
    vec![
        added(KIA),
        rented(KIA, TRIP_1, IVAN, NOW),
        VehicleEvent::VehicleReturned {
            vehicle_id: KIA,
            trip_id: TRIP_1,
            returned_at: at("2026-11-25T10:20:00Z"),
        },
    ]
}

// Opening a task.

#[test]
fn open_takes_an_available_car_out_of_rotation() {
    let scenario = open(kia([added(KIA)]), KIA, ServiceTaskKind::Wash);
    let decision = scenario.decided();
    assert!(matches!(
        decision.task[..],
        [ServiceTaskEvent::ServiceTaskOpened { .. }]
    ));
    let car = Vehicle::fold(scenario.given.vehicle.iter().chain(&decision.vehicle));
    assert_eq!(car.status.as_str(), "in_service");
    assert_yaml_snapshot!(scenario);
}

#[test]
fn open_a_second_task_on_a_car_in_service_keeps_both_open() {
    let scenario = open(
        kia([added(KIA), sent(REFUEL_TASK, ServiceTaskKind::Refuel)]),
        KIA,
        ServiceTaskKind::Wash,
    );
    let decision = scenario.decided();
    let car = Vehicle::fold(scenario.given.vehicle.iter().chain(&decision.vehicle));
    assert_eq!(
        car.status,
        VehicleStatus::InService {
            open_tasks: [REFUEL_TASK, WASH_TASK].into(),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn open_on_a_car_in_a_trip_is_rejected() {
    let scenario = open(
        kia([added(KIA), rented(KIA, TRIP_1, IVAN, NOW)]),
        KIA,
        ServiceTaskKind::Wash,
    );
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
fn open_on_a_car_not_in_the_fleet_is_rejected() {
    let scenario = open(kia([added(SKODA)]), KIA, ServiceTaskKind::Repair);
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotFound { vehicle_id: KIA }
    );
    assert_yaml_snapshot!(scenario);
}

// Completing a task.

#[test]
fn complete_the_cars_last_open_task_makes_it_available_again() {
    let given = Given {
        vehicle: vec![added(KIA), sent(WASH_TASK, ServiceTaskKind::Wash)],
        task: wash_in_progress(),
        ..Given::default()
    };
    let scenario = complete(given, WASH_TASK);
    let decision = scenario.decided();
    assert!(matches!(
        decision.vehicle[..],
        [
            VehicleEvent::VehicleServiceTaskClosed { .. },
            VehicleEvent::VehicleReleasedFromService { .. }
        ]
    ));
    let car = Vehicle::fold(scenario.given.vehicle.iter().chain(&decision.vehicle));
    assert_eq!(car.status, VehicleStatus::Available);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn complete_one_of_two_open_tasks_leaves_the_car_in_service() {
    let given = Given {
        vehicle: vec![
            added(KIA),
            sent(REFUEL_TASK, ServiceTaskKind::Refuel),
            sent(WASH_TASK, ServiceTaskKind::Wash),
        ],
        task: wash_in_progress(),
        ..Given::default()
    };
    let scenario = complete(given, WASH_TASK);
    let decision = scenario.decided();
    let car = Vehicle::fold(scenario.given.vehicle.iter().chain(&decision.vehicle));
    assert_eq!(
        car.status,
        VehicleStatus::InService {
            open_tasks: [REFUEL_TASK].into(),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn complete_a_task_that_was_never_opened_is_rejected() {
    let scenario = complete(kia([added(KIA)]), WASH_TASK);
    assert_eq!(
        scenario.rejection(),
        &Rejection::ServiceTaskNotFound { task_id: WASH_TASK }
    );
    assert_yaml_snapshot!(scenario);
}

// After a trip.

#[test]
fn a_car_handed_back_below_the_fuel_threshold_needs_a_refuel_task() {
    let mut vehicle = kia_after_trip_1();
    vehicle.push(telemetry_recorded(
        KIA,
        reading(red_square(), 19, START_ODOMETER_M, true),
        "2026-11-25T10:21:00Z",
    ));
    let task = after_trip(&Vehicle::fold(&vehicle), &fleet_policy());
    assert_yaml_snapshot!(task, @r#"
    kind: refuel
    note: "fuel at 19 % after the trip, below 20 %"
    "#);
}

#[test]
fn a_car_handed_back_at_the_fuel_threshold_needs_nothing() {
    let mut vehicle = kia_after_trip_1();
    vehicle.push(telemetry_recorded(
        KIA,
        reading(red_square(), 20, START_ODOMETER_M, true),
        "2026-11-25T10:21:00Z",
    ));
    assert_eq!(after_trip(&Vehicle::fold(&vehicle), &fleet_policy()), None);
    let strict = FleetPolicy {
        low_fuel_percent: 25,
        ..fleet_policy()
    };
    assert!(
        after_trip(&Vehicle::fold(&vehicle), &strict).is_some(),
        "the threshold is the policy's"
    );
}

// Damage reports.

#[test]
fn report_by_the_customer_in_a_trip_ties_it_to_the_trip() {
    let scenario = report(
        kia([added(KIA), rented(KIA, TRIP_1, IVAN, NOW)]),
        "2026-11-25T10:02:00Z",
        ivan(),
        None,
        2,
    );
    assert!(matches!(
        scenario.decided()[..],
        [DamageReportEvent::DamageReported { ref filing, .. }] if filing.trip_id == Some(TRIP_1)
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_by_the_customer_within_the_window_after_the_trip_is_accepted() {
    let given = Given {
        vehicle: kia_after_trip_1(),
        trip: vec![trip_started(NOW)],
        ..Given::default()
    };
    let scenario = report(given, "2026-11-25T10:50:00Z", ivan(), Some(TRIP_1), 1);
    assert!(matches!(
        scenario.decided()[..],
        [DamageReportEvent::DamageReported { ref filing, .. }] if filing.trip_id == Some(TRIP_1)
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_by_the_customer_after_the_window_is_rejected() {
    let scenario = report(
        kia(kia_after_trip_1()),
        "2026-11-25T10:50:01Z",
        ivan(),
        None,
        1,
    );
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotRentedByCustomer {
            vehicle_id: KIA,
            customer_id: IVAN,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_by_a_customer_on_someone_elses_car_is_rejected() {
    let scenario = report(
        kia([added(KIA), rented(KIA, TRIP_1, IVAN, NOW)]),
        "2026-11-25T10:02:00Z",
        Reporter::Customer { customer_id: MARIA },
        None,
        1,
    );
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotRentedByCustomer {
            vehicle_id: KIA,
            customer_id: MARIA,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_by_the_customer_naming_another_trip_is_rejected() {
    let mut other_trip = trip_start(TRIP_2, MARIA, KIA);
    other_trip.tariff = standard_tariff();
    let given = Given {
        vehicle: vec![added(KIA), rented(KIA, TRIP_1, IVAN, NOW)],
        trip: vec![TripEvent::TripStarted {
            start: other_trip,
            started_at: at("2026-11-24T10:00:00Z"),
        }],
        ..Given::default()
    };
    let scenario = report(given, "2026-11-25T10:02:00Z", ivan(), Some(TRIP_2), 1);
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(error) if error.field == "trip_id"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_by_staff_on_any_car_names_the_trip_if_given() {
    let given = Given {
        vehicle: kia_after_trip_1(),
        trip: vec![trip_started(NOW)],
        ..Given::default()
    };
    let scenario = report(
        given,
        "2026-11-26T09:00:00Z",
        Reporter::Staff,
        Some(TRIP_1),
        3,
    );
    assert!(matches!(
        scenario.decided()[..],
        [DamageReportEvent::DamageReported { ref filing, .. }] if filing.trip_id == Some(TRIP_1)
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_naming_a_trip_in_another_car_is_rejected() {
    let given = Given {
        vehicle: vec![added(KIA)],
        trip: vec![TripEvent::TripStarted {
            start: trip_start(TRIP_1, IVAN, SKODA),
            started_at: at(NOW),
        }],
        ..Given::default()
    };
    let scenario = report(
        given,
        "2026-11-26T09:00:00Z",
        Reporter::Staff,
        Some(TRIP_1),
        1,
    );
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(error) if error.field == "trip_id"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_naming_a_trip_that_never_started_is_rejected() {
    let scenario = report(kia([added(KIA)]), NOW, Reporter::Staff, Some(TRIP_2), 1);
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripNotFound { trip_id: TRIP_2 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_on_a_car_not_in_the_fleet_is_rejected() {
    let scenario = report(kia([added(SKODA)]), NOW, Reporter::Staff, None, 1);
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotFound { vehicle_id: KIA }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_without_photos_or_with_too_many_is_rejected() {
    for photos in [0, MAX_PHOTOS + 1] {
        let scenario = report(kia([added(KIA)]), NOW, Reporter::Staff, None, photos);
        assert!(matches!(
            scenario.rejection(),
            Rejection::InvalidField(error) if error.field == "photo_urls"
        ));
    }
    let scenario = report(kia([added(KIA)]), NOW, Reporter::Staff, None, 0);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn report_with_a_blank_description_is_rejected() {
    let then = report_damage(ReportDamage {
        report_id: REPORT_1,
        now: at(NOW),
        report: &DamageReportState::default(),
        vehicle_id: KIA,
        vehicle: &Vehicle::fold(&[added(KIA)]),
        trip: None,
        reporter: Reporter::Staff,
        description: " \n ".to_owned(),
        photo_urls: vec![photo(1)],
        policy: &fleet_policy(),
    });
    assert!(matches!(
        then,
        Err(Rejection::InvalidField(error)) if error.field == "description"
    ));
}

#[test]
fn every_fleet_event_round_trips_through_the_store_encoding() {
    use crate::decider::{decode, encode};
    fn round_trip<E: crate::DomainEvent + PartialEq>(event: &E) {
        let encoded = encode(event).unwrap();
        let decoded: E = decode(&encoded.event_type, encoded.schema_version, encoded.data).unwrap();
        assert_eq!(&decoded, event);
    }
    wash_in_progress().iter().for_each(round_trip);
    round_trip(&ServiceTaskEvent::ServiceTaskCompleted {
        task_id: WASH_TASK,
        vehicle_id: KIA,
        staff_id: staff("fleet-7"),
        note: Some("Done".to_owned()),
        completed_at: at(NOW),
    });
    [
        sent(WASH_TASK, ServiceTaskKind::Wash),
        VehicleEvent::VehicleServiceTaskClosed {
            vehicle_id: KIA,
            task_id: WASH_TASK,
            closed_at: at(NOW),
        },
        VehicleEvent::VehicleReleasedFromService {
            vehicle_id: KIA,
            released_at: at(NOW),
        },
    ]
    .iter()
    .for_each(round_trip);
    let given = Given {
        vehicle: vec![added(KIA), rented(KIA, TRIP_1, IVAN, NOW)],
        trip: vec![trip_started(NOW)],
        ..Given::default()
    };
    let scenario = report(given, NOW, ivan(), Some(TRIP_1), 3);
    scenario.decided().iter().for_each(round_trip);
}
