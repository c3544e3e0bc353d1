//! Money reconciliation (`velka audit money`, `GET /v1/audit/money`): every account recomputed
//! from its events alone, compared with the accounts read model and with the payment gateway's
//! own ledger, each difference named with the account, the field, the three values and the
//! events that make up the event-side figure.
//!
//! Three witnesses:
//!
//! - **the events**: each `account-…` stream folded with the domain's own evolve
//!   ([`domain::account::Account`]), giving per account and per charge what was charged,
//!   refunded, waived, paid (captured − returned to the card) and the balance, and which holds
//!   are still open;
//! - **the read model**: `accounts_view`, `account_charges_view` and the refunds and waivers in
//!   `account_adjustments_view`. A read model row says which stream version it reflects, so it
//!   is compared with the fold *at that version*: a projector that is merely behind is reported
//!   as lagging, not as wrong;
//! - **the gateway**: its ledger (`GET /control/ledger` of the simulator, the same shape a real
//!   acquirer's statement is turned into): per payment, what was captured and refunded. A
//!   payment belongs to the account whose events name its payment id, or else to the customer
//!   it was made for (`customer_ref`). Per account, what the gateway kept must equal what the
//!   events say was paid, and the holds still waiting for capture must be the holds the events
//!   leave open.
//!
//! A hold the gateway keeps that the events do not is not always wrong: a start that has just
//! asked for it (its intent noted, its append not yet made), a hold whose start was refused and
//! is being let go. Velka notes every hold before asking (`payments::intents`); a gateway hold
//! whose key is noted and not yet due is reported apart, as **waiting** (with when it will be
//! settled), not as a difference, so a reconciliation during normal operation is not a false
//! alarm. Once its settling time (plus [`SETTLE_SLACK`]) has passed, the same hold is a
//! difference.
//!
//! The invariant behind it, per customer: `charged − refunded = paid + open + waived`, which the
//! event fold satisfies by construction; the reconciliation checks that the other two witnesses
//! say the same. Reading the database happens in one repeatable-read snapshot, so the read model
//! and the events are seen at one instant; the gateway is read just before. A gateway operation
//! in flight (done at the gateway, its fact not yet recorded) shows as a difference that is gone
//! on a rerun once the payment saga is idle.

use crate::record;
use chrono::{DateTime, Utc};
use domain::Decider;
use domain::account::{Account, AccountEvent, AccountId, AccountState};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// `AuditMoneyReconciled`: who reconciled, how many accounts, how many differences.
pub const MONEY_RECONCILED: &str = "AuditMoneyReconciled";

/// What can go wrong reconciling.
#[derive(Debug, thiserror::Error)]
pub enum MoneyError {
    /// A query failed.
    #[error("reading accounts failed: {0}")]
    Database(#[from] sqlx::Error),
    /// An event in an account stream is not an account event Velka can read.
    #[error(
        "event at position {position} ({event_type}) of {stream_id} is not a readable account event: {reason}"
    )]
    Decode {
        position: i64,
        stream_id: String,
        event_type: String,
        reason: String,
    },
    /// The gateway did not answer with its ledger.
    #[error("the payment gateway's ledger could not be read from {url}: {reason}")]
    Gateway { url: String, reason: String },
    /// Recording the reconciliation as an auditor action failed.
    #[error("recording the reconciliation failed: {0}")]
    Record(#[from] event_store::AppendError),
}

/// One event that makes up a figure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventRef {
    /// Its position in the log.
    pub position: i64,
    /// Its version in the account stream.
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    /// The amount it carries, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_kopecks: Option<i64>,
    /// The charge it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge_id: Option<Uuid>,
    /// The gateway payment it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

/// One account stream, its events in version order with where they are.
#[derive(Clone, Debug)]
pub struct AccountStream {
    pub account_id: AccountId,
    pub events: Vec<(EventRef, AccountEvent)>,
}

