//! Receiving fines, one test per rule: given the history of the fine holding the resolution
//! number (or none), when the feed sends a fine, then the fine received, nothing (a repeat), or a
//! rejection.

use super::*;
use crate::testing::*;
use insta::assert_yaml_snapshot;
use uuid::Uuid;

impl Addressed for FineContext {
    fn stream_id(&self) -> String {
        self.fine_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

const FINE_1: FineId = FineId(Uuid::from_u128(0x701));
const RESOLUTION: &str = "18810177231125000017";

fn fine_now() -> FineContext {
    FineContext {
        fine_id: FINE_1,
        now: at(NOW),
    }
}

/// A camera on Tverskaya caught the Kia speeding at 21:15 UTC on the 20th; resolution issued on
/// the 22nd, 500 RUB.
fn speeding() -> FineDetails {
    FineDetails {
        resolution_number: ResolutionNumber::parse("resolution_number", RESOLUTION).unwrap(),
        plate: Plate::parse("plate", "А123ВС777").unwrap(),
        occurred_at: at("2026-11-20T21:15:00Z"),
        place: GeoPoint {
            lat: 55.7648,
            lon: 37.6056,
        },
        amount_kopecks: Kopecks(50_000),
        issued_on: day("2026-11-22"),
    }
}

fn received(details: FineDetails) -> FineEvent {
    FineEvent::FineReceived {
        fine_id: FINE_1,
        details,
        received_at: at("2026-11-24T06:00:00Z"),
    }
}

fn receive(details: FineDetails) -> FineCommand {
    FineCommand::Receive(details)
}

#[test]
fn a_fine_from_the_feed_is_received_and_stays_open() {
    let scenario = Fine::given([]).when(receive(speeding()), fine_now()).then();
    assert_eq!(
        scenario.events(),
        [FineEvent::FineReceived {
            fine_id: FINE_1,
            details: speeding(),
            received_at: at(NOW),
        }]
    );
    let state = Fine::fold(scenario.events());
    assert_eq!(state.status, FineStatus::Open);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn the_same_fine_imported_again_records_nothing() {
    let scenario = Fine::given([received(speeding())])
        .when(receive(speeding()), fine_now())
        .then();
    assert!(scenario.events().is_empty());
    assert_yaml_snapshot!(scenario);
}

#[test]
fn the_same_resolution_number_with_other_details_is_a_conflict() {
    let mut amended = speeding();
    amended.amount_kopecks = Kopecks(75_000);
    let scenario = Fine::given([received(speeding())])
        .when(receive(amended), fine_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ResolutionNumberConflict {
            resolution_number: RESOLUTION.to_owned(),
            fine_id: FINE_1,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_fine_id_already_used_for_another_resolution_is_rejected() {
    let mut other = speeding();
    other.resolution_number =
        ResolutionNumber::parse("resolution_number", "18810177231125000024").unwrap();
    let scenario = Fine::given([received(speeding())])
        .when(receive(other), fine_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::FineAlreadyReceived { fine_id: FINE_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_fine_for_an_offence_in_the_future_is_rejected() {
    let mut early = speeding();
    early.occurred_at = at("2026-11-25T10:00:01Z");
    early.issued_on = day("2026-11-25");
    let scenario = Fine::given([]).when(receive(early), fine_now()).then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "occurred_at"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_resolution_issued_before_the_offence_is_rejected() {
    let mut backdated = speeding();
    backdated.issued_on = day("2026-11-19");
    let scenario = Fine::given([]).when(receive(backdated), fine_now()).then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "issued_on"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_resolution_issued_after_tomorrow_is_rejected() {
    let mut future = speeding();
    future.issued_on = day("2026-11-27");
    let scenario = Fine::given([]).when(receive(future), fine_now()).then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "issued_on"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_resolution_issued_tomorrow_in_utc_is_today_in_the_far_east_and_is_received() {
    // 10:00 UTC on the 25th is 22:00 on the 25th in Kamchatka, but a resolution issued there
    // just after midnight is dated the 26th while UTC still reads the 25th.
    let mut kamchatka = speeding();
    kamchatka.issued_on = day("2026-11-26");
    let scenario = Fine::given([]).when(receive(kamchatka), fine_now()).then();
    assert_eq!(scenario.events().len(), 1);
}

#[test]
fn a_fine_of_no_kopecks_is_rejected() {
    let mut free = speeding();
    free.amount_kopecks = Kopecks(0);
    let scenario = Fine::given([]).when(receive(free), fine_now()).then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "amount_kopecks"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn resolution_numbers_are_20_or_25_digits() {
    let parse = |raw: &str| ResolutionNumber::parse("resolution_number", raw);
    assert_eq!(parse(RESOLUTION).unwrap().as_str(), RESOLUTION);
    assert_eq!(
        parse("1881 0177 2311 2500 0017").unwrap().as_str(),
        RESOLUTION
    );
    assert!(parse("0355431010126112500012345").is_ok(), "25 digits");
    for bad in [
        "",
        "1881017723112500001",        // 19
        "188101772311250000170",      // 21
        "188101772311250000170123",   // 24
        "03554310101261125000123456", // 26
        "1881017723112500001A",
        "１８８１０１７７２３１１２５０００１７", // full-width digits
    ] {
        assert!(parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn a_received_fine_round_trips_through_the_store_encoding_and_claims_its_resolution() {
    let event = received(speeding());
    let encoded = crate::decider::encode(&event).unwrap();
    assert_eq!(encoded.event_type, "FineReceived");
    assert_eq!(encoded.data["resolution_number"], RESOLUTION);
    let decoded: FineEvent =
        crate::decider::decode(&encoded.event_type, encoded.schema_version, encoded.data).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(
        crate::claims::Claim::acquired_by_fine(&event),
        [crate::claims::Claim::FineResolution(RESOLUTION.to_owned())]
    );
}

// Matching a fine to the trip that had the car, or assigning it to the fleet.

use crate::account::{AccountEvent, AccountState, ChargeReason};
use crate::customer::Customer;
use crate::trip::Trip;

const FINE_CHARGE: ChargeId = ChargeId(Uuid::from_u128(0x801));
const FEE_CHARGE: ChargeId = ChargeId(Uuid::from_u128(0x802));

/// Ivan had the Kia from 21:00 to 22:00 on the 20th: the camera caught it at 21:15.
fn ivans_trip() -> TripState {
    let started = trip_started("2026-11-20T21:00:00Z");
    let ended = trip_ended(
        std::slice::from_ref(&started),
        "2026-11-20T22:00:00Z",
        START_ODOMETER_M + 9_000,
    );
    Trip::fold(&[started, ended])
}

fn matching<'a>(
    fine: &'a FineState,
    trip: &'a TripState,
    account: &'a AccountState,
    customer: &'a CustomerState,
) -> MatchFine<'a> {
    MatchFine {
        fine_id: FINE_1,
        fine,
        trip_id: TRIP_1,
        trip,
        account_id: AccountId::Customer(IVAN),
        account,
        customer,
        fine_charge_id: FINE_CHARGE,
        fee_charge_id: FEE_CHARGE,
        admin_fee_kopecks: Kopecks(30_000),
        now: at(NOW),
    }
}

#[test]
fn a_fine_during_a_trip_is_charged_to_its_payer_with_the_admin_fee_and_the_driver_is_told() {
    let fine = Fine::fold(&[received(speeding())]);
    let trip = ivans_trip();
    let account = AccountState::default();
    let customer = Customer::fold(&[registered(IVAN)]);
    let decision = match_fine(matching(&fine, &trip, &account, &customer)).unwrap();
    assert!(matches!(
        decision.fine.as_slice(),
        [FineEvent::FineMatched {
            trip_id: TRIP_1,
            customer_id: IVAN,
            ..
        }]
    ));
    let charged: Vec<(ChargeReason, Kopecks)> = decision
        .account
        .iter()
        .map(|event| match event {
            AccountEvent::ChargeAdded {
                reason,
                amount_kopecks,
                ..
            } => (*reason, *amount_kopecks),
            other => panic!("not a charge: {other:?}"),
        })
        .collect();
    assert_eq!(
        charged,
        [
            (ChargeReason::Fine, Kopecks(50_000)),
            (ChargeReason::FineAdminFee, Kopecks(30_000))
        ]
    );
    assert!(matches!(
        decision.customer.as_slice(),
        [CustomerEvent::CustomerNotified {
            customer_id: IVAN,
            ..
        }]
    ));
    assert_eq!(
        Fine::fold([received(speeding())].iter().chain(&decision.fine)).status,
        FineStatus::Matched
    );
    assert_yaml_snapshot!(decision);
}

#[test]
fn a_trip_that_ended_before_the_offence_is_not_matched() {
    let mut late = speeding();
    late.occurred_at = at("2026-11-20T23:00:00Z");
    let fine = Fine::fold(&[received(late)]);
    let trip = ivans_trip();
    let account = AccountState::default();
    let customer = Customer::fold(&[registered(IVAN)]);
    let refused = match_fine(matching(&fine, &trip, &account, &customer)).unwrap_err();
    assert!(matches!(
        refused,
        Rejection::InvalidField(FieldError { ref field, .. }) if field == "trip_id"
    ));
}

#[test]
fn a_fine_matched_once_is_not_matched_again() {
    let fine = Fine::fold(&[received(speeding())]);
    let trip = ivans_trip();
    let account = AccountState::default();
    let customer = Customer::fold(&[registered(IVAN)]);
    let first = match_fine(matching(&fine, &trip, &account, &customer)).unwrap();
    let matched = Fine::fold([received(speeding())].iter().chain(&first.fine));
    let again = match_fine(matching(&matched, &trip, &account, &customer)).unwrap_err();
    assert_eq!(
        again,
        Rejection::FineNotOpen {
            fine_id: FINE_1,
            status: "matched".to_owned()
        }
    );
}

#[test]
fn a_fine_no_trip_had_is_assigned_to_the_fleet_for_review() {
    let scenario = Fine::given([received(speeding())])
        .when(
            FineCommand::AssignToFleet {
                reason: "no trip had the car with plate А123ВС777 at 2026-11-20T21:15:00Z"
                    .to_owned(),
            },
            fine_now(),
        )
        .then();
    assert!(matches!(
        scenario.events(),
        [FineEvent::FineAssignedToFleet { .. }]
    ));
    assert_eq!(
        Fine::fold(scenario.given.iter().chain(scenario.events())).status,
        FineStatus::AssignedToFleet
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_fine_assigned_to_the_fleet_is_not_assigned_again() {
    let assigned = FineEvent::FineAssignedToFleet {
        fine_id: FINE_1,
        reason: "no trip".to_owned(),
        assigned_at: at(NOW),
    };
    let scenario = Fine::given([received(speeding()), assigned])
        .when(
            FineCommand::AssignToFleet {
                reason: "no trip".to_owned(),
            },
            fine_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::FineNotOpen {
            fine_id: FINE_1,
            status: "assigned_to_fleet".to_owned()
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_fine_never_received_cannot_be_assigned() {
    let scenario = Fine::given([])
        .when(
            FineCommand::AssignToFleet {
                reason: "no trip".to_owned(),
            },
            fine_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::FineNotFound { fine_id: FINE_1 }
    );
    assert_yaml_snapshot!(scenario);
}
