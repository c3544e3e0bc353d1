//! Quotes, reservations and starting from them, one test per rule: given the customer's, the
//! car's, the quote's and the reservation's histories, when a customer asks for a price,
//! reserves, cancels, starts a trip, or the expiry worker expires, then the events per stream and
//! the claims taken or given up, or a rejection.

use super::*;
use crate::customer::{Customer, CustomerEvent};
use crate::money::Kopecks;
use crate::reservation::{ReservationStatus, WaitingCharge};
use crate::testing::*;
use insta::assert_yaml_snapshot;

#[derive(Debug, Default, Serialize)]
struct Given {
    customer: Vec<CustomerEvent>,
    vehicle: Vec<VehicleEvent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    quote: Vec<QuoteEvent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reservation: Vec<ReservationEvent>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
enum When {
    RequestQuote {
        at: DateTime<Utc>,
        quote_id: QuoteId,
        customer_id: CustomerId,
        vehicle_id: VehicleId,
        observed: DemandObservation,
    },
    Reserve {
        at: DateTime<Utc>,
        reservation_id: ReservationId,
        customer_id: CustomerId,
        customer_active_trip: Option<TripId>,
        customer_reservation: Option<ReservationId>,
        vehicle_id: VehicleId,
        quote_id: Option<QuoteId>,
    },
    StartTrip {
        at: DateTime<Utc>,
        trip_id: TripId,
        customer_id: CustomerId,
        customer_reservation: Option<ReservationId>,
        vehicle_id: VehicleId,
        quote_id: Option<QuoteId>,
    },
    Release {
        at: DateTime<Utc>,
        reservation_id: ReservationId,
        by: ReleaseBy,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Then {
    Quoted(Vec<QuoteEvent>),
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
            other => panic!("expected a decision, got {other:?}"),
        }
    }

    fn quoted(&self) -> &[QuoteEvent] {
        match &self.then {
            Then::Quoted(events) => events,
            other => panic!("expected a quote, got {other:?}"),
        }
    }

