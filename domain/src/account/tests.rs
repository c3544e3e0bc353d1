//! Account rules, one test per rule: given the account's history, when a cause charges it or
//! support refunds or waives, then these events or this rejection. A property at the end plays
//! random charges, refunds and waivers and checks the money invariants after every event.

use super::*;
use crate::testing::*;
use insta::assert_yaml_snapshot;
use proptest::prelude::*;

impl Addressed for AccountContext {
    fn stream_id(&self) -> String {
        self.account_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

/// Ivan's own account.
const IVANS: AccountId = AccountId::Customer(IVAN);
/// Charges are `…0401`, `…0402`; refunds `…0501`, `…0502`; a penalty `…0601`; a fine `…0701`.
const CHARGE_1: ChargeId = ChargeId(Uuid::from_u128(0x401));
const CHARGE_2: ChargeId = ChargeId(Uuid::from_u128(0x402));
const REFUND_1: RefundId = RefundId(Uuid::from_u128(0x501));
const REFUND_2: RefundId = RefundId(Uuid::from_u128(0x502));
const PENALTY_1: PenaltyId = PenaltyId(Uuid::from_u128(0x601));
const FINE_1: FineId = FineId(Uuid::from_u128(0x701));

fn ivans_now() -> AccountContext {
    AccountContext {
        account_id: IVANS,
        now: at(NOW),
    }
}

/// Trip 1's price, 1,234.56 RUB, as charge 1.
fn trip_charge() -> NewCharge {
    NewCharge {
        charge_id: CHARGE_1,
        reason: ChargeReason::TripPrice,
        source: ChargeSource::Trip { trip_id: TRIP_1 },
        amount_kopecks: Kopecks(123_456),
        customer_id: IVAN,
    }
}

fn added(charge: NewCharge, when: &str) -> AccountEvent {
    AccountEvent::ChargeAdded {
        account_id: IVANS,
        charge_id: charge.charge_id,
        reason: charge.reason,
        source: charge.source,
        amount_kopecks: charge.amount_kopecks,
        customer_id: charge.customer_id,
        added_at: at(when),
    }
}

/// Trip 1 was charged at 09:30.
fn trip_charged() -> AccountEvent {
    added(trip_charge(), "2026-11-25T09:30:00Z")
}

fn refunded(refund_id: RefundId, kopecks: i64) -> AccountEvent {
    AccountEvent::ChargeRefunded {
        charge_id: CHARGE_1,
        refund_id,
        amount_kopecks: Kopecks(kopecks),
        reason: "Car was dirty at the start".to_owned(),
        refunded_at: at("2026-11-25T09:40:00Z"),
    }
}

fn refund(refund_id: RefundId, kopecks: i64) -> AccountCommand {
    AccountCommand::Refund {
        charge_id: CHARGE_1,
        refund_id,
        amount_kopecks: Kopecks(kopecks),
        reason: "  Navigation failed mid-trip ".to_owned(),
    }
}

fn waive(reason: &str) -> AccountCommand {
    AccountCommand::Waive {
        charge_id: CHARGE_1,
        reason: reason.to_owned(),
    }
}

// Charges.

#[test]
fn a_trip_price_becomes_a_charge_linked_to_the_trip() {
    let scenario = Account::given([])
        .when(AccountCommand::AddCharge(trip_charge()), ivans_now())
        .then();
    assert_eq!(scenario.events(), [added(trip_charge(), NOW)]);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_charge_of_zero_kopecks_is_rejected() {
    let free = NewCharge {
        amount_kopecks: Kopecks::ZERO,
        ..trip_charge()
    };
    let scenario = Account::given([])
        .when(AccountCommand::AddCharge(free), ivans_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "amount_kopecks"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_charge_whose_reason_does_not_fit_its_source_is_rejected() {
    // A penalty charge must link to a penalty, not to a trip: the link is how support and the
    // auditors find out what the customer paid for.
    let mislinked = NewCharge {
        reason: ChargeReason::Penalty,
        ..trip_charge()
    };
    let scenario = Account::given([])
        .when(AccountCommand::AddCharge(mislinked), ivans_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "reason"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_charge_id_used_before_is_rejected() {
    let reused = NewCharge {
        source: ChargeSource::Trip { trip_id: TRIP_2 },
        ..trip_charge()
    };
    let scenario = Account::given([trip_charged()])
        .when(AccountCommand::AddCharge(reused), ivans_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ChargeAlreadyAdded {
            charge_id: CHARGE_1
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn charging_the_same_trip_twice_is_rejected_even_under_a_new_charge_id() {
    let again = NewCharge {
        charge_id: CHARGE_2,
        ..trip_charge()
    };
    let scenario = Account::given([trip_charged()])
        .when(AccountCommand::AddCharge(again), ivans_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::SourceAlreadyCharged {
            source_kind: "trip".to_owned(),
            source_id: TRIP_1.0,
            reason: "trip_price".to_owned(),
            charge_id: CHARGE_1,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_fine_and_its_admin_fee_are_two_charges_from_one_fine() {
    let fine = NewCharge {
        charge_id: CHARGE_1,
        reason: ChargeReason::Fine,
        source: ChargeSource::Fine { fine_id: FINE_1 },
        amount_kopecks: Kopecks(25_000),
        customer_id: IVAN,
    };
    let fee = NewCharge {
        charge_id: CHARGE_2,
        reason: ChargeReason::FineAdminFee,
        amount_kopecks: Kopecks(30_000),
        ..fine.clone()
    };
    let events = charges_for(&AccountState::default(), &ivans_now(), [fine, fee]).unwrap();
    assert_eq!(events.len(), 2);
    let state = Account::fold(&events);
    assert_eq!(state.totals().charged_kopecks, Kopecks(55_000));
    assert_yaml_snapshot!(events);
}

#[test]
fn charge_for_gives_the_one_event_to_append_with_the_cause() {
    // What a trip's end, a reservation's end or a penalty calls: the account's event for the same
    // append as its own.
    let paid_waiting = NewCharge {
        charge_id: CHARGE_2,
        reason: ChargeReason::PaidWaiting,
        source: ChargeSource::Reservation {
            reservation_id: RESERVATION_1,
        },
        amount_kopecks: Kopecks(4_500),
        customer_id: IVAN,
    };
    let account = Account::fold(&[trip_charged()]);
    let event = charge_for(&account, &ivans_now(), paid_waiting.clone()).unwrap();
    assert_eq!(event, added(paid_waiting.clone(), NOW));
    // The same charge again is refused, so a retried cause cannot bill twice.
    let account = Account::evolve(account, &event);
    assert!(matches!(
        charge_for(&account, &ivans_now(), paid_waiting),
        Err(Rejection::ChargeAlreadyAdded { .. })
    ));
}

#[test]
fn a_penalty_charge_links_to_its_penalty() {
    let penalty = NewCharge {
        charge_id: CHARGE_2,
        reason: ChargeReason::Penalty,
        source: ChargeSource::Penalty {
            penalty_id: PENALTY_1,
        },
        amount_kopecks: Kopecks(500_000),
        customer_id: IVAN,
    };
    let scenario = Account::given([trip_charged()])
        .when(AccountCommand::AddCharge(penalty), ivans_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [AccountEvent::ChargeAdded {
            source: ChargeSource::Penalty { .. },
            ..
        }]
    ));
    assert_yaml_snapshot!(scenario);
}

// Refunds.

#[test]
fn support_refunds_part_of_a_charge_with_the_trimmed_reason() {
    let scenario = Account::given([trip_charged()])
        .when(refund(REFUND_1, 23_456), ivans_now())
        .then();
    assert_eq!(
        scenario.events(),
        [AccountEvent::ChargeRefunded {
            charge_id: CHARGE_1,
            refund_id: REFUND_1,
            amount_kopecks: Kopecks(23_456),
            reason: "Navigation failed mid-trip".to_owned(),
            refunded_at: at(NOW),
        }]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn support_refunds_the_rest_after_a_partial_refund() {
    let scenario = Account::given([trip_charged(), refunded(REFUND_1, 23_456)])
        .when(refund(REFUND_2, 100_000), ivans_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [AccountEvent::ChargeRefunded {
            amount_kopecks: Kopecks(100_000),
            ..
        }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_refund_beyond_what_remains_refundable_is_rejected() {
    let scenario = Account::given([trip_charged(), refunded(REFUND_1, 23_456)])
        .when(refund(REFUND_2, 100_001), ivans_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::RefundExceedsRefundable {
            charge_id: CHARGE_1,
            requested_kopecks: 100_001,
            refundable_kopecks: 100_000,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_refund_of_a_waived_charge_is_rejected() {
    // A waived kopeck was never owed, so it can never have been paid, and there is nothing to
    // give back.
    let waived = AccountEvent::ChargeWaived {
        charge_id: CHARGE_1,
        amount_kopecks: Kopecks(123_456),
        reason: "Goodwill".to_owned(),
        waived_at: at("2026-11-25T09:45:00Z"),
    };
    let scenario = Account::given([trip_charged(), waived])
        .when(refund(REFUND_1, 1), ivans_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::RefundExceedsRefundable {
            refundable_kopecks: 0,
            ..
        }
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_refund_of_a_charge_not_on_the_account_is_rejected() {
    let scenario = Account::given([])
        .when(refund(REFUND_1, 100), ivans_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::ChargeNotFound {
            account_id: IVANS,
            charge_id: CHARGE_1,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_refund_of_no_kopecks_is_rejected() {
    let scenario = Account::given([trip_charged()])
        .when(refund(REFUND_1, 0), ivans_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "amount_kopecks"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_refund_without_a_reason_is_rejected() {
    let scenario = Account::given([trip_charged()])
        .when(
            AccountCommand::Refund {
                charge_id: CHARGE_1,
                refund_id: REFUND_1,
                amount_kopecks: Kopecks(100),
                reason: "   ".to_owned(),
            },
            ivans_now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "reason"
    ));
    assert_yaml_snapshot!(scenario);
}

// Waivers.

#[test]
fn a_waiver_forgives_what_is_still_owed() {
    let scenario = Account::given([trip_charged(), refunded(REFUND_1, 23_456)])
        .when(waive("Customer in hospital"), ivans_now())
        .then();
    assert_eq!(
        scenario.events(),
        [AccountEvent::ChargeWaived {
            charge_id: CHARGE_1,
            amount_kopecks: Kopecks(100_000),
            reason: "Customer in hospital".to_owned(),
            waived_at: at(NOW),
        }]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_waiver_of_a_charge_with_nothing_owed_is_rejected() {
    let scenario = Account::given([trip_charged(), refunded(REFUND_1, 123_456)])
        .when(waive("Goodwill"), ivans_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::NothingToWaive {
            charge_id: CHARGE_1
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_waiver_of_a_charge_not_on_the_account_is_rejected() {
    let scenario = Account::given([trip_charged()])
        .when(
            AccountCommand::Waive {
                charge_id: CHARGE_2,
                reason: "Goodwill".to_owned(),
            },
            ivans_now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::ChargeNotFound { charge_id, .. } if *charge_id == CHARGE_2
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_waiver_without_a_reason_is_rejected() {
    let scenario = Account::given([trip_charged()])
        .when(waive(""), ivans_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "reason"
    ));
    assert_yaml_snapshot!(scenario);
}

// The account's id and sums.

#[test]
fn an_account_id_is_text_and_a_stream() {
    assert_eq!(
        IVANS.to_string(),
        "customer:00000000-0000-0000-0000-000000000101"
    );
    assert_eq!(IVANS.to_string().parse::<AccountId>().unwrap(), IVANS);
    assert_eq!(
        IVANS.stream_id(),
        "account-00000000-0000-0000-0000-000000000101"
    );
    assert_eq!(AccountId::from_stream_id(&IVANS.stream_id()), Some(IVANS));
    assert_eq!(AccountId::from_stream_id(&IVAN.stream_id()), None);
    assert!("company:x".parse::<AccountId>().is_err());
    assert!(
        "person:00000000-0000-0000-0000-000000000101"
            .parse::<AccountId>()
            .is_err()
    );
    let romashkas = AccountId::Company(ROMASHKA);
    assert_eq!(
        romashkas.to_string(),
        "company:00000000-0000-0000-0000-000000000501"
    );
    assert_eq!(
        romashkas.to_string().parse::<AccountId>().unwrap(),
        romashkas
    );
    assert_eq!(
        romashkas.stream_id(),
        "account-company-00000000-0000-0000-0000-000000000501"
    );
    assert_eq!(
        AccountId::from_stream_id(&romashkas.stream_id()),
        Some(romashkas)
    );
    assert_eq!(romashkas.customer(), None);
    assert_eq!(
        serde_json::to_value(IVANS).unwrap(),
        serde_json::json!("customer:00000000-0000-0000-0000-000000000101")
    );
}

#[test]
fn totals_add_up_over_charges_refunds_and_waivers() {
    let penalty = NewCharge {
        charge_id: CHARGE_2,
        reason: ChargeReason::Penalty,
        source: ChargeSource::Penalty {
            penalty_id: PENALTY_1,
        },
        amount_kopecks: Kopecks(500_000),
        customer_id: IVAN,
    };
    let state = Account::fold(&[
        trip_charged(),
        refunded(REFUND_1, 23_456),
        added(penalty, NOW),
        AccountEvent::ChargeWaived {
            charge_id: CHARGE_2,
            amount_kopecks: Kopecks(500_000),
            reason: "First time".to_owned(),
            waived_at: at(NOW),
        },
    ]);
    assert_eq!(
        state.totals(),
        AccountTotals {
            charged_kopecks: Kopecks(623_456),
            refunded_kopecks: Kopecks(23_456),
            waived_kopecks: Kopecks(500_000),
            paid_kopecks: Kopecks::ZERO,
            balance_kopecks: Kopecks(100_000),
            open_kopecks: Kopecks(100_000),
        }
    );
    assert_eq!(state.check_invariants(), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Property: whatever support and the causes ask, in any order, every charge keeps
// refunded + waived ≤ charged, and the totals add up to the sums of the events.

#[derive(Clone, Debug)]
enum Step {
    Charge { source: u8, amount: i64 },
    Refund { charge: u8, amount: i64 },
    Waive { charge: u8 },
    Capture { charge: u8, amount: i64 },
    Return { charge: u8, amount: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..6, -100i64..200_000).prop_map(|(source, amount)| Step::Charge { source, amount }),
        (0u8..8, -100i64..250_000).prop_map(|(charge, amount)| Step::Refund { charge, amount }),
        (0u8..8).prop_map(|charge| Step::Waive { charge }),
        (0u8..8, -100i64..250_000).prop_map(|(charge, amount)| Step::Capture { charge, amount }),
        (0u8..8, -100i64..250_000).prop_map(|(charge, amount)| Step::Return { charge, amount }),
    ]
}

fn charge_id(n: u8) -> ChargeId {
    ChargeId(Uuid::from_u128(0x400 + u128::from(n)))
}

proptest! {
    #[test]
    fn refunds_and_waivers_never_exceed_a_charge_and_totals_add_up(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        let context = ivans_now();
        let mut state = AccountState::default();
        let (mut charged, mut refunded, mut waived, mut paid) = (0i64, 0i64, 0i64, 0i64);
        let mut next_charge = 0u8;
        for (n, step) in steps.into_iter().enumerate() {
            let command = match step {
                Step::Charge { source, amount } => {
                    let id = charge_id(next_charge);
                    next_charge = next_charge.wrapping_add(1);
                    AccountCommand::AddCharge(NewCharge {
                        charge_id: id,
                        reason: ChargeReason::TripPrice,
                        source: ChargeSource::Trip {
                            trip_id: TripId(Uuid::from_u128(0x300 + u128::from(source))),
                        },
                        amount_kopecks: Kopecks(amount),
                        customer_id: IVAN,
                    })
                }
                Step::Refund { charge, amount } => AccountCommand::Refund {
                    charge_id: charge_id(charge),
                    refund_id: RefundId(Uuid::from_u128(0x10_000 + n as u128)),
                    amount_kopecks: Kopecks(amount),
                    reason: "support".to_owned(),
                },
                Step::Waive { charge } => AccountCommand::Waive {
                    charge_id: charge_id(charge),
                    reason: "support".to_owned(),
                },
                Step::Capture { charge, amount } => AccountCommand::Record(PaymentFact::Captured {
                    charge_id: charge_id(charge),
                    payment_id: format!("p{n}"),
                    amount_kopecks: amount,
                    key: format!("k{n}"),
                }),
                Step::Return { charge, amount } => AccountCommand::Record(PaymentFact::Refunded {
                    charge_id: charge_id(charge),
                    payment_id: format!("p{n}"),
                    gateway_refund_id: format!("r{n}"),
                    amount_kopecks: amount,
                    key: format!("k{n}"),
                }),
            };
            let before = state.clone();
            match Account::decide(&state, &command, &context) {
                Ok(events) => {
                    for event in &events {
                        match event {
                            AccountEvent::ChargeAdded { amount_kopecks, .. } => charged += amount_kopecks.get(),
                            AccountEvent::ChargeRefunded { amount_kopecks, .. } => refunded += amount_kopecks.get(),
                            AccountEvent::ChargeWaived { amount_kopecks, .. } => waived += amount_kopecks.get(),
                            AccountEvent::PaymentCaptured { amount_kopecks, .. } => paid += amount_kopecks.get(),
                            AccountEvent::PaymentRefunded { amount_kopecks, .. } => paid -= amount_kopecks.get(),
                            _ => {}
                        }
                        prop_assert!(event_amount(event) > 0, "{event:?}");
                        state = Account::evolve(state, event);
                        prop_assert_eq!(state.check_invariants(), Ok(()));
                    }
                }
                Err(_) => prop_assert_eq!(&state, &before),
            }
            let totals = state.totals();
            prop_assert_eq!(totals.charged_kopecks.get(), charged);
            prop_assert_eq!(totals.refunded_kopecks.get(), refunded);
            prop_assert_eq!(totals.waived_kopecks.get(), waived);
            prop_assert_eq!(totals.paid_kopecks.get(), paid);
            prop_assert_eq!(totals.balance_kopecks.get(), charged - refunded - waived - paid);
            for charge in state.charges.values() {
                prop_assert!(charge.refunded_kopecks + charge.waived_kopecks <= charge.amount_kopecks);
            }
        }
    }
}

fn event_amount(event: &AccountEvent) -> i64 {
    match event {
        AccountEvent::ChargeAdded { amount_kopecks, .. }
        | AccountEvent::ChargeRefunded { amount_kopecks, .. }
        | AccountEvent::ChargeWaived { amount_kopecks, .. }
        | AccountEvent::PaymentHeld { amount_kopecks, .. }
        | AccountEvent::PaymentCaptured { amount_kopecks, .. }
        | AccountEvent::PaymentRefunded { amount_kopecks, .. }
        | AccountEvent::DebtHandedToAgency { amount_kopecks, .. }
        | AccountEvent::HoldAbandoned { amount_kopecks, .. } => amount_kopecks.get(),
        AccountEvent::HoldReleased { .. }
        | AccountEvent::PaymentFailed { .. }
        | AccountEvent::DebtNoticeSent { .. } => 1,
    }
}

#[test]
fn every_account_event_round_trips_through_the_store_encoding() {
    let events = [
        trip_charged(),
        refunded(REFUND_1, 23_456),
        AccountEvent::ChargeWaived {
            charge_id: CHARGE_1,
            amount_kopecks: Kopecks(100_000),
            reason: "Goodwill".to_owned(),
            waived_at: at(NOW),
        },
    ];
    for event in events {
        let encoded = crate::decider::encode(&event).unwrap();
        let decoded: AccountEvent =
            crate::decider::decode(&encoded.event_type, encoded.schema_version, encoded.data)
                .unwrap();
        assert_eq!(decoded, event);
    }
}

#[test]
fn a_trips_end_charges_its_price_to_the_trips_payer() {
    // What the trip's end will call: the payer from the trip, the charge from `TripEnded`.
    let started = trip_started("2026-11-25T09:00:00Z");
    let ended = trip_ended(
        std::slice::from_ref(&started),
        "2026-11-25T09:20:00Z",
        START_ODOMETER_M + 5_000,
    );
    let trip = crate::trip::Trip::fold([&started, &ended]);
    let payer = payer_of_trip(&trip).unwrap();
    assert_eq!(payer, IVANS);
    let context = AccountContext {
        account_id: payer,
        now: at("2026-11-25T09:20:00Z"),
    };
    let charge = trip_price_charge(&AccountState::default(), &context, CHARGE_1, &ended)
        .unwrap()
        .unwrap();
    let crate::trip::TripEvent::TripEnded { price, .. } = &ended else {
        unreachable!()
    };
    assert!(matches!(
        &charge,
        AccountEvent::ChargeAdded { reason: ChargeReason::TripPrice, source: ChargeSource::Trip { trip_id }, amount_kopecks, .. }
            if *trip_id == TRIP_1 && *amount_kopecks == price.total_kopecks
    ));
    assert_yaml_snapshot!(charge);
    // Ending the same trip cannot be charged twice.
    let account = Account::fold([&charge]);
    assert!(matches!(
        trip_price_charge(&account, &context, CHARGE_2, &ended),
        Err(Rejection::SourceAlreadyCharged { .. })
    ));
    // Other trip events charge nothing.
    assert_eq!(
        trip_price_charge(&AccountState::default(), &context, CHARGE_1, &started),
        Ok(None)
    );
}

#[test]
fn a_trip_that_cost_nothing_is_not_charged() {
    let started = trip_started(NOW);
    let ended = trip_ended(std::slice::from_ref(&started), NOW, START_ODOMETER_M);
    let crate::trip::TripEvent::TripEnded { price, .. } = &ended else {
        unreachable!()
    };
    assert_eq!(price.total_kopecks, Kopecks::ZERO);
    assert_eq!(
        trip_price_charge(&AccountState::default(), &ivans_now(), CHARGE_1, &ended),
        Ok(None)
    );
}

#[test]
fn an_employees_trip_is_charged_to_the_company_it_started_for() {
    let mut start = trip_start(TRIP_1, IVAN, KIA);
    start.company_id = Some(ROMASHKA);
    let started = crate::trip::TripEvent::TripStarted {
        start,
        started_at: at("2026-11-25T09:00:00Z"),
    };
    let ended = trip_ended(
        std::slice::from_ref(&started),
        "2026-11-25T09:20:00Z",
        START_ODOMETER_M + 5_000,
    );
    let trip = crate::trip::Trip::fold([&started, &ended]);
    let payer = payer_of_trip(&trip).unwrap();
    assert_eq!(payer, AccountId::Company(ROMASHKA));
    let context = AccountContext {
        account_id: payer,
        now: at("2026-11-25T09:20:00Z"),
    };
    let charge = trip_price_charge(&AccountState::default(), &context, CHARGE_1, &ended)
        .unwrap()
        .unwrap();
    // On the company's account, caused by Ivan.
    assert!(matches!(
        &charge,
        AccountEvent::ChargeAdded { account_id, customer_id, .. }
            if *account_id == AccountId::Company(ROMASHKA) && *customer_id == IVAN
    ));
    assert_yaml_snapshot!(charge);
}

#[test]
fn the_end_of_a_reservation_charges_its_paid_waiting_to_the_customer() {
    let made = reservation_made("2026-11-25T09:00:00Z");
    let state = crate::reservation::Reservation::fold([&made]);
    // Cancelled 20 minutes in: 15 free minutes, 5 paid.
    let cancelled = crate::reservation::Reservation::decide(
        &state,
        &crate::reservation::ReservationCommand::Cancel,
        &reservation_context(RESERVATION_1, "2026-11-25T09:20:00Z"),
    )
    .unwrap()
    .remove(0);
    let context = AccountContext {
        account_id: IVANS,
        now: at("2026-11-25T09:20:00Z"),
    };
    let charge = paid_waiting_charge(&AccountState::default(), &context, CHARGE_2, &cancelled)
        .unwrap()
        .unwrap();
    let crate::reservation::ReservationEvent::ReservationCancelled { waiting, .. } = &cancelled
    else {
        unreachable!()
    };
    assert!(waiting.paid_waiting_kopecks > Kopecks::ZERO);
    assert!(matches!(
        &charge,
        AccountEvent::ChargeAdded { reason: ChargeReason::PaidWaiting, source: ChargeSource::Reservation { reservation_id }, amount_kopecks, .. }
            if *reservation_id == RESERVATION_1 && *amount_kopecks == waiting.paid_waiting_kopecks
    ));
    assert_yaml_snapshot!(charge);
    // Within the free minutes nothing is charged, and a reservation made charges nothing.
    let early = crate::reservation::Reservation::decide(
        &state,
        &crate::reservation::ReservationCommand::Cancel,
        &reservation_context(RESERVATION_1, "2026-11-25T09:10:00Z"),
    )
    .unwrap()
    .remove(0);
    assert_eq!(
        paid_waiting_charge(&AccountState::default(), &context, CHARGE_2, &early),
        Ok(None)
    );
    assert_eq!(
        paid_waiting_charge(&AccountState::default(), &context, CHARGE_2, &made),
        Ok(None)
    );
}

// ---------------------------------------------------------------------------------------------
// Payment facts: what the gateway did, as the payment saga records it.

fn captured(key: &str, kopecks: i64) -> AccountEvent {
    AccountEvent::PaymentCaptured {
        charge_id: CHARGE_1,
        payment_id: "pay-1".to_owned(),
        amount_kopecks: Kopecks(kopecks),
        key: key.to_owned(),
        captured_at: at("2026-11-25T09:31:00Z"),
    }
}

fn capture_fact(key: &str, kopecks: i64) -> AccountCommand {
    AccountCommand::Record(PaymentFact::Captured {
        charge_id: CHARGE_1,
        payment_id: "pay-1".to_owned(),
        amount_kopecks: kopecks,
        key: key.to_owned(),
    })
}

#[test]
fn a_capture_pays_the_charge() {
    let scenario = Account::given([trip_charged()])
        .when(capture_fact("c1-hold", 123_456), ivans_now())
        .then();
    let state = Account::fold(&[trip_charged(), scenario.events()[0].clone()]);
    assert_eq!(state.totals().paid_kopecks, Kopecks(123_456));
    assert_eq!(state.totals().open_kopecks, Kopecks::ZERO);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_fact_recorded_again_under_its_key_records_nothing() {
    let scenario = Account::given([trip_charged(), captured("c1-hold", 1_000)])
        .when(capture_fact("c1-hold", 1_000), ivans_now())
        .then();
    assert!(scenario.events().is_empty());
}

#[test]
fn a_fact_for_an_unknown_charge_is_rejected() {
    let scenario = Account::given([])
        .when(capture_fact("c1-hold", 1_000), ivans_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::ChargeNotFound { .. }
    ));
}

#[test]
fn a_refund_of_a_paid_charge_is_owed_back_until_the_card_gets_it() {
    // Paid in full, then support refunds 200 RUB: the balance is −200 RUB (to give back) until
    // the gateway's refund is recorded.
    let state = Account::fold(&[
        trip_charged(),
        captured("c1-hold", 123_456),
        refunded(REFUND_1, 20_000),
    ]);
    let charge = state.charge(CHARGE_1).unwrap();
    assert_eq!(charge.to_return_kopecks(), Kopecks(20_000));
    assert_eq!(charge.open_kopecks(), Kopecks::ZERO);
    let scenario = Account::given([
        trip_charged(),
        captured("c1-hold", 123_456),
        refunded(REFUND_1, 20_000),
    ])
    .when(
        AccountCommand::Record(PaymentFact::Refunded {
            charge_id: CHARGE_1,
            payment_id: "pay-1".to_owned(),
            gateway_refund_id: "ref-1".to_owned(),
            amount_kopecks: 20_000,
            key: "c1-refund-1".to_owned(),
        }),
        ivans_now(),
    )
    .then();
    let mut history = vec![
        trip_charged(),
        captured("c1-hold", 123_456),
        refunded(REFUND_1, 20_000),
    ];
    history.extend(scenario.events().iter().cloned());
    let after = Account::fold(&history);
    assert_eq!(
        after.charge(CHARGE_1).unwrap().balance_kopecks(),
        Kopecks::ZERO
    );
    assert_eq!(after.totals().paid_kopecks, Kopecks(103_456));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn more_cannot_go_back_to_the_card_than_was_kept() {
    let scenario = Account::given([trip_charged(), captured("c1-hold", 1_000)])
        .when(
            AccountCommand::Record(PaymentFact::Refunded {
                charge_id: CHARGE_1,
                payment_id: "pay-1".to_owned(),
                gateway_refund_id: "ref-1".to_owned(),
                amount_kopecks: 1_001,
                key: "c1-refund-1".to_owned(),
            }),
            ivans_now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "amount_kopecks"
    ));
}

#[test]
fn a_waiver_forgives_only_what_the_card_did_not_pay() {
    let scenario = Account::given([trip_charged(), captured("c1-hold", 23_456)])
        .when(waive("Goodwill"), ivans_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [AccountEvent::ChargeWaived { amount_kopecks, .. }] if *amount_kopecks == Kopecks(100_000)
    ));
}

#[test]
fn a_hold_is_recorded_once_per_trip_and_released_by_its_payment_id() {
    let held = AccountEvent::PaymentHeld {
        trip_id: TRIP_1,
        payment_id: "hold-1".to_owned(),
        amount_kopecks: Kopecks(50_000),
        key: "hold-k".to_owned(),
        held_at: at("2026-11-25T09:00:00Z"),
    };
    let wrong = Account::given([held.clone()])
        .when(
            AccountCommand::Record(PaymentFact::HoldReleased {
                trip_id: TRIP_1,
                payment_id: "someone-elses".to_owned(),
                key: "release-1".to_owned(),
            }),
            ivans_now(),
        )
        .then();
    assert!(matches!(wrong.rejection(), Rejection::InvalidField(_)));
    let released = Account::given([held])
        .when(
            AccountCommand::Record(PaymentFact::HoldReleased {
                trip_id: TRIP_1,
                payment_id: "hold-1".to_owned(),
                key: "release-1".to_owned(),
            }),
            ivans_now(),
        )
        .then();
    assert_yaml_snapshot!(released);
}

// ---------------------------------------------------------------------------------------------
// Holds no trip took: let go before the gateway cancels them, never taken after.

fn held_for_trip_1() -> AccountEvent {
    AccountEvent::PaymentHeld {
        trip_id: TRIP_1,
        payment_id: "pay-h1".to_owned(),
        amount_kopecks: Kopecks(50_000),
        key: "hold-k1".to_owned(),
        held_at: at("2026-11-25T09:00:00Z"),
    }
}

fn abandon_k2(payment_id: Option<&str>) -> AccountCommand {
    AccountCommand::AbandonHold(HoldToAbandon {
        key: "hold-k2".to_owned(),
        payment_id: payment_id.map(str::to_owned),
        trip_id: Some(TRIP_2),
        amount_kopecks: Kopecks(50_000),
        reason: AbandonReason::NotTaken,
    })
}

fn abandoned_k2() -> AccountEvent {
    AccountEvent::HoldAbandoned {
        key: "hold-k2".to_owned(),
        payment_id: None,
        trip_id: Some(TRIP_2),
        amount_kopecks: Kopecks(50_000),
        reason: AbandonReason::NotTaken,
        abandoned_at: at("2026-11-25T09:10:00Z"),
    }
}

fn held_k2() -> AccountCommand {
    AccountCommand::Record(PaymentFact::Held {
        trip_id: TRIP_2,
        payment_id: "pay-h2".to_owned(),
        amount_kopecks: 50_000,
        key: "hold-k2".to_owned(),
    })
}

#[test]
fn a_hold_no_trip_took_is_abandoned_before_the_gateway_cancels_it() {
    let scenario = Account::given([held_for_trip_1()])
        .when(abandon_k2(None), ivans_now())
        .then();
    let state = Account::fold(&[held_for_trip_1(), scenario.events()[0].clone()]);
    assert!(state.abandoned_holds.contains("hold-k2"));
    // Trip 1's hold is untouched.
    assert!(!state.holds[&TRIP_1].closed);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_hold_a_trip_took_cannot_be_abandoned() {
    let by_key = Account::given([held_for_trip_1()])
        .when(
            AccountCommand::AbandonHold(HoldToAbandon {
                key: "hold-k1".to_owned(),
                payment_id: None,
                trip_id: None,
                amount_kopecks: Kopecks(50_000),
                reason: AbandonReason::NotTaken,
            }),
            ivans_now(),
        )
        .then();
    assert_eq!(
        by_key.rejection(),
        &Rejection::HoldTaken {
            key: "hold-k1".to_owned()
        }
    );
    // Found at the gateway by its payment id alone (the reconciler): the same.
    let by_payment = Account::given([held_for_trip_1()])
        .when(
            AccountCommand::AbandonHold(HoldToAbandon {
                key: "payment:pay-h1".to_owned(),
                payment_id: Some("pay-h1".to_owned()),
                trip_id: None,
                amount_kopecks: Kopecks(50_000),
                reason: AbandonReason::UnknownToVelka,
            }),
            ivans_now(),
        )
        .then();
    assert!(matches!(
        by_payment.rejection(),
        Rejection::HoldTaken { .. }
    ));
    assert_yaml_snapshot!(by_key);
}

#[test]
fn a_hold_let_go_before_is_not_let_go_again() {
    let scenario = Account::given([abandoned_k2()])
        .when(abandon_k2(Some("pay-h2")), ivans_now())
        .then();
    assert!(scenario.events().is_empty());
}

#[test]
fn a_start_retried_with_the_key_of_a_hold_let_go_cannot_take_it() {
    // The gateway answers a repeated key with its first answer, a hold, even after it was
    // cancelled: the account refuses it, so no trip runs on a released hold.
    let scenario = Account::given([abandoned_k2()])
        .when(held_k2(), ivans_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::HoldReleased {
            key: "hold-k2".to_owned()
        }
    );
    let state = Account::fold(&[abandoned_k2()]);
    assert!(check_hold_key(&state, "hold-k2").is_err());
    assert!(check_hold_key(&state, "hold-k3").is_ok());
    assert_yaml_snapshot!(scenario);
}

#[test]
fn an_abandoned_hold_round_trips_through_the_store_encoding() {
    let event = abandoned_k2();
    let encoded = crate::decider::encode(&event).unwrap();
    let decoded: AccountEvent =
        crate::decider::decode(&encoded.event_type, encoded.schema_version, encoded.data).unwrap();
    assert_eq!(decoded, event);
}