/// A charge as the read model shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewCharge {
    pub amount_kopecks: i64,
    pub refunded_kopecks: i64,
    pub waived_kopecks: i64,
    pub paid_kopecks: i64,
    /// The sum of its rows in `account_adjustments_view` of kind `refund`.
    pub adjustments_refunded_kopecks: i64,
    /// The sum of its rows in `account_adjustments_view` of kind `waiver`.
    pub adjustments_waived_kopecks: i64,
}

/// An account as the read model shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewAccount {
    pub charged_kopecks: i64,
    pub refunded_kopecks: i64,
    pub waived_kopecks: i64,
    pub paid_kopecks: i64,
    /// The balance (charged − refunded − waived − paid).
    pub open_kopecks: i64,
    /// The stream version the row reflects.
    pub stream_version: i64,
    pub charges: BTreeMap<Uuid, ViewCharge>,
}

/// How long after its settling time a noted hold still counts as waiting (the sweeper polls
/// every second; a gateway that does not answer for longer makes it a difference).
pub const SETTLE_SLACK: chrono::Duration = chrono::Duration::seconds(60);

/// A hold Velka noted before asking the gateway for it (`hold_intents`), still pending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotedHold {
    pub hold_key: String,
    pub customer_id: Uuid,
    pub amount_kopecks: i64,
    /// When it is let go unless a trip takes it (now, for a hold being released).
    pub release_from: DateTime<Utc>,
}

/// The noted holds, and the time their settling is judged at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotedHolds {
    pub holds: Vec<NotedHold>,
    pub now: DateTime<Utc>,
}

/// A hold the gateway keeps that the events do not, known and to be settled: not a difference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WaitingHold {
    /// `customer:<uuid>`.
    pub account: String,
    pub payment_id: String,
    pub key: String,
    pub amount_kopecks: i64,
    /// `noted` (its start may still take it) or `releasing` (abandoned, being cancelled).
    pub state: String,
    /// When it is let go unless a trip takes it.
    pub settles_at: DateTime<Utc>,
}

/// A payment in the gateway's ledger.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct LedgerPayment {
    pub id: String,
    /// `waiting_for_capture`, `succeeded`, `canceled`.
    pub status: String,
    pub amount_kopecks: i64,
    #[serde(default)]
    pub captured_kopecks: i64,
    #[serde(default)]
    pub refunded_kopecks: i64,
    /// Who it was made for (Velka sends the customer id).
    #[serde(default)]
    pub customer_ref: String,
}

/// An idempotence key in the gateway's ledger and what it created.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct LedgerKey {
    pub key: String,
    #[serde(default)]
    pub created: Vec<String>,
}

/// The gateway's ledger: `GET /control/ledger`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct GatewayLedger {
    pub payments: Vec<LedgerPayment>,
    #[serde(default)]
    pub idempotence_keys: Vec<LedgerKey>,
}

/// A gateway payment that does not agree with the events, named in a difference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GatewayPaymentNote {
    pub payment_id: String,
    /// The idempotence key that created it, if the ledger says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub status: String,
    /// What the gateway kept of it (captured − refunded) or, for the `held_kopecks` field,
    /// what it holds.
    pub gateway_kopecks: i64,
    /// What the events recorded for it.
    pub events_kopecks: i64,
}

/// One disagreement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Difference {
    /// `customer:<uuid>` or `company:<uuid>`.
    pub account: String,
    /// The account's field (`paid_kopecks`), or a charge's (`charge <uuid> refunded_kopecks`).
    pub field: String,
    /// The figure from the events (absent: the events know no such thing).
    pub events: Option<i64>,
    /// The figure in the read model (absent: no row, or the read model does not keep it).
    pub read_model: Option<i64>,
    /// The figure at the gateway (absent: not compared with the gateway).
    pub gateway: Option<i64>,
    /// The events that make up the event-side figure.
    pub explained_by: Vec<EventRef>,
    /// Gateway payments that disagree with the events, for gateway fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateway_payments: Vec<GatewayPaymentNote>,
}

