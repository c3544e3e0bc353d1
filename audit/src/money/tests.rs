//! The comparison on hand-made witnesses: agreement is silent, and each kind of disagreement is
//! named with its account, field, values and the events behind the event-side figure.

use super::*;
use domain::account::{ChargeId, ChargeReason, ChargeSource};
use domain::ids::{CustomerId, TripId};
use domain::money::Kopecks;

fn customer() -> AccountId {
    AccountId::Customer(CustomerId(Uuid::from_u128(0xC1)))
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A trip: hold 500, charge 1200, 500 captured from the hold, 700 charged, 300 refunded to
/// the card after support refunded 300.
fn stream() -> AccountStream {
    let charge_id = ChargeId(Uuid::from_u128(0xC4));
    let trip_id = TripId(Uuid::from_u128(0x71));
    let events = vec![
        AccountEvent::PaymentHeld {
            trip_id,
            payment_id: "hold-1".into(),
            amount_kopecks: Kopecks(500),
            key: "k-hold".into(),
            held_at: at(),
        },
        AccountEvent::ChargeAdded {
            account_id: customer(),
            charge_id,
            reason: ChargeReason::TripPrice,
            source: ChargeSource::Trip { trip_id },
            amount_kopecks: Kopecks(1200),
            customer_id: CustomerId(Uuid::from_u128(0xC1)),
            added_at: at(),
        },
        AccountEvent::PaymentCaptured {
            charge_id,
            payment_id: "hold-1".into(),
            amount_kopecks: Kopecks(500),
            key: "k-capture".into(),
            captured_at: at(),
        },
        AccountEvent::PaymentCaptured {
            charge_id,
            payment_id: "pay-2".into(),
            amount_kopecks: Kopecks(700),
            key: "k-rest".into(),
            captured_at: at(),
        },
        AccountEvent::ChargeRefunded {
            charge_id,
            refund_id: domain::account::RefundId(Uuid::from_u128(0xF1)),
            amount_kopecks: Kopecks(300),
            reason: "Goodwill".into(),
            refunded_at: at(),
        },
        AccountEvent::PaymentRefunded {
            charge_id,
            payment_id: "pay-2".into(),
            gateway_refund_id: "r-1".into(),
            amount_kopecks: Kopecks(300),
            key: "k-refund".into(),
            refunded_at: at(),
        },
    ];
    AccountStream {
        account_id: customer(),
        events: events
            .into_iter()
            .enumerate()
            .map(|(n, event)| {
                let version = i64::try_from(n).unwrap_or(0) + 1;
                let r = event_ref(
                    100 + version,
                    version,
                    Uuid::from_u128(0xE000 + u128::try_from(n).unwrap_or(0)),
                    type_of(&event),
                    &event,
                );
                (r, event)
            })
            .collect(),
    }
}

fn type_of(event: &AccountEvent) -> &'static str {
    match event {
        AccountEvent::PaymentHeld { .. } => "PaymentHeld",
        AccountEvent::ChargeAdded { .. } => "ChargeAdded",
        AccountEvent::PaymentCaptured { .. } => "PaymentCaptured",
        AccountEvent::ChargeRefunded { .. } => "ChargeRefunded",
        AccountEvent::PaymentRefunded { .. } => "PaymentRefunded",
        _ => "Other",
    }
}

/// The read model as the projector leaves it after all six events.
fn view() -> BTreeMap<String, ViewAccount> {
    let charge = ViewCharge {
        amount_kopecks: 1200,
        refunded_kopecks: 300,
        waived_kopecks: 0,
        paid_kopecks: 900,
        adjustments_refunded_kopecks: 300,
        adjustments_waived_kopecks: 0,
    };
    BTreeMap::from([(
        customer().to_string(),
        ViewAccount {
            charged_kopecks: 1200,
            refunded_kopecks: 300,
            waived_kopecks: 0,
            paid_kopecks: 900,
            open_kopecks: 0,
            stream_version: 6,
            charges: BTreeMap::from([(Uuid::from_u128(0xC4), charge)]),
        },
    )])
}

fn payment(id: &str, status: &str, amount: i64, captured: i64, refunded: i64) -> LedgerPayment {
    LedgerPayment {
        id: id.into(),
        status: status.into(),
        amount_kopecks: amount,
        captured_kopecks: captured,
        refunded_kopecks: refunded,
        customer_ref: Uuid::from_u128(0xC1).to_string(),
    }
}

fn ledger() -> GatewayLedger {
    GatewayLedger {
        payments: vec![
            payment("hold-1", "succeeded", 500, 500, 0),
            payment("pay-2", "succeeded", 700, 700, 300),
        ],
        idempotence_keys: vec![LedgerKey {
            key: "k-rest".into(),
            created: vec!["pay-2".into()],
        }],
    }
}

