//! Reservation rules, one test per rule: given the reservation's history, when it is made,
//! turned into a trip, cancelled or expired, then these events (with the waiting charged) or this
//! rejection. The rules spanning customer and car are tested with the rental rules.

use super::*;
use crate::money::Kopecks;
use crate::testing::*;
use insta::assert_yaml_snapshot;
use proptest::prelude::*;

fn at_time(now: &str) -> ReservationContext {
    reservation_context(RESERVATION_1, now)
}

fn make() -> ReservationCommand {
    ReservationCommand::Make {
        customer_id: IVAN,
        vehicle_id: KIA,
        position: red_square(),
        quote_id: None,
        terms: standard_terms(),
    }
}

fn charged(events: &[ReservationEvent]) -> &WaitingCharge {
    match events {
        [ReservationEvent::ReservationConverted { waiting, .. }]
        | [ReservationEvent::ReservationCancelled { waiting, .. }]
        | [ReservationEvent::ReservationExpired { waiting, .. }] => waiting,
        other => panic!("expected one ending event, got {other:?}"),
    }
}

#[test]
fn make_holds_the_car_with_free_minutes_then_a_limit() {
    let scenario = Reservation::given([]).when(make(), at_time(NOW)).then();
    let [ReservationEvent::ReservationMade { details }] = scenario.events() else {
        panic!("expected ReservationMade");
    };
    assert_eq!(details.free_until, at("2026-11-25T10:15:00Z"));
    assert_eq!(details.expires_at, at("2026-11-25T10:35:00Z"));
    assert!(Reservation::fold(scenario.events()).is_active());
    assert_yaml_snapshot!(scenario);
}

#[test]
fn make_twice_is_rejected() {
    let scenario = Reservation::given([reservation_made("2026-11-25T09:50:00Z")])
        .when(make(), at_time(NOW))
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ReservationAlreadyMade {
            reservation_id: RESERVATION_1
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn make_with_a_limit_shorter_than_the_free_minutes_is_rejected() {
    let mut terms = standard_terms();
    terms.waiting.max_minutes = 10;
    let scenario = Reservation::given([])
        .when(
            ReservationCommand::Make {
                customer_id: IVAN,
                vehicle_id: KIA,
                position: red_square(),
                quote_id: None,
                terms,
            },
            at_time(NOW),
        )
        .then();
    assert!(matches!(scenario.rejection(), Rejection::InvalidField(_)));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn convert_within_the_free_minutes_charges_nothing() {
    let scenario = Reservation::given([reservation_made(NOW)])
        .when(
            ReservationCommand::Convert { trip_id: TRIP_1 },
            at_time("2026-11-25T10:14:59Z"),
        )
        .then();
    let waiting = charged(scenario.events());
    assert_eq!(waiting.waited_s, 899);
    assert_eq!(waiting.paid_minutes, 0);
    assert_eq!(waiting.paid_waiting_kopecks, Kopecks::ZERO);
    assert_eq!(
        Reservation::fold([reservation_made(NOW)].iter().chain(scenario.events())).status,
        ReservationStatus::Converted { trip_id: TRIP_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn cancel_after_the_free_minutes_charges_every_started_paid_minute() {
    // 17 minutes 1 second: 15 free, then 2 minutes and 1 second = 3 started minutes at 3 RUB.
    let scenario = Reservation::given([reservation_made(NOW)])
        .when(ReservationCommand::Cancel, at_time("2026-11-25T10:17:01Z"))
        .then();
    let waiting = charged(scenario.events());
    assert_eq!(waiting.paid_minutes, 3);
    assert_eq!(waiting.paid_waiting_kopecks, Kopecks(900));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn cancel_at_the_limit_is_rejected_as_expired() {
    let scenario = Reservation::given([reservation_made(NOW)])
        .when(ReservationCommand::Cancel, at_time("2026-11-25T10:35:00Z"))
        .then();
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
fn convert_after_the_limit_is_rejected_as_expired() {
    let scenario = Reservation::given([reservation_made(NOW)])
        .when(
            ReservationCommand::Convert { trip_id: TRIP_1 },
            at_time("2026-11-25T10:40:00Z"),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::ReservationExpired { .. }
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn expire_after_the_limit_charges_the_whole_paid_waiting_and_no_more() {
    // Recorded 10 minutes late: still 20 paid minutes (35 − 15) at 3 RUB.
    let scenario = Reservation::given([reservation_made(NOW)])
        .when(ReservationCommand::Expire, at_time("2026-11-25T10:45:00Z"))
        .then();
    let waiting = charged(scenario.events());
    assert_eq!(waiting.waited_s, 35 * 60);
    assert_eq!(waiting.paid_minutes, 20);
    assert_eq!(waiting.paid_waiting_kopecks, Kopecks(6_000));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn expire_before_the_limit_is_rejected_as_not_due() {
    let scenario = Reservation::given([reservation_made(NOW)])
        .when(ReservationCommand::Expire, at_time("2026-11-25T10:34:59Z"))
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ReservationNotDue {
            reservation_id: RESERVATION_1,
            expires_at: at("2026-11-25T10:35:00Z"),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn expire_an_ended_reservation_is_rejected_and_changes_nothing() {
    // The expiry worker may send Expire twice, or after a cancellation: the second is a no-op.
    let cancelled = ReservationEvent::ReservationCancelled {
        reservation_id: RESERVATION_1,
        customer_id: IVAN,
        vehicle_id: KIA,
        cancelled_at: at("2026-11-25T10:05:00Z"),
        waiting: waiting_charge(
            match &reservation_made(NOW) {
                ReservationEvent::ReservationMade { details } => details,
                _ => unreachable!(),
            },
            at("2026-11-25T10:05:00Z"),
        ),
    };
    let scenario = Reservation::given([reservation_made(NOW), cancelled])
        .when(ReservationCommand::Expire, at_time("2026-11-25T10:40:00Z"))
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ReservationNotActive {
            reservation_id: RESERVATION_1,
            status: "cancelled".to_owned(),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn commands_for_a_reservation_never_made_are_rejected() {
    let scenario = Reservation::given([])
        .when(ReservationCommand::Cancel, at_time(NOW))
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ReservationNotFound {
            reservation_id: RESERVATION_1
        }
    );
    assert_yaml_snapshot!(scenario);
}

proptest! {
    #[test]
    fn paid_waiting_is_started_minutes_after_the_free_ones_up_to_the_limit(waited_s in 0i64..10_000) {
        let made = reservation_made(NOW);
        let ReservationEvent::ReservationMade { details } = &made else { unreachable!() };
        let end = at(NOW) + chrono::Duration::seconds(waited_s);
        let charge = waiting_charge(details, end);
        let counted_s = waited_s.min(35 * 60);
        let paid_s = (counted_s - 15 * 60).max(0);
        prop_assert_eq!(charge.waited_s as i64, counted_s);
        prop_assert_eq!(charge.paid_minutes as i64, (paid_s + 59) / 60);
        prop_assert!(charge.paid_minutes <= 20);
        prop_assert_eq!(charge.paid_waiting_kopecks, Kopecks(300 * charge.paid_minutes as i64));
    }
}