/// A read model row behind its stream: compared at its own version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Lag {
    pub account: String,
    pub read_model_version: i64,
    pub stream_version: i64,
}

/// What a reconciliation found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    /// Accounts looked at (in the events, the read model or the gateway).
    pub accounts: usize,
    /// Account events folded.
    pub events: usize,
    /// Whether the gateway's ledger was part of it.
    pub gateway_checked: bool,
    pub differences: Vec<Difference>,
    pub lagging: Vec<Lag>,
    /// Gateway holds the events do not show yet, noted by Velka and within their settling time.
    pub waiting: Vec<WaitingHold>,
}

impl Reconciliation {
    /// The machine-readable last line:
    /// `result: audit=money accounts=N differences=M waiting=W`.
    pub fn result_line(&self) -> String {
        format!(
            "result: audit=money accounts={} differences={} waiting={}",
            self.accounts,
            self.differences.len(),
            self.waiting.len()
        )
    }
}

/// An account's figures from its events up to some version.
#[derive(Debug, Default)]
struct Fold {
    state: AccountState,
    refs: Vec<EventRef>,
    version: i64,
}

impl Fold {
    fn of(stream: &AccountStream, up_to: Option<i64>) -> Fold {
        let mut fold = Fold::default();
        for (at, event) in &stream.events {
            if up_to.is_some_and(|limit| at.stream_version > limit) {
                break;
            }
            fold.state = Account::evolve(std::mem::take(&mut fold.state), event);
            fold.refs.push(at.clone());
            fold.version = at.stream_version;
        }
        fold
    }

    /// The events of the given types, about `charge` if given.
    fn refs(&self, types: &[&str], charge: Option<Uuid>) -> Vec<EventRef> {
        self.refs
            .iter()
            .filter(|r| types.contains(&r.event_type.as_str()))
            .filter(|r| charge.is_none() || r.charge_id == charge)
            .cloned()
            .collect()
    }
}

const CHARGED: &[&str] = &["ChargeAdded"];
const REFUNDED: &[&str] = &["ChargeRefunded"];
const WAIVED: &[&str] = &["ChargeWaived"];
const PAID: &[&str] = &["PaymentCaptured", "PaymentRefunded"];
const BALANCE: &[&str] = &[
    "ChargeAdded",
    "ChargeRefunded",
    "ChargeWaived",
    "PaymentCaptured",
    "PaymentRefunded",
];
const HOLDS: &[&str] = &["PaymentHeld", "HoldReleased", "PaymentCaptured"];

/// Compares the three witnesses. Pure: everything it needs is in its arguments.
pub fn reconcile(
    streams: &[AccountStream],
    views: &BTreeMap<String, ViewAccount>,
    ledger: Option<&GatewayLedger>,
    noted: &NotedHolds,
) -> Reconciliation {
    let mut differences = Vec::new();
    let mut waiting = Vec::new();
    let mut lagging = Vec::new();
    let mut accounts: BTreeSet<String> = views.keys().cloned().collect();
    let mut heads: BTreeMap<String, Fold> = BTreeMap::new();
    for stream in streams {
        let account = stream.account_id.to_string();
        accounts.insert(account.clone());
        let head = Fold::of(stream, None);
        match views.get(&account) {
            None => {
                let totals = head.state.totals();
                differences.push(Difference {
                    account: account.clone(),
                    field: "accounts_view row".to_owned(),
                    events: Some(totals.charged_kopecks.get()),
                    read_model: None,
                    gateway: None,
                    explained_by: head.refs.clone(),
                    gateway_payments: Vec::new(),
                });
            }
            Some(view) => {
                if view.stream_version > head.version {
                    differences.push(Difference {
                        account: account.clone(),
                        field: "stream_version".to_owned(),
                        events: Some(head.version),
                        read_model: Some(view.stream_version),
                        gateway: None,
                        explained_by: head.refs.last().cloned().into_iter().collect(),
                        gateway_payments: Vec::new(),
                    });
                } else if view.stream_version < head.version {
                    lagging.push(Lag {
                        account: account.clone(),
                        read_model_version: view.stream_version,
                        stream_version: head.version,
                    });
                }
                let at_view = Fold::of(stream, Some(view.stream_version));
                compare_view(&account, &at_view, view, &mut differences);
            }
        }
        heads.insert(account, head);
    }
    for (account, view) in views {
        if !heads.contains_key(account) {
            differences.push(Difference {
                account: account.clone(),
                field: "account stream".to_owned(),
                events: None,
                read_model: Some(view.charged_kopecks),
                gateway: None,
                explained_by: Vec::new(),
                gateway_payments: Vec::new(),
            });
        }
    }
    if let Some(ledger) = ledger {
        compare_gateway(
            ledger,
            &heads,
            noted,
            &mut accounts,
            &mut differences,
            &mut waiting,
        );
    }
    Reconciliation {
        accounts: accounts.len(),
        events: streams.iter().map(|s| s.events.len()).sum(),
        gateway_checked: ledger.is_some(),
        differences,
        lagging,
        waiting,
    }
}