#[test]
fn three_witnesses_that_agree_give_no_difference() {
    let found = reconcile(
        &[stream()],
        &view(),
        Some(&ledger()),
        &NotedHolds::default(),
    );
    assert_eq!(found.differences, vec![]);
    assert_eq!(found.accounts, 1);
    assert_eq!(found.events, 6);
    assert!(found.gateway_checked);
    assert_eq!(
        found.result_line(),
        "result: audit=money accounts=1 differences=0 waiting=0"
    );
}

#[test]
fn an_edited_read_model_row_is_named_with_the_events_behind_the_figure() {
    let mut views = view();
    if let Some(row) = views.get_mut(&customer().to_string()) {
        row.paid_kopecks -= 100;
        row.open_kopecks += 100;
    }
    let found = reconcile(&[stream()], &views, None, &NotedHolds::default());
    let fields: Vec<(&str, &str, Option<i64>, Option<i64>)> = found
        .differences
        .iter()
        .map(|d| (d.account.as_str(), d.field.as_str(), d.events, d.read_model))
        .collect();
    let account = customer().to_string();
    assert_eq!(
        fields,
        vec![
            (account.as_str(), "paid_kopecks", Some(900), Some(800)),
            (account.as_str(), "open_kopecks", Some(0), Some(100)),
        ]
    );
    let paid_by: Vec<i64> = found.differences[0]
        .explained_by
        .iter()
        .map(|r| r.position)
        .collect();
    assert_eq!(
        paid_by,
        vec![103, 104, 106],
        "the captures and the card refund"
    );
}

#[test]
fn a_charge_row_and_its_adjustments_are_compared_too() {
    let mut views = view();
    if let Some(row) = views
        .get_mut(&customer().to_string())
        .and_then(|v| v.charges.get_mut(&Uuid::from_u128(0xC4)))
    {
        row.adjustments_refunded_kopecks = 0;
    }
    let found = reconcile(&[stream()], &views, None, &NotedHolds::default());
    assert_eq!(found.differences.len(), 1, "{:?}", found.differences);
    let difference = &found.differences[0];
    assert_eq!(
        difference.field,
        format!(
            "charge {} refunds in account_adjustments_view",
            Uuid::from_u128(0xC4)
        )
    );
    assert_eq!(
        (difference.events, difference.read_model),
        (Some(300), Some(0))
    );
    assert_eq!(difference.explained_by.len(), 1);
    assert_eq!(difference.explained_by[0].event_type, "ChargeRefunded");
}

#[test]
fn a_read_model_behind_its_stream_is_lagging_not_wrong() {
    let mut views = view();
    if let Some(row) = views.get_mut(&customer().to_string()) {
        // As after the first three events.
        *row = ViewAccount {
            charged_kopecks: 1200,
            refunded_kopecks: 0,
            waived_kopecks: 0,
            paid_kopecks: 500,
            open_kopecks: 700,
            stream_version: 3,
            charges: BTreeMap::from([(
                Uuid::from_u128(0xC4),
                ViewCharge {
                    amount_kopecks: 1200,
                    paid_kopecks: 500,
                    ..ViewCharge::default()
                },
            )]),
        };
    }
    let found = reconcile(&[stream()], &views, None, &NotedHolds::default());
    assert_eq!(found.differences, vec![]);
    assert_eq!(
        found.lagging,
        vec![Lag {
            account: customer().to_string(),
            read_model_version: 3,
            stream_version: 6
        }]
    );
}

#[test]
fn a_capture_velka_never_recorded_is_named_with_its_key() {
    let mut ledger = ledger();
    ledger
        .payments
        .push(payment("rogue", "succeeded", 250, 250, 0));
    ledger.idempotence_keys.push(LedgerKey {
        key: "not-velkas".into(),
        created: vec!["rogue".into()],
    });
    let found = reconcile(&[stream()], &view(), Some(&ledger), &NotedHolds::default());
    assert_eq!(found.differences.len(), 1, "{:?}", found.differences);
    let difference = &found.differences[0];
    assert_eq!(difference.account, customer().to_string());
    assert_eq!(difference.field, "paid_kopecks (gateway)");
    assert_eq!(
        (difference.events, difference.gateway),
        (Some(900), Some(1150))
    );
    assert_eq!(
        difference.gateway_payments,
        vec![GatewayPaymentNote {
            payment_id: "rogue".into(),
            key: Some("not-velkas".into()),
            status: "succeeded".into(),
            gateway_kopecks: 250,
            events_kopecks: 0,
        }]
    );
}

