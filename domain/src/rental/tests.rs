//! Starting and ending trips, one test per rule: given the customer's, the car's and the trip's
//! histories, when a trip starts or ends, then the trip's and the car's events and the claims
//! taken or given up, or a rejection. A property at the end plays random rentals by several
//! customers on several cars and checks the exclusivity invariants over the whole history.

use super::*;
use crate::customer::{BlockReason, Customer, CustomerCommand, CustomerContext, CustomerEvent};
use crate::money::Kopecks;
use crate::service_task::{ServiceTaskEvent, ServiceTaskKind};
use crate::testing::*;
use crate::trip::TripPhase;
use crate::vehicle::{Telemetry, VehicleStatus};
use insta::assert_yaml_snapshot;
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------------
// Scenario record: given three histories (and, when ending, the operating area), when start or
// end, then the decision or the rejection.

#[derive(Debug, Default, Serialize)]
struct Given {
    customer: Vec<CustomerEvent>,
    vehicle: Vec<VehicleEvent>,
    trip: Vec<TripEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    area: Option<OperatingArea>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
enum When {
    StartTrip {
        at: DateTime<Utc>,
        trip_id: TripId,
        customer_id: CustomerId,
        customer_active_trip: Option<TripId>,
        vehicle_id: VehicleId,
        tariff: Tariff,
    },
    EndTrip {
        at: DateTime<Utc>,
        trip_id: TripId,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Then {
    Decided(RentalDecision),
    Rejected(Rejection),
}

#[derive(Debug, Serialize)]
struct Scenario {
    given: Given,
    when: When,
    then: Then,
}

impl Scenario {
    fn decision(&self) -> &RentalDecision {
        match &self.then {
            Then::Decided(decision) => decision,
            Then::Rejected(rejection) => panic!("expected a decision, got {rejection:?}"),
        }
    }

    fn rejection(&self) -> &Rejection {
        match &self.then {
            Then::Rejected(rejection) => rejection,
            Then::Decided(decision) => panic!("expected a rejection, got {decision:?}"),
        }
    }
}

/// Who starts which trip in which car, when.
struct Start {
    trip_id: TripId,
    customer_id: CustomerId,
    customer_active_trip: Option<TripId>,
    vehicle_id: VehicleId,
    at: &'static str,
}

/// Ivan takes the Kia as trip 1 at 10:00, with no other trip of his.
fn ivan_takes_the_kia() -> Start {
    Start {
        trip_id: TRIP_1,
        customer_id: IVAN,
        customer_active_trip: None,
        vehicle_id: KIA,
        at: NOW,
    }
}

fn given() -> Given {
    Given::default()
}

impl Given {
    fn customer(mut self, events: impl IntoIterator<Item = CustomerEvent>) -> Self {
        self.customer.extend(events);
        self
    }

    fn vehicle(mut self, events: impl IntoIterator<Item = VehicleEvent>) -> Self {
        self.vehicle.extend(events);
        self
    }

    fn trip(mut self, events: impl IntoIterator<Item = TripEvent>) -> Self {
        self.trip.extend(events);
        self
    }

    fn start(self, start: Start) -> Scenario {
        let now = at(start.at);
        let tariff = standard_tariff();
        let outcome = start_trip(StartTrip {
            trip_id: start.trip_id,
            now,
            trip: &Trip::fold(&self.trip),
            customer_id: start.customer_id,
            customer: &Customer::fold(&self.customer),
            customer_active_trip: start.customer_active_trip,
            vehicle_id: start.vehicle_id,
            vehicle: &Vehicle::fold(&self.vehicle),
            tariff: tariff.clone(),
            customer_reservation: None,
            reservation: None,
            quote: None,
        });
        Scenario {
            when: When::StartTrip {
                at: now,
                trip_id: start.trip_id,
                customer_id: start.customer_id,
                customer_active_trip: start.customer_active_trip,
                vehicle_id: start.vehicle_id,
                tariff,
            },
            then: outcome.map_or_else(Then::Rejected, Then::Decided),
            given: self,
        }
    }

    /// Ends `trip_id` at `when` in Moscow (with Gorky Park forbidden).
    fn end(mut self, trip_id: TripId, when: &str) -> Scenario {
        let now = at(when);
        let area = moscow();
        let outcome = end_trip(EndTrip {
            trip_id,
            now,
            trip: &Trip::fold(&self.trip),
            vehicle: &Vehicle::fold(&self.vehicle),
            area: &area,
            fleet: &fleet_policy(),
            service_task_id: REFUEL_TASK,
        });
        self.area = Some(area);
        Scenario {
            when: When::EndTrip { at: now, trip_id },
            then: outcome.map_or_else(Then::Rejected, Then::Decided),
            given: self,
        }
    }
}

/// The Kia in Ivan's trip 1 since 10:00.
fn kia_in_trip_1() -> Vec<VehicleEvent> {
    vec![added(KIA), rented(KIA, TRIP_1, IVAN, NOW)]
}

/// The Kia in trip 1, reporting `telemetry` at 10:16:50.
fn kia_in_trip_1_reporting(telemetry: Telemetry) -> Vec<VehicleEvent> {
    let mut events = kia_in_trip_1();
    events.push(telemetry_recorded(KIA, telemetry, "2026-11-25T10:16:50Z"));
    events
}

/// Trip 1: started at 10:00, parked 10:07 to 10:12, driving again since.
fn trip_1_with_a_stop() -> Vec<TripEvent> {
    vec![
        trip_started(NOW),
        trip_parked("2026-11-25T10:07:00Z"),
        trip_resumed("2026-11-25T10:12:00Z"),
    ]
}

fn blocked(reason: BlockReason) -> CustomerEvent {
    CustomerEvent::CustomerBlocked {
        customer_id: IVAN,
        reason,
        note: String::new(),
        blocked_at: at("2026-11-10T15:00:00Z"),
    }
}

// ---------------------------------------------------------------------------------------------
// Starting a trip.

#[test]
fn start_takes_the_car_fixes_the_tariff_and_claims_customer_and_car() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .start(ivan_takes_the_kia());
    let decision = scenario.decision();
    assert_eq!(
        decision.trip,
        [TripEvent::TripStarted {
            start: trip_start(TRIP_1, IVAN, KIA),
            started_at: at(NOW),
        }]
    );
    assert_eq!(decision.vehicle, [rented(KIA, TRIP_1, IVAN, NOW)]);
    assert_eq!(
        decision.acquire,
        [
            customer_trip_claim(IVAN),
            vehicle_trip_claim(KIA),
            customer_holds_car_claim(IVAN)
        ]
    );
    assert!(decision.release.is_empty());
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_by_a_company_employee_fixes_the_company_as_the_trips_payer() {
    let mut customer = verified_customer(IVAN);
    customer.push(CustomerEvent::CustomerJoinedCompany {
        customer_id: IVAN,
        company_id: ROMASHKA,
        joined_at: at("2026-11-25T08:00:00Z"),
    });
    let scenario = given()
        .customer(customer)
        .vehicle([added(KIA)])
        .start(ivan_takes_the_kia());
    let mut start = trip_start(TRIP_1, IVAN, KIA);
    start.company_id = Some(ROMASHKA);
    assert_eq!(
        scenario.decision().trip,
        [TripEvent::TripStarted {
            start,
            started_at: at(NOW),
        }]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_for_an_unknown_customer_is_rejected() {
    let scenario = given().vehicle([added(KIA)]).start(ivan_takes_the_kia());
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotFound { customer_id: IVAN }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_for_a_customer_pending_verification_is_rejected() {
    let scenario = given()
        .customer([registered(IVAN)])
        .vehicle([added(KIA)])
        .start(ivan_takes_the_kia());
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotVerified { customer_id: IVAN }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_for_a_rejected_customer_is_rejected() {
    let scenario = given()
        .customer([
            registered(IVAN),
            CustomerEvent::CustomerVerificationRejected {
                customer_id: IVAN,
                reason: "Licence photo is unreadable".to_owned(),
                rejected_at: at(VERIFIED_AT),
            },
        ])
        .vehicle([added(KIA)])
        .start(ivan_takes_the_kia());
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotVerified { customer_id: IVAN }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_for_a_blocked_customer_is_rejected_naming_every_reason() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .customer([blocked(BlockReason::Fraud), blocked(BlockReason::Debt)])
        .vehicle([added(KIA)])
        .start(ivan_takes_the_kia());
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerBlocked {
            customer_id: IVAN,
            reasons: "debt, fraud".to_owned(),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_after_the_last_block_is_lifted_is_allowed() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .customer([
            blocked(BlockReason::Debt),
            CustomerEvent::CustomerUnblocked {
                customer_id: IVAN,
                reason: BlockReason::Debt,
                note: "Debt paid".to_owned(),
                unblocked_at: at("2026-11-11T09:00:00Z"),
            },
        ])
        .vehicle([added(KIA)])
        .start(ivan_takes_the_kia());
    assert_eq!(scenario.decision().vehicle.len(), 1);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_with_a_licence_expired_since_verification_is_rejected() {
    // Valid when support verified Ivan on 2 November, expired on 24 November.
    let mut profile = profile(IVAN);
    profile.licence = licence_until("2026-11-24");
    let scenario = given()
        .customer([registered_with(profile), verified(IVAN)])
        .vehicle([added(KIA)])
        .start(ivan_takes_the_kia());
    assert_eq!(
        scenario.rejection(),
        &Rejection::LicenceExpired {
            customer_id: IVAN,
            expired_on: day("2026-11-24"),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_while_the_customer_has_another_active_trip_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .start(Start {
            customer_active_trip: Some(TRIP_2),
            ..ivan_takes_the_kia()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerHasActiveTrip {
            customer_id: IVAN,
            trip_id: TRIP_2,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_in_a_car_not_in_the_fleet_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .start(ivan_takes_the_kia());
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotFound { vehicle_id: KIA }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_in_a_car_in_another_trip_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([
            added(KIA),
            rented(KIA, TRIP_2, MARIA, "2026-11-25T09:30:00Z"),
        ])
        .start(ivan_takes_the_kia());
    assert!(matches!(
        scenario.rejection(),
        Rejection::VehicleNotAvailable { vehicle_id: KIA, status } if status == "in_trip"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_with_a_trip_id_used_before_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .trip([trip_started("2026-11-24T18:00:00Z")])
        .start(ivan_takes_the_kia());
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripAlreadyStarted { trip_id: TRIP_1 }
    );
    assert_yaml_snapshot!(scenario);
}

// ---------------------------------------------------------------------------------------------
// Ending a trip.

#[test]
fn end_prices_driving_and_parking_minutes_returns_the_car_and_releases_the_claims() {
    // 10:00 to 10:17 with 10:07–10:12 parked: 12 driving minutes at 12 RUB and 5 parked at 3 RUB,
    // 8.4 km of the 70 included: 144 + 15 = 159 RUB.
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle(kia_in_trip_1_reporting(reading(
            chistye_prudy(),
            76,
            START_ODOMETER_M + 8_400,
            true,
        )))
        .trip(trip_1_with_a_stop())
        .end(TRIP_1, "2026-11-25T10:17:00Z");
    let decision = scenario.decision();
    let [
        TripEvent::TripEnded {
            price,
            end_position,
            ..
        },
    ] = decision.trip.as_slice()
    else {
        panic!("expected one TripEnded, got {:?}", decision.trip);
    };
    assert_eq!(*end_position, chistye_prudy());
    assert_eq!((price.driving_s, price.driving_minutes), (720, 12));
    assert_eq!(price.driving_kopecks, Kopecks(14_400));
    assert_eq!((price.parking_s, price.parking_minutes), (300, 5));
    assert_eq!(price.parking_kopecks, Kopecks(1_500));
    assert_eq!((price.distance_m, price.extra_km), (8_400, 0));
    assert_eq!(price.distance_kopecks, Kopecks::ZERO);
    assert_eq!(price.total_kopecks, Kopecks(15_900));
    assert_eq!(
        decision.vehicle,
        [VehicleEvent::VehicleReturned {
            vehicle_id: KIA,
            trip_id: TRIP_1,
            returned_at: at("2026-11-25T10:17:00Z"),
        }]
    );
    assert!(decision.acquire.is_empty());
    assert_eq!(
        decision.release,
        [
            customer_trip_claim(IVAN),
            vehicle_trip_claim(KIA),
            customer_holds_car_claim(IVAN)
        ]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_charges_every_started_kilometre_over_the_included_distance() {
    // 72.3 km with 70 included: 3 started kilometres at 15 RUB.
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle(kia_in_trip_1_reporting(reading(
            chistye_prudy(),
            40,
            START_ODOMETER_M + 72_300,
            true,
        )))
        .trip([trip_started(NOW)])
        .end(TRIP_1, "2026-11-25T11:30:00Z");
    let [TripEvent::TripEnded { price, .. }] = scenario.decision().trip.as_slice() else {
        panic!("expected one TripEnded");
    };
    assert_eq!((price.distance_m, price.extra_km), (72_300, 3));
    assert_eq!(price.distance_kopecks, Kopecks(4_500));
    assert_eq!(price.driving_minutes, 90);
    assert_eq!(price.total_kopecks, Kopecks(90 * 1_200 + 4_500));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_with_a_low_tank_opens_a_refuel_task_and_keeps_the_car_out_of_rotation() {
    // 15 % left, below the fleet's 20 %: the same decision returns the car, opens a refuel task
    // on its own stream and sends the car to service, so nobody can take it with an empty tank.
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle(kia_in_trip_1_reporting(reading(
            chistye_prudy(),
            15,
            START_ODOMETER_M + 8_400,
            true,
        )))
        .trip([trip_started(NOW)])
        .end(TRIP_1, "2026-11-25T10:17:00Z");
    let decision = scenario.decision();
    assert!(matches!(
        decision.vehicle[..],
        [
            VehicleEvent::VehicleReturned { .. },
            VehicleEvent::VehicleSentToService {
                task_id: REFUEL_TASK,
                kind: ServiceTaskKind::Refuel,
                ..
            }
        ]
    ));
    let task = decision.service_task.as_ref().unwrap();
    assert_eq!(task.task_id, REFUEL_TASK);
    assert!(matches!(
        task.events[..],
        [ServiceTaskEvent::ServiceTaskOpened { ref opening, .. }]
            if opening.after_trip_id == Some(TRIP_1) && opening.vehicle_id == KIA
    ));
    let car = Vehicle::fold(scenario.given.vehicle.iter().chain(&decision.vehicle));
    assert_eq!(car.status.as_str(), "in_service");
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_outside_the_operating_area_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle(kia_in_trip_1_reporting(reading(
            zelenograd(),
            60,
            START_ODOMETER_M + 30_000,
            true,
        )))
        .trip([trip_started(NOW)])
        .end(TRIP_1, "2026-11-25T10:45:00Z");
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleOutsideOperatingZone { vehicle_id: KIA }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_inside_a_forbidden_zone_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle(kia_in_trip_1_reporting(reading(
            in_gorky_park(),
            75,
            START_ODOMETER_M + 4_000,
            true,
        )))
        .trip([trip_started(NOW)])
        .end(TRIP_1, "2026-11-25T10:17:00Z");
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleOutsideOperatingZone { vehicle_id: KIA }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_in_an_airport_surcharge_zone_outside_the_boundary_adds_the_surcharge() {
    // 10:00 to 10:45 driving, 30 km: 45 minutes at 12 RUB, nothing over the included distance,
    // and the airport's 300 RUB: 540 + 300 = 840 RUB.
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle(kia_in_trip_1_reporting(reading(
            sheremetyevo(),
            60,
            START_ODOMETER_M + 30_000,
            true,
        )))
        .trip([trip_started(NOW)])
        .end(TRIP_1, "2026-11-25T10:45:00Z");
    let [TripEvent::TripEnded { price, .. }] = scenario.decision().trip.as_slice() else {
        panic!("expected one TripEnded");
    };
    assert_eq!(price.surcharge_zone.as_deref(), Some("Sheremetyevo"));
    assert_eq!(price.surcharge_kopecks, Kopecks(30_000));
    assert_eq!(price.driving_kopecks, Kopecks(45 * 1_200));
    assert_eq!(price.total_kopecks, Kopecks(45 * 1_200 + 30_000));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_with_the_doors_unlocked_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle(kia_in_trip_1_reporting(reading(
            chistye_prudy(),
            76,
            START_ODOMETER_M + 8_400,
            false,
        )))
        .trip([trip_started(NOW)])
        .end(TRIP_1, "2026-11-25T10:17:00Z");
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotLocked { vehicle_id: KIA }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_a_trip_that_has_ended_is_rejected() {
    let started = [trip_started(NOW)];
    let ended = trip_ended(&started, "2026-11-25T10:17:00Z", START_ODOMETER_M + 8_400);
    let mut vehicle = kia_in_trip_1();
    vehicle.push(VehicleEvent::VehicleReturned {
        vehicle_id: KIA,
        trip_id: TRIP_1,
        returned_at: at("2026-11-25T10:17:00Z"),
    });
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle(vehicle)
        .trip([trip_started(NOW), ended])
        .end(TRIP_1, "2026-11-25T10:18:00Z");
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripAlreadyEnded { trip_id: TRIP_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_a_trip_that_never_started_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .end(TRIP_1, NOW);
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripNotFound { trip_id: TRIP_1 }
    );
    assert_yaml_snapshot!(scenario);
}

// ---------------------------------------------------------------------------------------------
// Any sequence of rentals keeps the exclusivity invariants.

mod invariants {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    const CUSTOMERS: u8 = 3;
    const VEHICLES: u8 = 3;
    /// Fewer trip ids than attempts, so that ids get reused.
    const TRIPS: u8 = 8;

    fn customer(n: u8) -> CustomerId {
        CustomerId(Uuid::from_u128(0x100 + u128::from(n) + 1))
    }
    fn vehicle(n: u8) -> VehicleId {
        VehicleId(Uuid::from_u128(0x200 + u128::from(n) + 1))
    }
    fn trip(n: u8) -> TripId {
        TripId(Uuid::from_u128(0x300 + u128::from(n) + 1))
    }

    #[derive(Clone, Copy, Debug)]
    enum Place {
        Inside,
        Forbidden,
        Outside,
    }

    /// One thing that happens in the city, some seconds after the last.
    #[derive(Clone, Debug)]
    enum Step {
        Start {
            trip: u8,
            customer: u8,
            vehicle: u8,
        },
        End {
            trip: u8,
        },
        Report {
            vehicle: u8,
            place: Place,
            locked: bool,
            driven_m: u64,
        },
        Block {
            customer: u8,
            reason: BlockReason,
        },
        Unblock {
            customer: u8,
            reason: BlockReason,
        },
    }

    fn steps() -> impl Strategy<Value = Step> {
        let reason = prop_oneof![Just(BlockReason::Debt), Just(BlockReason::Fraud)];
        let place = prop_oneof![
            6 => Just(Place::Inside),
            1 => Just(Place::Forbidden),
            1 => Just(Place::Outside),
        ];
        prop_oneof![
            4 => (0..TRIPS, 0..CUSTOMERS, 0..VEHICLES)
                .prop_map(|(trip, customer, vehicle)| Step::Start { trip, customer, vehicle }),
            3 => (0..TRIPS).prop_map(|trip| Step::End { trip }),
            3 => (0..VEHICLES, place, proptest::bool::weighted(0.8), 0u64..20_000)
                .prop_map(|(vehicle, place, locked, driven_m)| Step::Report {
                    vehicle, place, locked, driven_m,
                }),
            1 => (0..CUSTOMERS, reason.clone())
                .prop_map(|(customer, reason)| Step::Block { customer, reason }),
            1 => (0..CUSTOMERS, reason)
                .prop_map(|(customer, reason)| Step::Unblock { customer, reason }),
        ]
    }

    /// Every stream's history and the claims the store would hold, as the command side keeps
    /// them.
    struct City {
        now: DateTime<Utc>,
        area: OperatingArea,
        customers: BTreeMap<CustomerId, Vec<CustomerEvent>>,
        vehicles: BTreeMap<VehicleId, Vec<VehicleEvent>>,
        trips: BTreeMap<TripId, Vec<TripEvent>>,
        claims: BTreeSet<String>,
    }

    impl City {
        fn new() -> Self {
            let customers = (0..CUSTOMERS)
                .map(|n| {
                    let id = customer(n);
                    (id, vec![registered_with(profile(id)), verified(id)])
                })
                .collect();
            let vehicles = (0..VEHICLES)
                .map(|n| {
                    let id = vehicle(n);
                    let mut details = details(KIA);
                    details.vehicle_id = id;
                    let event = added_with(details);
                    (id, vec![event])
                })
                .collect();
            Self {
                now: at(NOW),
                area: moscow(),
                customers,
                vehicles,
                trips: BTreeMap::new(),
                claims: BTreeSet::new(),
            }
        }

        fn trip_state(&self, trip_id: TripId) -> TripState {
            Trip::fold(self.trips.get(&trip_id).into_iter().flatten())
        }

        fn active_trips(&self) -> Vec<(TripId, TripStart)> {
            self.trips
                .keys()
                .map(|&id| (id, self.trip_state(id)))
                .filter(|(_, state)| state.is_active())
                .filter_map(|(id, state)| state.started.map(|start| (id, start)))
                .collect()
        }

        /// Releases, then acquires: the order the store applies them in.
        fn take(&mut self, acquire: &[String], release: &[String]) {
            for claim in release {
                assert!(
                    self.claims.remove(claim),
                    "claim {claim} released while not held"
                );
            }
            for claim in acquire {
                assert!(
                    self.claims.insert(claim.clone()),
                    "claim {claim} acquired while held"
                );
            }
        }

        fn apply(&mut self, decision: RentalDecision, trip_id: TripId, vehicle_id: VehicleId) {
            self.take(&decision.acquire, &decision.release);
            self.trips.entry(trip_id).or_default().extend(decision.trip);
            self.vehicles
                .entry(vehicle_id)
                .or_default()
                .extend(decision.vehicle);
        }

        fn step(&mut self, step: &Step) {
            self.now += chrono::Duration::seconds(97);
            match *step {
                Step::Start {
                    trip: t,
                    customer: c,
                    vehicle: v,
                } => {
                    let (trip_id, customer_id, vehicle_id) = (trip(t), customer(c), vehicle(v));
                    let customer_state = Customer::fold(&self.customers[&customer_id]);
                    let customer_active_trip = self
                        .active_trips()
                        .into_iter()
                        .find(|(_, start)| start.customer_id == customer_id)
                        .map(|(id, _)| id);
                    let decided = start_trip(StartTrip {
                        trip_id,
                        now: self.now,
                        trip: &self.trip_state(trip_id),
                        customer_id,
                        customer: &customer_state,
                        customer_active_trip,
                        vehicle_id,
                        vehicle: &Vehicle::fold(&self.vehicles[&vehicle_id]),
                        tariff: standard_tariff(),
                        customer_reservation: None,
                        reservation: None,
                        quote: None,
                    });
                    if let Ok(decision) = decided {
                        assert!(customer_state.blocks.is_empty(), "blocked customer rents");
                        assert_eq!(customer_active_trip, None);
                        self.apply(decision, trip_id, vehicle_id);
                    }
                }
                Step::End { trip: t } => {
                    let trip_id = trip(t);
                    let state = self.trip_state(trip_id);
                    // The command side finds the car from the trip; an unknown trip has none.
                    let vehicle_id = state
                        .started
                        .as_ref()
                        .map_or(vehicle(0), |start| start.vehicle_id);
                    let decided = end_trip(EndTrip {
                        trip_id,
                        now: self.now,
                        trip: &state,
                        vehicle: &Vehicle::fold(&self.vehicles[&vehicle_id]),
                        area: &self.area,
                        fleet: &fleet_policy(),
                        service_task_id: REFUEL_TASK,
                    });
                    if let Ok(decision) = decided {
                        self.apply(decision, trip_id, vehicle_id);
                    }
                }
                Step::Report {
                    vehicle: v,
                    place,
                    locked,
                    driven_m,
                } => {
                    let vehicle_id = vehicle(v);
                    let state = Vehicle::fold(&self.vehicles[&vehicle_id]);
                    let odometer_m =
                        state.telemetry.as_ref().map_or(0, |t| t.odometer_m.get()) + driven_m;
                    let position = match place {
                        Place::Inside => chistye_prudy(),
                        Place::Forbidden => in_gorky_park(),
                        Place::Outside => zelenograd(),
                    };
                    let command =
                        VehicleCommand::RecordTelemetry(reading(position, 50, odometer_m, locked));
                    let context = VehicleContext {
                        vehicle_id,
                        now: self.now,
                    };
                    let events = Vehicle::decide(&state, &command, &context).unwrap();
                    self.vehicles.entry(vehicle_id).or_default().extend(events);
                }
                Step::Block {
                    customer: c,
                    reason,
                } => self.decide_customer(
                    customer(c),
                    CustomerCommand::Block {
                        reason,
                        note: String::new(),
                    },
                ),
                Step::Unblock {
                    customer: c,
                    reason,
                } => self.decide_customer(
                    customer(c),
                    CustomerCommand::Unblock {
                        reason,
                        note: String::new(),
                    },
                ),
            }
        }

        fn decide_customer(&mut self, customer_id: CustomerId, command: CustomerCommand) {
            let history = self.customers.entry(customer_id).or_default();
            let context = CustomerContext {
                customer_id,
                now: self.now,
                kyc: kyc_policy(),
            };
            if let Ok(events) =
                Customer::decide(&Customer::fold(history.iter()), &command, &context)
            {
                history.extend(events);
            }
        }

        /// The invariants, over the whole folded state after every step.
        fn check(&self) {
            let active = self.active_trips();
            let mut cars = BTreeSet::new();
            let mut drivers = BTreeSet::new();
            for (trip_id, start) in &active {
                assert!(
                    cars.insert(start.vehicle_id),
                    "car {} in two active trips",
                    start.vehicle_id
                );
                assert!(
                    drivers.insert(start.customer_id),
                    "customer {} has two active trips",
                    start.customer_id
                );
                let car = Vehicle::fold(&self.vehicles[&start.vehicle_id]);
                assert_eq!(
                    car.status,
                    VehicleStatus::InTrip {
                        trip_id: *trip_id,
                        customer_id: start.customer_id,
                    },
                    "the car of an active trip is in that trip"
                );
            }
            for (vehicle_id, history) in &self.vehicles {
                if !cars.contains(vehicle_id) {
                    assert_eq!(
                        Vehicle::fold(history).status,
                        VehicleStatus::Available,
                        "a car in no active trip is available"
                    );
                }
            }
            let expected: BTreeSet<String> = active
                .iter()
                .flat_map(|(_, start)| {
                    [
                        customer_trip_claim(start.customer_id),
                        vehicle_trip_claim(start.vehicle_id),
                        customer_holds_car_claim(start.customer_id),
                    ]
                })
                .collect();
            assert_eq!(
                self.claims, expected,
                "claims are exactly the active trips'"
            );
            for id in self.trips.keys() {
                let state = self.trip_state(*id);
                if let TripPhase::Ended { .. } = state.phase {
                    let price = state.price.as_ref().map(|p| p.total_kopecks);
                    assert!(price.is_some_and(|total| total >= Kopecks::ZERO));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn no_car_and_no_customer_is_ever_in_two_active_trips(
            steps in proptest::collection::vec(steps(), 1..120),
        ) {
            let mut city = City::new();
            for step in &steps {
                city.step(step);
                city.check();
            }
        }
    }

    #[test]
    fn the_random_city_does_start_and_end_trips() {
        // Guards the property against passing vacuously: a plain script through the same
        // model starts two trips on different cars, refuses a third on a taken car, ends one.
        let mut city = City::new();
        let script = [
            Step::Start {
                trip: 0,
                customer: 0,
                vehicle: 0,
            },
            Step::Start {
                trip: 1,
                customer: 1,
                vehicle: 1,
            },
            Step::Start {
                trip: 2,
                customer: 2,
                vehicle: 0,
            },
            Step::End { trip: 0 },
        ];
        for step in &script {
            city.step(step);
            city.check();
        }
        let active: Vec<TripId> = city.active_trips().into_iter().map(|(id, _)| id).collect();
        assert_eq!(active, [trip(1)]);
        assert!(city.trip_state(trip(0)).price.is_some());
        assert!(!city.trips.contains_key(&trip(2)));
    }
}