fn compare_view(account: &str, fold: &Fold, view: &ViewAccount, out: &mut Vec<Difference>) {
    let totals = fold.state.totals();
    let mut field = |field: String, events: Option<i64>, read_model: Option<i64>, refs| {
        if events != read_model {
            out.push(Difference {
                account: account.to_owned(),
                field,
                events,
                read_model,
                gateway: None,
                explained_by: refs,
                gateway_payments: Vec::new(),
            });
        }
    };
    let account_fields: [(&str, i64, i64, &[&str]); 5] = [
        (
            "charged_kopecks",
            totals.charged_kopecks.get(),
            view.charged_kopecks,
            CHARGED,
        ),
        (
            "refunded_kopecks",
            totals.refunded_kopecks.get(),
            view.refunded_kopecks,
            REFUNDED,
        ),
        (
            "waived_kopecks",
            totals.waived_kopecks.get(),
            view.waived_kopecks,
            WAIVED,
        ),
        (
            "paid_kopecks",
            totals.paid_kopecks.get(),
            view.paid_kopecks,
            PAID,
        ),
        (
            "open_kopecks",
            totals.balance_kopecks.get(),
            view.open_kopecks,
            BALANCE,
        ),
    ];
    for (name, events, read_model, types) in account_fields {
        if events != read_model {
            field(
                name.to_owned(),
                Some(events),
                Some(read_model),
                fold.refs(types, None),
            );
        }
    }
    for (charge_id, charge) in &fold.state.charges {
        let id = charge_id.0;
        let Some(row) = view.charges.get(&id) else {
            field(
                format!("charge {id}"),
                Some(charge.amount_kopecks.get()),
                None,
                fold.refs(BALANCE, Some(id)),
            );
            continue;
        };
        let charge_fields: [(&str, i64, i64, &[&str]); 6] = [
            (
                "amount_kopecks",
                charge.amount_kopecks.get(),
                row.amount_kopecks,
                CHARGED,
            ),
            (
                "refunded_kopecks",
                charge.refunded_kopecks.get(),
                row.refunded_kopecks,
                REFUNDED,
            ),
            (
                "waived_kopecks",
                charge.waived_kopecks.get(),
                row.waived_kopecks,
                WAIVED,
            ),
            (
                "paid_kopecks",
                charge.paid_kopecks().get(),
                row.paid_kopecks,
                PAID,
            ),
            (
                "refunds in account_adjustments_view",
                charge.refunded_kopecks.get(),
                row.adjustments_refunded_kopecks,
                REFUNDED,
            ),
            (
                "waivers in account_adjustments_view",
                charge.waived_kopecks.get(),
                row.adjustments_waived_kopecks,
                WAIVED,
            ),
        ];
        for (name, events, read_model, types) in charge_fields {
            if events != read_model {
                field(
                    format!("charge {id} {name}"),
                    Some(events),
                    Some(read_model),
                    fold.refs(types, Some(id)),
                );
            }
        }
    }
    for (id, row) in &view.charges {
        if !fold
            .state
            .charges
            .contains_key(&domain::account::ChargeId(*id))
        {
            field(
                format!("charge {id}"),
                None,
                Some(row.amount_kopecks),
                Vec::new(),
            );
        }
    }
}