#[test]
fn a_hold_the_gateway_keeps_open_but_the_events_do_not_know_is_found() {
    let mut ledger = ledger();
    ledger
        .payments
        .push(payment("orphan-hold", "waiting_for_capture", 400, 0, 0));
    let found = reconcile(&[stream()], &view(), Some(&ledger), &NotedHolds::default());
    let fields: Vec<(&str, Option<i64>, Option<i64>)> = found
        .differences
        .iter()
        .map(|d| (d.field.as_str(), d.events, d.gateway))
        .collect();
    assert_eq!(fields, vec![("held_kopecks (gateway)", Some(0), Some(400))]);
}

#[test]
fn a_missing_account_row_and_a_row_without_events_are_both_differences() {
    let mut views = BTreeMap::new();
    views.insert(
        "customer:00000000-0000-0000-0000-0000000000c2".to_owned(),
        ViewAccount {
            charged_kopecks: 10,
            open_kopecks: 10,
            stream_version: 1,
            ..ViewAccount::default()
        },
    );
    let found = reconcile(&[stream()], &views, None, &NotedHolds::default());
    let fields: Vec<(&str, &str)> = found
        .differences
        .iter()
        .map(|d| (d.account.as_str(), d.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (
                "customer:00000000-0000-0000-0000-0000000000c1",
                "accounts_view row"
            ),
            (
                "customer:00000000-0000-0000-0000-0000000000c2",
                "account stream"
            ),
        ]
    );
    assert_eq!(found.accounts, 2);
}

/// A gateway hold under key `k-new` that the events do not show, and Velka's note of it due at
/// `due`.
fn noted_hold(due: DateTime<Utc>, now: DateTime<Utc>) -> (GatewayLedger, NotedHolds) {
    let mut ledger = ledger();
    ledger
        .payments
        .push(payment("new-hold", "waiting_for_capture", 400, 0, 0));
    ledger.idempotence_keys.push(LedgerKey {
        key: "k-new".into(),
        created: vec!["new-hold".into()],
    });
    let noted = NotedHolds {
        holds: vec![NotedHold {
            hold_key: "k-new".into(),
            customer_id: Uuid::from_u128(0xC1),
            amount_kopecks: 400,
            release_from: due,
        }],
        now,
    };
    (ledger, noted)
}

#[test]
fn a_noted_hold_within_its_settling_time_is_waiting_not_a_difference() {
    let (ledger, noted) = noted_hold(at() + chrono::Duration::minutes(10), at());
    let found = reconcile(&[stream()], &view(), Some(&ledger), &noted);
    assert_eq!(found.differences, vec![]);
    assert_eq!(
        found.waiting,
        vec![WaitingHold {
            account: customer().to_string(),
            payment_id: "new-hold".into(),
            key: "k-new".into(),
            amount_kopecks: 400,
            state: "noted".into(),
            settles_at: at() + chrono::Duration::minutes(10),
        }]
    );
    assert_eq!(
        found.result_line(),
        "result: audit=money accounts=1 differences=0 waiting=1"
    );
}

#[test]
fn a_noted_hold_past_its_settling_time_is_a_difference() {
    let due = at() + chrono::Duration::minutes(10);
    let (ledger, noted) = noted_hold(due, due + SETTLE_SLACK + chrono::Duration::seconds(1));
    let found = reconcile(&[stream()], &view(), Some(&ledger), &noted);
    assert_eq!(found.waiting, vec![]);
    let fields: Vec<(&str, Option<i64>, Option<i64>)> = found
        .differences
        .iter()
        .map(|d| (d.field.as_str(), d.events, d.gateway))
        .collect();
    assert_eq!(fields, vec![("held_kopecks (gateway)", Some(0), Some(400))]);
}

#[test]
fn a_noted_hold_being_released_is_waiting_as_releasing() {
    let mut with_abandon = stream();
    with_abandon.events.push((
        EventRef {
            position: 7,
            stream_version: 7,
            event_id: Uuid::from_u128(7),
            event_type: "HoldAbandoned".into(),
            amount_kopecks: Some(400),
            charge_id: None,
            payment_id: None,
        },
        AccountEvent::HoldAbandoned {
            key: "k-new".into(),
            payment_id: None,
            trip_id: None,
            amount_kopecks: Kopecks(400),
            reason: domain::account::AbandonReason::StartRefused,
            abandoned_at: at(),
        },
    ));
    let mut views = view();
    if let Some(view) = views.values_mut().next() {
        view.stream_version = 7;
    }
    let (ledger, noted) = noted_hold(at(), at());
    let found = reconcile(&[with_abandon], &views, Some(&ledger), &noted);
    assert_eq!(found.differences, vec![]);
    assert_eq!(found.waiting.len(), 1);
    assert_eq!(found.waiting[0].state, "releasing");
}
