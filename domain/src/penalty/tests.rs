//! Issuing penalties, one test per rule: given the trip's, the penalty's and the payer's account's
//! histories, when support issues a penalty, then the penalty and its charge, or a rejection.

use super::*;
use crate::account::Account;
use crate::testing::*;
use crate::trip::Trip;
use insta::assert_yaml_snapshot;
use uuid::Uuid;

const PENALTY_1: PenaltyId = PenaltyId(Uuid::from_u128(0x601));
const CHARGE_1: ChargeId = ChargeId(Uuid::from_u128(0x401));
const IVANS: AccountId = AccountId::Customer(IVAN);

fn tariff() -> PenaltyTariff {
    PenaltyTariff {
        smoking: Kopecks(500_000),
        dirty_car: Kopecks(300_000),
        parking_violation: Kopecks(250_000),
        low_fuel: Kopecks(50_000),
    }
}

#[derive(Debug, Default, Serialize)]
struct Given {
    trip: Vec<crate::trip::TripEvent>,
    penalty: Vec<PenaltyEvent>,
    account: Vec<AccountEvent>,
}

#[derive(Debug, Serialize)]
struct When {
    command: &'static str,
    at: DateTime<Utc>,
    penalty_id: PenaltyId,
    charge_id: ChargeId,
    trip_id: TripId,
    account_id: AccountId,
    kind: PenaltyKind,
    note: String,
    amount_kopecks: Option<Kopecks>,
    tariff: PenaltyTariff,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Then {
    Decided(PenaltyDecision),
    Rejected(Rejection),
}

#[derive(Debug, Serialize)]
struct Scenario {
    given: Given,
    when: When,
    then: Then,
}

impl Scenario {
    fn decision(&self) -> &PenaltyDecision {
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

/// Support's smoking penalty against trip 1 at the default amount.
fn smoking() -> When {
    When {
        command: "issue_penalty",
        at: at(NOW),
        penalty_id: PENALTY_1,
        charge_id: CHARGE_1,
        trip_id: TRIP_1,
        account_id: IVANS,
        kind: PenaltyKind::Smoking,
        note: " Ash on the driver's seat, smell of smoke; photos in ticket 4711 ".to_owned(),
        amount_kopecks: None,
        tariff: tariff(),
    }
}

/// Trip 1: Ivan in the Kia, 09:00 to 09:20.
fn ended_trip() -> Vec<crate::trip::TripEvent> {
    let started = trip_started("2026-11-25T09:00:00Z");
    let ended = trip_ended(
        std::slice::from_ref(&started),
        "2026-11-25T09:20:00Z",
        START_ODOMETER_M + 5_000,
    );
    vec![started, ended]
}

fn decide(given: Given, when: When) -> Scenario {
    let trip = Trip::fold(&given.trip);
    let penalty = Penalty::fold(&given.penalty);
    let account = Account::fold(&given.account);
    let outcome = issue_penalty(IssuePenalty {
        penalty_id: when.penalty_id,
        charge_id: when.charge_id,
        now: when.at,
        penalty: &penalty,
        trip_id: when.trip_id,
        trip: &trip,
        account_id: when.account_id,
        account: &account,
        kind: when.kind,
        note: when.note.clone(),
        amount_kopecks: when.amount_kopecks,
        tariff: &when.tariff,
    });
    Scenario {
        given,
        when,
        then: match outcome {
            Ok(decision) => Then::Decided(decision),
            Err(rejection) => Then::Rejected(rejection),
        },
    }
}

#[test]
fn a_penalty_for_an_ended_trip_charges_the_driver_the_schedule_amount() {
    let scenario = decide(
        Given {
            trip: ended_trip(),
            ..Given::default()
        },
        smoking(),
    );
    let decision = scenario.decision();
    let [PenaltyEvent::PenaltyIssued { facts, .. }] = decision.penalty.as_slice() else {
        panic!("one PenaltyIssued expected: {decision:?}");
    };
    assert_eq!(facts.amount_kopecks, Kopecks(500_000));
    assert!(facts.default_amount);
    assert_eq!(facts.customer_id, IVAN);
    assert_eq!(facts.vehicle_id, KIA);
    assert_eq!(
        facts.note,
        "Ash on the driver's seat, smell of smoke; photos in ticket 4711"
    );
    assert!(matches!(
        decision.account.as_slice(),
        [AccountEvent::ChargeAdded {
            reason: ChargeReason::Penalty,
            source: ChargeSource::Penalty {
                penalty_id: PENALTY_1
            },
            amount_kopecks: Kopecks(500_000),
            ..
        }]
    ));
    assert_eq!(decision.account_id, IVANS);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_penalty_for_a_running_trip_is_allowed() {
    let scenario = decide(
        Given {
            trip: vec![trip_started("2026-11-25T09:00:00Z")],
            ..Given::default()
        },
        When {
            kind: PenaltyKind::LowFuel,
            note: "Fuel light on since the start of the trip".to_owned(),
            ..smoking()
        },
    );
    assert!(matches!(
        scenario.decision().account.as_slice(),
        [AccountEvent::ChargeAdded {
            amount_kopecks: Kopecks(50_000),
            ..
        }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn support_may_set_the_amount_of_a_penalty() {
    let scenario = decide(
        Given {
            trip: ended_trip(),
            ..Given::default()
        },
        When {
            kind: PenaltyKind::DirtyCar,
            note: "Mud on the back seats".to_owned(),
            amount_kopecks: Some(Kopecks(150_000)),
            ..smoking()
        },
    );
    let decision = scenario.decision();
    assert!(matches!(
        decision.penalty.as_slice(),
        [PenaltyEvent::PenaltyIssued { facts, .. }]
            if facts.amount_kopecks == Kopecks(150_000) && !facts.default_amount
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_penalty_for_a_trip_that_never_started_is_rejected() {
    let scenario = decide(Given::default(), smoking());
    assert_eq!(
        scenario.rejection(),
        &Rejection::TripNotFound { trip_id: TRIP_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_penalty_without_a_note_is_rejected() {
    let scenario = decide(
        Given {
            trip: ended_trip(),
            ..Given::default()
        },
        When {
            note: "  ".to_owned(),
            ..smoking()
        },
    );
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "note"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_penalty_of_no_kopecks_is_rejected() {
    let scenario = decide(
        Given {
            trip: ended_trip(),
            ..Given::default()
        },
        When {
            amount_kopecks: Some(Kopecks(0)),
            ..smoking()
        },
    );
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "amount_kopecks"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_penalty_id_used_before_is_rejected() {
    let first = decide(
        Given {
            trip: ended_trip(),
            ..Given::default()
        },
        smoking(),
    );
    let decision = first.decision().clone();
    let scenario = decide(
        Given {
            trip: ended_trip(),
            penalty: decision.penalty,
            account: decision.account,
        },
        When {
            charge_id: ChargeId(Uuid::from_u128(0x402)),
            ..smoking()
        },
    );
    assert_eq!(
        scenario.rejection(),
        &Rejection::PenaltyAlreadyIssued {
            penalty_id: PENALTY_1
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_penalty_charged_to_someone_other_than_the_trips_payer_is_rejected() {
    let scenario = decide(
        Given {
            trip: ended_trip(),
            ..Given::default()
        },
        When {
            account_id: AccountId::Customer(MARIA),
            ..smoking()
        },
    );
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "trip_id"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn the_trips_payer_is_its_customer() {
    assert_eq!(payer_of_trip(&Trip::fold(&ended_trip())), Some(IVANS));
    assert_eq!(payer_of_trip(&TripState::default()), None);
}

#[test]
fn an_issued_penalty_round_trips_through_the_store_encoding() {
    let scenario = decide(
        Given {
            trip: ended_trip(),
            ..Given::default()
        },
        smoking(),
    );
    for event in &scenario.decision().penalty {
        let encoded = crate::decider::encode(event).unwrap();
        let decoded: PenaltyEvent =
            crate::decider::decode(&encoded.event_type, encoded.schema_version, encoded.data)
                .unwrap();
        assert_eq!(&decoded, event);
    }
}