/// What the events recorded per gateway payment: kept (captured − returned) and held open.
#[derive(Debug, Default)]
struct Recorded {
    kept: i64,
    held: i64,
}

fn compare_gateway(
    ledger: &GatewayLedger,
    heads: &BTreeMap<String, Fold>,
    noted: &NotedHolds,
    accounts: &mut BTreeSet<String>,
    out: &mut Vec<Difference>,
    waiting: &mut Vec<WaitingHold>,
) {
    // Which account each payment id belongs to, and what the events say of it.
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    let mut recorded: BTreeMap<&str, Recorded> = BTreeMap::new();
    for (account, fold) in heads {
        for r in &fold.refs {
            if let Some(payment_id) = &r.payment_id {
                owner.insert(payment_id, account);
                let entry = recorded.entry(payment_id).or_default();
                match r.event_type.as_str() {
                    "PaymentCaptured" => entry.kept += r.amount_kopecks.unwrap_or(0),
                    "PaymentRefunded" => entry.kept -= r.amount_kopecks.unwrap_or(0),
                    _ => {}
                }
            }
        }
        for hold in fold.state.holds.values().filter(|h| !h.closed) {
            recorded.entry(&hold.payment_id).or_default().held += hold.amount_kopecks.get();
        }
    }
    let key_of: BTreeMap<&str, &str> = ledger
        .idempotence_keys
        .iter()
        .flat_map(|k| {
            k.created
                .iter()
                .map(move |id| (id.as_str(), k.key.as_str()))
        })
        .collect();
    let noted_by_key: BTreeMap<&str, &NotedHold> = noted
        .holds
        .iter()
        .map(|hold| (hold.hold_key.as_str(), hold))
        .collect();
    // Per account: (kept, held) at the gateway, and its payments.
    let mut at_gateway: BTreeMap<String, (i64, i64, Vec<&LedgerPayment>)> = BTreeMap::new();
    for payment in &ledger.payments {
        let account = match owner.get(payment.id.as_str()) {
            Some(account) => (*account).to_owned(),
            None => match Uuid::parse_str(&payment.customer_ref) {
                Ok(customer) => AccountId::Customer(domain::ids::CustomerId(customer)).to_string(),
                Err(_) => format!("customer_ref:{}", payment.customer_ref),
            },
        };
        // A hold the events do not keep open, noted by Velka and not yet due: waiting.
        let open_in_events = recorded
            .get(payment.id.as_str())
            .is_some_and(|r| r.held > 0);
        let key = key_of.get(payment.id.as_str()).copied();
        let noted_hold = key.and_then(|key| noted_by_key.get(key));
        if payment.status == "waiting_for_capture"
            && !open_in_events
            && let (Some(key), Some(hold)) = (key, noted_hold)
            && noted.now <= hold.release_from + SETTLE_SLACK
        {
            let abandoned = heads
                .get(&account)
                .is_some_and(|fold| fold.state.abandoned_holds.contains(key));
            waiting.push(WaitingHold {
                account: account.clone(),
                payment_id: payment.id.clone(),
                key: key.to_owned(),
                amount_kopecks: payment.amount_kopecks,
                state: if abandoned { "releasing" } else { "noted" }.to_owned(),
                settles_at: hold.release_from,
            });
            at_gateway.entry(account).or_default().2.push(payment);
            continue;
        }
        let entry = at_gateway.entry(account).or_default();
        entry.0 += payment.captured_kopecks - payment.refunded_kopecks;
        if payment.status == "waiting_for_capture" {
            entry.1 += payment.amount_kopecks;
        }
        entry.2.push(payment);
    }
    let mut all: BTreeSet<String> = heads
        .iter()
        .filter(|(account, _)| account.starts_with("customer:"))
        .map(|(account, _)| account.clone())
        .collect();
    all.extend(at_gateway.keys().cloned());
    let empty = Fold::default();
    for account in all {
        accounts.insert(account.clone());
        let fold = heads.get(&account).unwrap_or(&empty);
        let (kept, held, payments) = at_gateway
            .get(&account)
            .map(|(k, h, p)| (*k, *h, p.as_slice()))
            .unwrap_or((0, 0, &[]));
        let totals = fold.state.totals();
        let events_held: i64 = fold
            .state
            .holds
            .values()
            .filter(|h| !h.closed)
            .map(|h| h.amount_kopecks.get())
            .sum();
        let note = |payment: &LedgerPayment, gateway: i64, events: i64| GatewayPaymentNote {
            payment_id: payment.id.clone(),
            key: key_of.get(payment.id.as_str()).map(|k| (*k).to_owned()),
            status: payment.status.clone(),
            gateway_kopecks: gateway,
            events_kopecks: events,
        };
        if totals.paid_kopecks.get() != kept {
            let notes = payments
                .iter()
                .filter_map(|p| {
                    let gateway = p.captured_kopecks - p.refunded_kopecks;
                    let events = recorded.get(p.id.as_str()).map_or(0, |r| r.kept);
                    (gateway != events).then(|| note(p, gateway, events))
                })
                .collect();
            out.push(Difference {
                account: account.clone(),
                field: "paid_kopecks (gateway)".to_owned(),
                events: Some(totals.paid_kopecks.get()),
                read_model: None,
                gateway: Some(kept),
                explained_by: fold.refs(PAID, None),
                gateway_payments: notes,
            });
        }
        if events_held != held {
            let notes = payments
                .iter()
                .filter_map(|p| {
                    let waits = waiting.iter().any(|w| w.payment_id == p.id);
                    let gateway = if p.status == "waiting_for_capture" && !waits {
                        p.amount_kopecks
                    } else {
                        0
                    };
                    let events = recorded.get(p.id.as_str()).map_or(0, |r| r.held);
                    (gateway != events).then(|| note(p, gateway, events))
                })
                .collect();
            out.push(Difference {
                account: account.clone(),
                field: "held_kopecks (gateway)".to_owned(),
                events: Some(events_held),
                read_model: None,
                gateway: Some(held),
                explained_by: fold.refs(HOLDS, None),
                gateway_payments: notes,
            });
        }
    }
}