    fn rejection(&self) -> &Rejection {
        match &self.then {
            Then::Rejected(rejection) => rejection,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}

fn given() -> Given {
    Given::default()
}

/// Who does what, when; defaults to Ivan and the Kia at 10:00 with nothing else held.
#[derive(Clone, Copy)]
struct Who {
    customer_id: CustomerId,
    vehicle_id: VehicleId,
    customer_active_trip: Option<TripId>,
    customer_reservation: Option<ReservationId>,
    quote_id: Option<QuoteId>,
    at: &'static str,
}

fn ivan() -> Who {
    Who {
        customer_id: IVAN,
        vehicle_id: KIA,
        customer_active_trip: None,
        customer_reservation: None,
        quote_id: None,
        at: NOW,
    }
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

    fn quote(mut self, events: impl IntoIterator<Item = QuoteEvent>) -> Self {
        self.quote.extend(events);
        self
    }

    fn reservation(mut self, events: impl IntoIterator<Item = ReservationEvent>) -> Self {
        self.reservation.extend(events);
        self
    }

    fn request_quote(self, who: Who, observed: DemandObservation) -> Scenario {
        let now = at(who.at);
        let outcome = request_quote(RequestQuote {
            quote_id: QUOTE_1,
            now,
            quote: &Default::default(),
            customer_id: who.customer_id,
            customer: &Customer::fold(&self.customer),
            vehicle_id: who.vehicle_id,
            vehicle: &Vehicle::fold(&self.vehicle),
            observed,
            standard: &standard_terms(),
            policy: &pricing_policy(),
        });
        Scenario {
            when: When::RequestQuote {
                at: now,
                quote_id: QUOTE_1,
                customer_id: who.customer_id,
                vehicle_id: who.vehicle_id,
                observed,
            },
            then: outcome.map_or_else(Then::Rejected, Then::Quoted),
            given: self,
        }
    }

    fn reserve(self, who: Who) -> Scenario {
        let now = at(who.at);
        let quote = Quote::fold(&self.quote);
        let outcome = reserve(Reserve {
            reservation_id: RESERVATION_2,
            now,
            reservation: &Default::default(),
            customer_id: who.customer_id,
            customer: &Customer::fold(&self.customer),
            customer_active_trip: who.customer_active_trip,
            customer_reservation: who.customer_reservation,
            vehicle_id: who.vehicle_id,
            vehicle: &Vehicle::fold(&self.vehicle),
            quote: who.quote_id.map(|id| (id, &quote)),
            standard: &standard_terms(),
        });
        Scenario {
            when: When::Reserve {
                at: now,
                reservation_id: RESERVATION_2,
                customer_id: who.customer_id,
                customer_active_trip: who.customer_active_trip,
                customer_reservation: who.customer_reservation,
                vehicle_id: who.vehicle_id,
                quote_id: who.quote_id,
            },
            then: outcome.map_or_else(Then::Rejected, Then::Decided),
            given: self,
        }
    }

    fn start(self, who: Who) -> Scenario {
        let now = at(who.at);
        let quote = Quote::fold(&self.quote);
        let reservation = Reservation::fold(&self.reservation);
        let outcome = start_trip(StartTrip {
            trip_id: TRIP_1,
            now,
            trip: &Default::default(),
            customer_id: who.customer_id,
            customer: &Customer::fold(&self.customer),
            customer_active_trip: who.customer_active_trip,
            vehicle_id: who.vehicle_id,
            vehicle: &Vehicle::fold(&self.vehicle),
            tariff: standard_tariff(),
            customer_reservation: who.customer_reservation,
            reservation: (!self.reservation.is_empty()).then_some(&reservation),
            quote: who.quote_id.map(|id| (id, &quote)),
        });
        Scenario {
            when: When::StartTrip {
                at: now,
                trip_id: TRIP_1,
                customer_id: who.customer_id,
                customer_reservation: who.customer_reservation,
                vehicle_id: who.vehicle_id,
                quote_id: who.quote_id,
            },
            then: outcome.map_or_else(Then::Rejected, Then::Decided),
            given: self,
        }
    }

    fn release(self, by: ReleaseBy, when: &'static str) -> Scenario {
        let now = at(when);
        let outcome = release_reservation(ReleaseReservation {
            reservation_id: RESERVATION_1,
            by,
            now,
            reservation: &Reservation::fold(&self.reservation),
            vehicle: &Vehicle::fold(&self.vehicle),
        });
        Scenario {
            when: When::Release {
                at: now,
                reservation_id: RESERVATION_1,
                by,
            },
            then: outcome.map_or_else(Then::Rejected, Then::Decided),
            given: self,
        }
    }
}

/// Ivan has reserved the Kia at 10:00 on the standard terms.
fn ivan_reserved_the_kia() -> Given {
    given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA), reserved(RESERVATION_1, IVAN, NOW)])
        .reservation([reservation_made(NOW)])
}

fn waiting_of(events: &[ReservationEvent]) -> &WaitingCharge {
    match events {
        [ReservationEvent::ReservationConverted { waiting, .. }]
        | [ReservationEvent::ReservationCancelled { waiting, .. }]
        | [ReservationEvent::ReservationExpired { waiting, .. }] => waiting,
        other => panic!("expected one ending event, got {other:?}"),
    }
}

