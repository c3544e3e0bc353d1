//! A trip's own rules, one test per rule: given the trip's history, when the customer parks,
//! drives on or ends, then these events or this rejection. Starting and ending with the customer's
//! and the car's rules are in `rental`'s tests.

use super::*;
use crate::rejection::FieldError;
use crate::testing::*;
use insta::assert_yaml_snapshot;

fn trip_now(now: &str) -> TripContext {
    trip_context(TRIP_1, now)
}

fn end_at_odometer(end_odometer_m: u64) -> TripCommand {
    TripCommand::End {
        end_position: red_square(),
        end_odometer_m: OdometerM::from_m(end_odometer_m),
        surcharge: None,
    }
}

fn ended_price(events: &[TripEvent]) -> &PriceBreakdown {
    match events {
        [TripEvent::TripEnded { price, .. }] => price,
        other => panic!("expected one TripEnded, got {other:?}"),
    }
}

#[test]
fn start_fixes_the_tariff_for_the_whole_trip() {
    let scenario = Trip::given([])
        .when(
            TripCommand::Start(trip_start(TRIP_1, IVAN, KIA)),
            trip_now(NOW),
        )
        .then();
    let state = Trip::fold(scenario.events());
    assert!(state.is_active());
    assert_eq!(
        state.started.map(|start| start.tariff),
        Some(standard_tariff())
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_a_trip_id_used_before_is_rejected() {
    let scenario = Trip::given([trip_started("2026-11-25T09:00:00Z")])
        .when(
            TripCommand::Start(trip_start(TRIP_1, MARIA, SKODA)),
            trip_now(NOW),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripAlreadyStarted { trip_id: TRIP_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn start_with_the_facts_of_another_trip_is_rejected() {
    let scenario = Trip::given([])
        .when(
            TripCommand::Start(trip_start(TRIP_2, IVAN, KIA)),
            trip_now(NOW),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "trip_id"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn park_a_driving_trip() {
    let scenario = Trip::given([trip_started(NOW)])
        .when(TripCommand::Park, trip_now("2026-11-25T10:07:00Z"))
        .then();
    assert_eq!(scenario.events(), [trip_parked("2026-11-25T10:07:00Z")]);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn resume_a_parked_trip() {
    let scenario = Trip::given([trip_started(NOW), trip_parked("2026-11-25T10:07:00Z")])
        .when(TripCommand::Resume, trip_now("2026-11-25T10:12:00Z"))
        .then();
    assert_eq!(scenario.events(), [trip_resumed("2026-11-25T10:12:00Z")]);
    let state = Trip::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!((state.driving_s, state.parking_s), (420, 300));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn park_a_parked_trip_is_rejected() {
    let scenario = Trip::given([trip_started(NOW), trip_parked("2026-11-25T10:07:00Z")])
        .when(TripCommand::Park, trip_now("2026-11-25T10:08:00Z"))
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripAlreadyParked { trip_id: TRIP_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn resume_a_driving_trip_is_rejected() {
    let scenario = Trip::given([trip_started(NOW)])
        .when(TripCommand::Resume, trip_now("2026-11-25T10:05:00Z"))
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripNotParked { trip_id: TRIP_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn commands_after_the_end_are_rejected() {
    let history = [trip_started(NOW)];
    let ended = trip_ended(&history, "2026-11-25T10:20:00Z", START_ODOMETER_M + 5_000);
    let scenario = Trip::given([trip_started(NOW), ended])
        .when(TripCommand::Park, trip_now("2026-11-25T10:21:00Z"))
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripAlreadyEnded { trip_id: TRIP_1 }
    );
    // Every command but a second start says the same.
    let state = Trip::fold(&scenario.given);
    for command in [TripCommand::Resume, end_at_odometer(START_ODOMETER_M)] {
        assert_eq!(
            Trip::decide(&state, &command, &trip_now("2026-11-25T10:21:00Z")),
            Err(Rejection::TripAlreadyEnded { trip_id: TRIP_1 })
        );
    }
    assert_yaml_snapshot!(scenario);
}

#[test]
fn commands_before_the_start_are_rejected() {
    let scenario = Trip::given([])
        .when(TripCommand::Park, trip_now(NOW))
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripNotFound { trip_id: TRIP_1 }
    );
    let empty = TripState::default();
    for command in [TripCommand::Resume, end_at_odometer(START_ODOMETER_M)] {
        assert_eq!(
            Trip::decide(&empty, &command, &trip_now(NOW)),
            Err(Rejection::TripNotFound { trip_id: TRIP_1 })
        );
    }
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_while_driving_prices_started_minutes() {
    // 10:00:00 to 10:09:01 is 541 s: ten started minutes, the last one only a second long.
    let scenario = Trip::given([trip_started(NOW)])
        .when(
            end_at_odometer(START_ODOMETER_M + 4_200),
            trip_now("2026-11-25T10:09:01Z"),
        )
        .then();
    let price = ended_price(scenario.events());
    assert_eq!((price.driving_s, price.driving_minutes), (541, 10));
    assert_eq!(price.total_kopecks, Kopecks(12_000));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_while_parked_counts_the_parking_spell_until_the_end() {
    // Drove 10:00–10:12, parked from 10:12 and ended parked at 10:17.
    let scenario = Trip::given([trip_started(NOW), trip_parked("2026-11-25T10:12:00Z")])
        .when(
            end_at_odometer(START_ODOMETER_M + 6_000),
            trip_now("2026-11-25T10:17:00Z"),
        )
        .then();
    let price = ended_price(scenario.events());
    assert_eq!((price.driving_s, price.driving_minutes), (720, 12));
    assert_eq!((price.parking_s, price.parking_minutes), (300, 5));
    assert_eq!(price.parking_kopecks, Kopecks(1_500));
    assert_eq!(price.total_kopecks, Kopecks(15_900));
    let state = Trip::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!((state.driving_s, state.parking_s), (720, 300));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn spells_with_fractions_of_a_second_add_up_to_the_whole_trip() {
    // Two driving spells of 30.5 s each are 61 s of driving: two started minutes. Counting each
    // spell in truncated seconds (30 + 30) would charge one.
    let scenario = Trip::given([
        trip_started("2026-11-25T10:00:00.500Z"),
        trip_parked("2026-11-25T10:00:31Z"),
        trip_resumed("2026-11-25T10:01:00Z"),
    ])
    .when(
        end_at_odometer(START_ODOMETER_M + 300),
        trip_now("2026-11-25T10:01:30.500Z"),
    )
    .then();
    let price = ended_price(scenario.events());
    assert_eq!((price.driving_s, price.driving_minutes), (61, 2));
    assert_eq!((price.parking_s, price.parking_minutes), (29, 1));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn end_with_an_odometer_below_the_start_counts_no_distance() {
    // A replaced telematics unit can report less than at the start; the customer is not charged
    // for it, nor credited.
    let scenario = Trip::given([trip_started(NOW)])
        .when(
            end_at_odometer(START_ODOMETER_M - 1_000),
            trip_now("2026-11-25T10:05:00Z"),
        )
        .then();
    let price = ended_price(scenario.events());
    assert_eq!((price.distance_m, price.extra_km), (0, 0));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_trip_ended_stored_before_surcharge_zones_existed_still_decodes() {
    let history = [trip_started(NOW)];
    let ended = trip_ended(&history, "2026-11-25T10:10:00Z", START_ODOMETER_M + 1_000);
    let mut encoded = crate::decider::encode(&ended).unwrap();
    let price = encoded.data["price"].as_object_mut().unwrap();
    price.remove("surcharge_zone");
    price.remove("surcharge_kopecks");
    let decoded: TripEvent =
        crate::decider::decode(&encoded.event_type, encoded.schema_version, encoded.data).unwrap();
    assert_eq!(decoded, ended);
    assert_eq!(ended_price(&[decoded]).surcharge_kopecks, Kopecks::ZERO);
}