/// Where an account event is, with what it carries.
fn event_ref(
    position: i64,
    stream_version: i64,
    event_id: Uuid,
    event_type: &str,
    event: &AccountEvent,
) -> EventRef {
    let (amount, charge, payment) = match event {
        AccountEvent::ChargeAdded {
            charge_id,
            amount_kopecks,
            ..
        }
        | AccountEvent::ChargeRefunded {
            charge_id,
            amount_kopecks,
            ..
        }
        | AccountEvent::ChargeWaived {
            charge_id,
            amount_kopecks,
            ..
        }
        | AccountEvent::DebtHandedToAgency {
            charge_id,
            amount_kopecks,
            ..
        } => (Some(amount_kopecks.get()), Some(charge_id.0), None),
        AccountEvent::PaymentCaptured {
            charge_id,
            payment_id,
            amount_kopecks,
            ..
        }
        | AccountEvent::PaymentRefunded {
            charge_id,
            payment_id,
            amount_kopecks,
            ..
        } => (
            Some(amount_kopecks.get()),
            Some(charge_id.0),
            Some(payment_id.clone()),
        ),
        AccountEvent::PaymentHeld {
            payment_id,
            amount_kopecks,
            ..
        } => (Some(amount_kopecks.get()), None, Some(payment_id.clone())),
        AccountEvent::HoldReleased { payment_id, .. } => (None, None, Some(payment_id.clone())),
        AccountEvent::HoldAbandoned {
            payment_id,
            amount_kopecks,
            ..
        } => (Some(amount_kopecks.get()), None, payment_id.clone()),
        AccountEvent::PaymentFailed { charge_id, .. }
        | AccountEvent::DebtNoticeSent { charge_id, .. } => (None, Some(charge_id.0), None),
    };
    EventRef {
        position,
        stream_version,
        event_id,
        event_type: event_type.to_owned(),
        amount_kopecks: amount,
        charge_id: charge,
        payment_id: payment,
    }
}