fn started_tariff(decision: &RentalDecision) -> &TripStart {
    match decision.trip.as_slice() {
        [TripEvent::TripStarted { start, .. }] => start,
        other => panic!("expected one TripStarted, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Asking for a price.

#[test]
fn quote_for_an_available_car_is_issued_at_its_zones_multiplier() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .request_quote(ivan(), observed(2, 2));
    let [QuoteEvent::QuoteIssued { details, .. }] = scenario.quoted() else {
        panic!("expected QuoteIssued");
    };
    assert_eq!(details.multiplier_permille, 1500);
    assert_eq!(details.position, red_square());
    assert_eq!(
        details.terms.tariff.driving_kopecks_per_minute,
        Kopecks(1_800)
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn quote_for_a_reserved_car_is_rejected() {
    let scenario = given()
        .customer(verified_customer(MARIA))
        .vehicle([added(KIA), reserved(RESERVATION_1, IVAN, NOW)])
        .request_quote(
            Who {
                customer_id: MARIA,
                ..ivan()
            },
            observed(2, 2),
        );
    assert!(matches!(
        scenario.rejection(),
        Rejection::VehicleNotAvailable { status, .. } if status == "reserved"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn quote_for_an_unregistered_customer_is_rejected() {
    let scenario = given()
        .vehicle([added(KIA)])
        .request_quote(ivan(), observed(2, 2));
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotFound { customer_id: IVAN }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn quote_for_a_car_not_in_the_fleet_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .request_quote(ivan(), observed(2, 2));
    assert_eq!(
        scenario.rejection(),
        &Rejection::VehicleNotFound { vehicle_id: KIA }
    );
    assert_yaml_snapshot!(scenario);
}

// ---------------------------------------------------------------------------------------------
// Reserving.

#[test]
fn reserve_holds_the_car_on_the_standard_terms_and_claims_car_and_customer() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .reserve(ivan());
    let decision = scenario.decision();
    assert_eq!(decision.vehicle, [reserved(RESERVATION_2, IVAN, NOW)]);
    let [ReservationEvent::ReservationMade { details }] = decision.reservation.as_slice() else {
        panic!("expected ReservationMade");
    };
    assert_eq!(details.terms, standard_terms());
    assert_eq!(details.quote_id, None);
    assert_eq!(
        decision.acquire,
        [
            customer_holds_car_claim(IVAN),
            vehicle_reservation_claim(KIA)
        ]
    );
    assert!(decision.trip.is_empty() && decision.release.is_empty());
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reserve_with_a_quote_uses_exactly_its_terms() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .quote([quote_issued(QUOTE_1, IVAN, "2026-11-25T09:58:00Z")])
        .reserve(Who {
            quote_id: Some(QUOTE_1),
            ..ivan()
        });
    let [ReservationEvent::ReservationMade { details }] =
        scenario.decision().reservation.as_slice()
    else {
        panic!("expected ReservationMade");
    };
    assert_eq!(details.quote_id, Some(QUOTE_1));
    assert_eq!(details.terms.waiting.kopecks_per_minute, Kopecks(375));
    assert_eq!(
        details.terms.tariff.driving_kopecks_per_minute,
        Kopecks(1_500)
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reserve_with_an_expired_quote_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .quote([quote_issued(QUOTE_1, IVAN, "2026-11-25T09:55:00Z")])
        .reserve(Who {
            quote_id: Some(QUOTE_1),
            ..ivan()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::QuoteExpired {
            quote_id: QUOTE_1,
            expired_at: at(NOW),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reserve_with_another_customers_quote_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .quote([quote_issued(QUOTE_1, MARIA, "2026-11-25T09:58:00Z")])
        .reserve(Who {
            quote_id: Some(QUOTE_1),
            ..ivan()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::QuoteOfAnotherCustomer { quote_id: QUOTE_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reserve_another_car_with_a_quote_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added_with(details(SKODA))])
        .quote([quote_issued(QUOTE_1, IVAN, "2026-11-25T09:58:00Z")])
        .reserve(Who {
            quote_id: Some(QUOTE_1),
            vehicle_id: SKODA,
            ..ivan()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::QuoteForAnotherVehicle {
            quote_id: QUOTE_1,
            quoted_vehicle_id: KIA,
            vehicle_id: SKODA,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reserve_while_in_a_trip_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .reserve(Who {
            customer_active_trip: Some(TRIP_2),
            ..ivan()
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
fn reserve_while_holding_another_reservation_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .reserve(Who {
            customer_reservation: Some(RESERVATION_1),
            ..ivan()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerHasActiveReservation {
            customer_id: IVAN,
            reservation_id: RESERVATION_1,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reserve_a_car_reserved_by_someone_else_is_rejected() {
    let scenario = given()
        .customer(verified_customer(MARIA))
        .vehicle([added(KIA), reserved(RESERVATION_1, IVAN, NOW)])
        .reserve(Who {
            customer_id: MARIA,
            ..ivan()
        });
    assert!(matches!(
        scenario.rejection(),
        Rejection::VehicleNotAvailable { status, .. } if status == "reserved"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reserve_for_a_customer_pending_verification_is_rejected() {
    let scenario = given()
        .customer([registered(IVAN)])
        .vehicle([added(KIA)])
        .reserve(ivan());
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotVerified { customer_id: IVAN }
    );
    assert_yaml_snapshot!(scenario);
}

// ---------------------------------------------------------------------------------------------
// Starting a trip from a reservation or a quote.

#[test]
fn start_in_the_reserved_car_turns_the_reservation_into_the_trip() {
    // Reserved at 10:00, taken at 10:20: 15 free minutes, then 5 paid at 3 RUB.
    let scenario = ivan_reserved_the_kia().start(Who {
        customer_reservation: Some(RESERVATION_1),
        at: "2026-11-25T10:20:00Z",
        ..ivan()
    });
    let decision = scenario.decision();
    let start = started_tariff(decision);
    assert_eq!(start.reservation_id, Some(RESERVATION_1));
    assert_eq!(start.tariff, standard_terms().tariff);
    let waiting = waiting_of(&decision.reservation);
    assert_eq!(waiting.paid_minutes, 5);
    assert_eq!(waiting.paid_waiting_kopecks, Kopecks(1_500));
    assert!(matches!(
        decision.vehicle.as_slice(),
        [VehicleEvent::VehicleRented {
            reservation_id: Some(RESERVATION_1),
            ..
        }]
    ));
    assert_eq!(
        decision.release,
        [
            vehicle_reservation_claim(KIA),
            customer_holds_car_claim(IVAN)
        ]
    );
    assert_eq!(
        decision.acquire,
        [
            customer_trip_claim(IVAN),
            vehicle_trip_claim(KIA),
            customer_holds_car_claim(IVAN)
        ]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_from_a_reservation_made_with_a_quote_keeps_the_quoted_tariff() {
    let quote = quote_issued(QUOTE_1, IVAN, "2026-11-25T09:58:00Z");
    let QuoteEvent::QuoteIssued { details, .. } = &quote;
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA), reserved(RESERVATION_1, IVAN, NOW)])
        .quote([quote.clone()])
        .reservation([reservation_made_on(
            details.terms.clone(),
            Some(QUOTE_1),
            NOW,
        )])
        .start(Who {
            customer_reservation: Some(RESERVATION_1),
            at: "2026-11-25T10:10:00Z",
            ..ivan()
        });
    let start = started_tariff(scenario.decision());
    assert_eq!(start.tariff.driving_kopecks_per_minute, Kopecks(1_500));
    assert_eq!(start.quote_id, Some(QUOTE_1));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_from_a_reservation_with_another_quote_is_rejected() {
    let scenario = ivan_reserved_the_kia()
        .quote([quote_issued(QUOTE_1, IVAN, "2026-11-25T10:08:00Z")])
        .start(Who {
            customer_reservation: Some(RESERVATION_1),
            quote_id: Some(QUOTE_1),
            at: "2026-11-25T10:10:00Z",
            ..ivan()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::QuoteNotForReservation {
            quote_id: QUOTE_1,
            reservation_id: RESERVATION_1,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_from_a_reservation_past_its_limit_is_rejected() {
    let scenario = ivan_reserved_the_kia().start(Who {
        customer_reservation: Some(RESERVATION_1),
        at: "2026-11-25T10:36:00Z",
        ..ivan()
    });
    assert_eq!(
        scenario.rejection(),
        &Rejection::ReservationExpired {
            reservation_id: RESERVATION_1,
            expired_at: at("2026-11-25T10:35:00Z"),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_in_a_car_reserved_by_someone_else_is_rejected() {
    let scenario = ivan_reserved_the_kia()
        .customer(verified_customer(MARIA))
        .start(Who {
            customer_id: MARIA,
            ..ivan()
        });
    assert!(matches!(
        scenario.rejection(),
        Rejection::VehicleNotAvailable { status, .. } if status == "reserved"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_in_another_car_while_holding_a_reservation_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added_with(details(SKODA))])
        .start(Who {
            vehicle_id: SKODA,
            customer_reservation: Some(RESERVATION_1),
            ..ivan()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerHasActiveReservation {
            customer_id: IVAN,
            reservation_id: RESERVATION_1,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_with_a_quote_uses_exactly_its_tariff() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .quote([quote_issued(QUOTE_1, IVAN, "2026-11-25T09:58:00Z")])
        .start(Who {
            quote_id: Some(QUOTE_1),
            ..ivan()
        });
    let start = started_tariff(scenario.decision());
    assert_eq!(start.quote_id, Some(QUOTE_1));
    assert_eq!(start.tariff.driving_kopecks_per_minute, Kopecks(1_500));
    assert_eq!(start.tariff.parking_kopecks_per_minute, Kopecks(375));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_with_an_expired_quote_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .quote([quote_issued(QUOTE_1, IVAN, "2026-11-25T09:50:00Z")])
        .start(Who {
            quote_id: Some(QUOTE_1),
            ..ivan()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::QuoteExpired {
            quote_id: QUOTE_1,
            expired_at: at("2026-11-25T09:55:00Z"),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_with_another_customers_quote_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .quote([quote_issued(QUOTE_1, MARIA, "2026-11-25T09:58:00Z")])
        .start(Who {
            quote_id: Some(QUOTE_1),
            ..ivan()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::QuoteOfAnotherCustomer { quote_id: QUOTE_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_another_car_with_a_quote_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added_with(details(SKODA))])
        .quote([quote_issued(QUOTE_1, IVAN, "2026-11-25T09:58:00Z")])
        .start(Who {
            quote_id: Some(QUOTE_1),
            vehicle_id: SKODA,
            ..ivan()
        });
    assert!(matches!(
        scenario.rejection(),
        Rejection::QuoteForAnotherVehicle { .. }
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_with_a_quote_that_was_never_issued_is_rejected() {
    let scenario = given()
        .customer(verified_customer(IVAN))
        .vehicle([added(KIA)])
        .start(Who {
            quote_id: Some(QUOTE_2),
            ..ivan()
        });
    assert_eq!(
        scenario.rejection(),
        &Rejection::QuoteNotFound { quote_id: QUOTE_2 }
    );
    assert_yaml_snapshot!(scenario);
}

// ---------------------------------------------------------------------------------------------
// Cancelling and expiring.

#[test]
fn cancel_lets_the_car_go_gives_up_the_claims_and_charges_the_waiting() {
    // 20 minutes 30 seconds: 6 started paid minutes at 3 RUB.
    let scenario = ivan_reserved_the_kia().release(ReleaseBy::Cancel, "2026-11-25T10:20:30Z");
    let decision = scenario.decision();
    assert_eq!(
        waiting_of(&decision.reservation).paid_waiting_kopecks,
        Kopecks(1_800)
    );
    assert_eq!(
        decision.vehicle,
        [VehicleEvent::VehicleReservationReleased {
            vehicle_id: KIA,
            reservation_id: RESERVATION_1,
            released_at: at("2026-11-25T10:20:30Z"),
        }]
    );
    assert_eq!(
        decision.release,
        [
            customer_holds_car_claim(IVAN),
            vehicle_reservation_claim(KIA)
        ]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn expire_after_the_limit_lets_the_car_go_and_charges_the_paid_waiting() {
    let scenario = ivan_reserved_the_kia().release(ReleaseBy::Expire, "2026-11-25T10:35:00Z");
    let decision = scenario.decision();
    let waiting = waiting_of(&decision.reservation);
    assert_eq!(waiting.paid_minutes, 20);
    assert_eq!(waiting.paid_waiting_kopecks, Kopecks(6_000));
    let history: Vec<ReservationEvent> = [reservation_made(NOW)]
        .into_iter()
        .chain(decision.reservation.iter().cloned())
        .collect();
    assert_eq!(
        Reservation::fold(&history).status,
        ReservationStatus::Expired
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn expire_before_the_limit_is_rejected() {
    let scenario = ivan_reserved_the_kia().release(ReleaseBy::Expire, "2026-11-25T10:30:00Z");
    assert!(matches!(
        scenario.rejection(),
        Rejection::ReservationNotDue { .. }
    ));
    assert_yaml_snapshot!(scenario);
}