/// Reads the account streams and the read model in one repeatable-read snapshot.
pub async fn read(
    pool: &sqlx::PgPool,
) -> Result<(Vec<AccountStream>, BTreeMap<String, ViewAccount>), MoneyError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut views: BTreeMap<String, ViewAccount> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT account_id, charged_kopecks, refunded_kopecks, waived_kopecks, paid_kopecks,
                open_kopecks, stream_version
         FROM accounts_view",
    )
    .fetch_all(&mut *tx)
    .await?
    {
        views.insert(
            row.try_get("account_id")?,
            ViewAccount {
                charged_kopecks: row.try_get("charged_kopecks")?,
                refunded_kopecks: row.try_get("refunded_kopecks")?,
                waived_kopecks: row.try_get("waived_kopecks")?,
                paid_kopecks: row.try_get("paid_kopecks")?,
                open_kopecks: row.try_get("open_kopecks")?,
                stream_version: row.try_get("stream_version")?,
                charges: BTreeMap::new(),
            },
        );
    }
    let mut orphans: Vec<(String, Uuid, ViewCharge)> = Vec::new();
    for row in sqlx::query(
        "SELECT c.charge_id, c.account_id, c.amount_kopecks, c.refunded_kopecks,
                c.waived_kopecks, c.paid_kopecks,
                coalesce(sum(a.amount_kopecks) FILTER (WHERE a.kind = 'refund'), 0)::bigint
                    AS adjustments_refunded,
                coalesce(sum(a.amount_kopecks) FILTER (WHERE a.kind = 'waiver'), 0)::bigint
                    AS adjustments_waived
         FROM account_charges_view c
         LEFT JOIN account_adjustments_view a ON a.charge_id = c.charge_id
         GROUP BY c.charge_id",
    )
    .fetch_all(&mut *tx)
    .await?
    {
        let account: String = row.try_get("account_id")?;
        let charge_id: Uuid = row.try_get("charge_id")?;
        let charge = ViewCharge {
            amount_kopecks: row.try_get("amount_kopecks")?,
            refunded_kopecks: row.try_get("refunded_kopecks")?,
            waived_kopecks: row.try_get("waived_kopecks")?,
            paid_kopecks: row.try_get("paid_kopecks")?,
            adjustments_refunded_kopecks: row.try_get("adjustments_refunded")?,
            adjustments_waived_kopecks: row.try_get("adjustments_waived")?,
        };
        match views.get_mut(&account) {
            Some(view) => {
                view.charges.insert(charge_id, charge);
            }
            None => orphans.push((account, charge_id, charge)),
        }
    }
    // A charge row whose account row is gone still belongs to that account.
    for (account, charge_id, charge) in orphans {
        views
            .entry(account)
            .or_default()
            .charges
            .insert(charge_id, charge);
    }
    let rows = sqlx::query(
        "SELECT position, stream_id, stream_version, event_id, event_type, schema_version, data
         FROM events WHERE category = 'account' ORDER BY stream_id, stream_version",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut streams: Vec<AccountStream> = Vec::new();
    for row in rows {
        let position: i64 = row.try_get("position")?;
        let stream_id: String = row.try_get("stream_id")?;
        let event_type: String = row.try_get("event_type")?;
        let undecodable = |reason: String| MoneyError::Decode {
            position,
            stream_id: stream_id.clone(),
            event_type: event_type.clone(),
            reason,
        };
        let account_id = AccountId::from_stream_id(&stream_id)
            .ok_or_else(|| undecodable("not an account stream id".to_owned()))?;
        let schema_version: i32 = row.try_get("schema_version")?;
        let event: AccountEvent = domain::decider::decode(
            &event_type,
            u32::try_from(schema_version).unwrap_or(0),
            row.try_get("data")?,
        )
        .map_err(|e| undecodable(e.to_string()))?;
        let at = event_ref(
            position,
            row.try_get("stream_version")?,
            row.try_get("event_id")?,
            &event_type,
            &event,
        );
        match streams.last_mut() {
            Some(stream) if stream.account_id == account_id => stream.events.push((at, event)),
            _ => streams.push(AccountStream {
                account_id,
                events: vec![(at, event)],
            }),
        }
    }
    Ok((streams, views))
}

/// Reads the gateway's ledger from `base_url` (`GET /control/ledger`).
pub async fn fetch_ledger(base_url: &str) -> Result<GatewayLedger, MoneyError> {
    let url = format!("{}/control/ledger", base_url.trim_end_matches('/'));
    let failed = |reason: String| MoneyError::Gateway {
        url: url.clone(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let answer = client
        .get(&url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !answer.status().is_success() {
        return Err(failed(format!("answered {}", answer.status())));
    }
    answer
        .json::<GatewayLedger>()
        .await
        .map_err(|e| failed(e.to_string()))
}

/// The holds Velka noted and has not settled, or let go just now (`hold_intents`, through the
/// `payments` crate): read after the gateway's ledger, a hold cancelled in between still shows
/// held there.
pub async fn noted_holds(
    pool: &sqlx::PgPool,
    now: DateTime<Utc>,
) -> Result<NotedHolds, MoneyError> {
    let holds = payments::intents::unsettled(pool, now - SETTLE_SLACK)
        .await?
        .into_iter()
        .map(|intent| NotedHold {
            hold_key: intent.hold_key,
            customer_id: intent.customer_id,
            amount_kopecks: intent.amount_kopecks,
            release_from: intent.released_at.unwrap_or(intent.release_from),
        })
        .collect();
    Ok(NotedHolds { holds, now })
}

/// Reconciles the database (and the gateway at `gateway_url`, if given) and records the run as
/// `AuditMoneyReconciled` on `audit-log`, by `actor`, at `now` (which also judges whether a
/// noted hold is still waiting).
pub async fn run(
    store: &event_store::EventStore,
    pool: &sqlx::PgPool,
    gateway_url: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Reconciliation, MoneyError> {
    let ledger = match gateway_url {
        Some(url) => Some(fetch_ledger(url).await?),
        None => None,
    };
    let noted = noted_holds(pool, now).await?;
    let (streams, views) = read(pool).await?;
    let reconciliation = reconcile(&streams, &views, ledger.as_ref(), &noted);
    record::append(
        store,
        record::AUDIT_LOG_STREAM,
        MONEY_RECONCILED,
        serde_json::json!({
            "by": actor,
            "accounts": reconciliation.accounts,
            "events": reconciliation.events,
            "gateway_checked": reconciliation.gateway_checked,
            "differences": reconciliation.differences.len(),
            "lagging": reconciliation.lagging.len(),
            "waiting": reconciliation.waiting.len(),
            "fields": reconciliation
                .differences
                .iter()
                .map(|d| format!("{} {}", d.account, d.field))
                .collect::<Vec<_>>(),
        }),
        actor,
        now,
    )
    .await?;
    Ok(reconciliation)
}

#[cfg(test)]
mod tests;
