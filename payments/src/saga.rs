//! The payment saga: makes every charge on a customer's account paid, and collects what is not.
//!
//! One instance per customer account (`account-<customer>`; a company's account is invoiced,
//! not charged to a card, and is left alone). It reacts to the account's events and to the
//! customer's trips ending, and keeps, per charge, how much is owed and which gateway operation
//! is in flight. After every event it *plans*: for each charge with nothing in flight,
//!
//! - a trip price is **captured from the trip's hold** (up to the hold; the gateway releases the
//!   rest of it), and whatever the hold did not cover is **charged separately**;
//! - any other charge (paid waiting, a fine and its fee, a penalty) is **charged** at once;
//! - a hold whose trip ended owing nothing (or whose capture failed) is **released**;
//! - money a refund says must go back is **refunded** to the card, payment by payment.
//!
//! Gateway operations are typed outbox commands ([`crate::operation::GatewayOperation`]); the
//! binary's sink has [`crate::operation::perform`] do them over HTTP with the operation's `key`
//! as the `Idempotence-Key` and records the answer on the account (`record_payment`), which
//! brings it back here as an event. A timeout is retried with the same key, so the gateway
//! answers the first attempt instead of charging again. Amounts are the domain's
//! [`Kopecks`].
//!
//! # Debt collection
//!
//! A refused payment opens a **debt** on the charge: the customer is blocked (reason `debt`) and
//! told so, and durable timers retry the payment after 1 hour, 1 day, 3 days and 7 days (each
//! retry a new payment under a new key, each failure a reminder), and hand the debt to a
//! collection agency after 30 days. Whenever the charge stops being owed — a retry succeeds,
//! support waives or refunds it — the debt closes, its timers are cancelled, the customer is
//! told, and once no debt is left the block is lifted.
//!
//! Times come from the events and timers (business time), never from a clock: the saga is pure.

use crate::operation::{
    Cancel, Capture, Charge, GatewayOperation, PaymentCommand, RecordPayment, Refund,
};
use chrono::{DateTime, Duration, Utc};
use domain::account::{
    AccountEvent, AccountId, ChargeId, ChargeReason, ChargeSource, DebtNotice, PaymentFact,
};
use domain::ids::{CustomerId, TripId};
use domain::money::Kopecks;
use domain::trip::TripEvent;
use event_store::RecordedEvent;
use sagas::{FiredTimer, Reaction, ReactionError, Saga};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// When a debt's payment is retried, counted from the first failure.
pub const RETRY_AFTER: [Duration; 4] = [
    Duration::hours(1),
    Duration::days(1),
    Duration::days(3),
    Duration::days(7),
];

/// When an unpaid debt goes to a collection agency, counted from the first failure.
pub const AGENCY_AFTER: Duration = Duration::days(30);

/// The saga's name: its checkpoint, instances, timers and commands.
pub const NAME: &str = "payments";

/// The payment saga.
#[derive(Debug, Default)]
pub struct PaymentSaga;

/// One customer account as the saga sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PaymentsState {
    /// The customer whose account this is.
    pub customer_id: Option<CustomerId>,
    /// Charges by id.
    pub charges: BTreeMap<ChargeId, ChargeProgress>,
    /// Holds by trip.
    pub holds: BTreeMap<TripId, HoldProgress>,
    /// Whether the saga has put a `debt` block on the customer (and not lifted it).
    pub blocked: bool,
}

/// A charge's money as the saga tracks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChargeProgress {
    pub reason: Option<ChargeReason>,
    /// The trip whose price it is.
    pub trip_id: Option<TripId>,
    pub amount: Kopecks,
    pub refunded: Kopecks,
    pub waived: Kopecks,
    /// Kept per gateway payment: captured − returned.
    pub kept: BTreeMap<String, Kopecks>,
    /// The key of the gateway operation in flight, if any.
    pub in_flight: Option<String>,
    /// Separate payments tried so far (numbers their keys).
    pub attempts: u32,
    /// Refunds to the card made so far (numbers their keys).
    pub returns: u32,
    /// The open debt, if a payment was refused and the charge is still owed.
    pub debt: Option<Debt>,
}

impl ChargeProgress {
    fn paid(&self) -> Kopecks {
        self.kept.values().copied().sum()
    }

    /// Positive: owed; negative: to give back.
    pub fn balance(&self) -> Kopecks {
        self.amount - self.refunded - self.waived - self.paid()
    }
}

/// An open debt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Debt {
    /// When the first payment was refused.
    pub since: DateTime<Utc>,
    /// Reminders sent (one per refused retry).
    pub reminders: u32,
    /// Whether it went to the agency.
    pub with_agency: bool,
}

/// A hold on the customer's card for a trip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldProgress {
    pub payment_id: String,
    pub amount: Kopecks,
    /// Captured or released.
    pub closed: bool,
    /// The key of the capture or release in flight.
    pub in_flight: Option<String>,
    /// The trip ended (its price, if any, is a charge).
    pub trip_ended: bool,
    /// The trip ended with a price: its charge is coming (in the same append as the end).
    pub priced: bool,
    /// Capturing from it was refused: release it.
    pub capture_refused: bool,
}

fn decode<E: domain::DomainEvent>(event: &RecordedEvent) -> Result<E, ReactionError> {
    domain::decider::decode_ref(&event.event_type, event.schema_version, &event.data)
        .map_err(|e| ReactionError::new(format!("{} does not decode: {e}", event.event_type)))
}

fn timer_retry(charge_id: ChargeId, n: usize) -> String {
    format!("retry:{charge_id}:{n}")
}

fn timer_agency(charge_id: ChargeId) -> String {
    format!("agency:{charge_id}")
}

impl Saga for PaymentSaga {
    type State = PaymentsState;

    fn name(&self) -> &'static str {
        NAME
    }

    fn categories(&self) -> &'static [&'static str] {
        &["account", "trip"]
    }

    fn instance_of(&self, event: &RecordedEvent) -> Option<String> {
        match event.category() {
            "account" => match AccountId::from_stream_id(&event.stream_id)? {
                AccountId::Customer(_) => Some(event.stream_id.clone()),
                AccountId::Company(_) => None,
            },
            "trip" if event.event_type == "TripEnded" => {
                let customer = event.data.get("customer_id")?.as_str()?;
                Some(format!("account-{customer}"))
            }
            _ => None,
        }
    }

    fn react(
        &self,
        state: Option<PaymentsState>,
        event: &RecordedEvent,
    ) -> Result<Reaction<PaymentsState>, ReactionError> {
        let mut state = state.unwrap_or_default();
        let mut out = Effects::default();
        if event.category() == "trip" {
            if let TripEvent::TripEnded {
                trip_id,
                customer_id,
                price,
                ..
            } = decode::<TripEvent>(event)?
            {
                state.customer_id.get_or_insert(customer_id);
                if let Some(hold) = state.holds.get_mut(&trip_id) {
                    hold.trip_ended = true;
                    hold.priced = price.total_kopecks > Kopecks::ZERO;
                }
            }
        } else {
            if state.customer_id.is_none() {
                state.customer_id = AccountId::from_stream_id(&event.stream_id)
                    .and_then(|account| account.customer());
            }
            apply(&mut state, &decode::<AccountEvent>(event)?, &mut out)?;
        }
        plan(&mut state, event.recorded_at, &mut out);
        out.into_reaction(state)
    }

    fn on_timer(
        &self,
        mut state: PaymentsState,
        timer: &FiredTimer,
    ) -> Result<Reaction<PaymentsState>, ReactionError> {
        let mut out = Effects::default();
        let mut parts = timer.name.split(':');
        let kind = parts.next().unwrap_or_default();
        let charge_id = parts
            .next()
            .and_then(|id| id.parse().ok())
            .map(ChargeId)
            .ok_or_else(|| ReactionError::new(format!("timer {:?} names no charge", timer.name)))?;
        let customer_id = state.customer_id;
        let Some(charge) = state.charges.get_mut(&charge_id) else {
            return out.into_reaction(state);
        };
        let owed = charge.balance();
        match kind {
            "retry"
                if owed > Kopecks::ZERO && charge.in_flight.is_none() && charge.debt.is_some() =>
            {
                charge.attempts += 1;
                let key = format!("{charge_id}-pay-{}", charge.attempts);
                charge.in_flight = Some(key.clone());
                out.gateway(customer_id, |account_id| {
                    GatewayOperation::Charge(Charge {
                        account_id,
                        customer_id: account_id,
                        charge_id,
                        amount_kopecks: owed,
                        key,
                        description: format!("Debt on charge {charge_id}, retry"),
                    })
                });
            }
            "agency" if owed > Kopecks::ZERO => {
                if let Some(debt) = &mut charge.debt
                    && !debt.with_agency
                {
                    debt.with_agency = true;
                    out.fact(
                        customer_id,
                        PaymentFact::HandedToAgency {
                            charge_id,
                            amount_kopecks: owed.get(),
                            key: format!("{charge_id}-agency"),
                        },
                    );
                    out.notice(
                        customer_id,
                        charge_id,
                        DebtNotice::HandedToAgency,
                        format!(
                            "Your debt of {} RUB has been handed to a collection agency.",
                            rubles(owed)
                        ),
                        format!("{charge_id}-notice-agency"),
                    );
                }
            }
            _ => {}
        }
        out.into_reaction(state)
    }
}

/// What a reaction will do, gathered while it is decided.
#[derive(Default)]
struct Effects {
    commands: Vec<PaymentCommand>,
    timers: Vec<(String, DateTime<Utc>)>,
    cancel: Vec<String>,
    /// A command that needed the account's customer before the saga knew it.
    unaddressed: bool,
}

impl Effects {
    /// A command for the customer's account, built once the customer is known.
    fn for_customer(
        &mut self,
        customer_id: Option<CustomerId>,
        command: impl FnOnce(CustomerId) -> PaymentCommand,
    ) {
        match customer_id {
            Some(customer_id) => self.commands.push(command(customer_id)),
            None => self.unaddressed = true,
        }
    }

    fn gateway(
        &mut self,
        customer_id: Option<CustomerId>,
        operation: impl FnOnce(CustomerId) -> GatewayOperation,
    ) {
        self.for_customer(customer_id, |customer| {
            PaymentCommand::Gateway(operation(customer))
        });
    }

    fn fact(&mut self, customer_id: Option<CustomerId>, fact: PaymentFact) {
        self.for_customer(customer_id, |account_id| {
            PaymentCommand::Record(RecordPayment { account_id, fact })
        });
    }

    fn notice(
        &mut self,
        customer_id: Option<CustomerId>,
        charge_id: ChargeId,
        notice: DebtNotice,
        message: String,
        key: String,
    ) {
        self.fact(
            customer_id,
            PaymentFact::NoticeSent {
                charge_id,
                notice,
                message,
                key,
            },
        );
    }

    fn into_reaction(self, state: PaymentsState) -> Result<Reaction<PaymentsState>, ReactionError> {
        if self.unaddressed {
            // Every account event names its account, so this is a history Velka did not write.
            return Err(ReactionError::new(
                "a payment command for an account whose customer is unknown",
            ));
        }
        let mut reaction = Reaction::new(state);
        for command in self.commands {
            reaction = reaction.with_command(command.name(), command.payload());
        }
        for name in self.cancel {
            reaction = reaction.cancelling(name);
        }
        for (name, due_at) in self.timers {
            reaction = reaction.with_timer(name, due_at, Value::Null);
        }
        Ok(reaction)
    }
}

fn rubles(amount: Kopecks) -> String {
    let kopecks = amount.get();
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

/// Folds an account event into the state; a refused payment opens a debt.
fn apply(
    state: &mut PaymentsState,
    event: &AccountEvent,
    out: &mut Effects,
) -> Result<(), ReactionError> {
    let customer_id = state.customer_id;
    match event {
        AccountEvent::ChargeAdded {
            charge_id,
            reason,
            source,
            amount_kopecks,
            ..
        } => {
            let trip_id = match source {
                ChargeSource::Trip { trip_id } if *reason == ChargeReason::TripPrice => {
                    Some(*trip_id)
                }
                _ => None,
            };
            state.charges.entry(*charge_id).or_insert(ChargeProgress {
                reason: Some(*reason),
                trip_id,
                amount: *amount_kopecks,
                ..ChargeProgress::default()
            });
        }
        AccountEvent::ChargeRefunded {
            charge_id,
            amount_kopecks,
            ..
        } => {
            if let Some(charge) = state.charges.get_mut(charge_id) {
                charge.refunded += *amount_kopecks;
            }
        }
        AccountEvent::ChargeWaived {
            charge_id,
            amount_kopecks,
            ..
        } => {
            if let Some(charge) = state.charges.get_mut(charge_id) {
                charge.waived += *amount_kopecks;
            }
        }
        AccountEvent::PaymentHeld {
            trip_id,
            payment_id,
            amount_kopecks,
            ..
        } => {
            state.holds.entry(*trip_id).or_insert(HoldProgress {
                payment_id: payment_id.clone(),
                amount: *amount_kopecks,
                ..HoldProgress::default()
            });
        }
        AccountEvent::HoldReleased { trip_id, key, .. } => {
            if let Some(hold) = state.holds.get_mut(trip_id) {
                hold.closed = true;
                if hold.in_flight.as_ref() == Some(key) {
                    hold.in_flight = None;
                }
            }
        }
        AccountEvent::PaymentCaptured {
            charge_id,
            payment_id,
            amount_kopecks,
            key,
            ..
        } => {
            for hold in state.holds.values_mut() {
                if hold.payment_id == *payment_id {
                    hold.closed = true;
                    hold.in_flight = None;
                }
            }
            if let Some(charge) = state.charges.get_mut(charge_id) {
                *charge.kept.entry(payment_id.clone()).or_default() += *amount_kopecks;
                if charge.in_flight.as_ref() == Some(key) {
                    charge.in_flight = None;
                }
            }
        }
        AccountEvent::PaymentRefunded {
            charge_id,
            payment_id,
            amount_kopecks,
            key,
            ..
        } => {
            if let Some(charge) = state.charges.get_mut(charge_id) {
                *charge.kept.entry(payment_id.clone()).or_default() -= *amount_kopecks;
                if charge.in_flight.as_ref() == Some(key) {
                    charge.in_flight = None;
                }
            }
        }
        AccountEvent::PaymentFailed {
            charge_id,
            key,
            reason,
            failed_at,
        } => {
            for hold in state.holds.values_mut() {
                if hold.in_flight.as_ref() == Some(key) {
                    hold.in_flight = None;
                    hold.capture_refused = true;
                }
            }
            let blocked = state.blocked;
            let Some(charge) = state.charges.get_mut(charge_id) else {
                return Ok(());
            };
            if charge.in_flight.as_ref() == Some(key) {
                charge.in_flight = None;
            }
            let owed = charge.balance();
            if owed <= Kopecks::ZERO {
                return Ok(());
            }
            match &mut charge.debt {
                None => {
                    charge.debt = Some(Debt {
                        since: *failed_at,
                        reminders: 0,
                        with_agency: false,
                    });
                    out.notice(
                        customer_id,
                        *charge_id,
                        DebtNotice::Opened,
                        format!(
                            "We could not take {} RUB for your charge ({reason}). Your account is \
                             blocked until it is paid; we will try again.",
                            rubles(owed)
                        ),
                        format!("{charge_id}-notice-opened"),
                    );
                    for (n, after) in RETRY_AFTER.iter().enumerate() {
                        out.timers
                            .push((timer_retry(*charge_id, n + 1), *failed_at + *after));
                    }
                    out.timers
                        .push((timer_agency(*charge_id), *failed_at + AGENCY_AFTER));
                    if !blocked {
                        state.blocked = true;
                        out.for_customer(customer_id, |customer_id| PaymentCommand::Block {
                            customer_id,
                            note: format!("Unpaid charge {charge_id}"),
                        });
                    }
                }
                Some(debt) => {
                    debt.reminders += 1;
                    let n = debt.reminders;
                    out.notice(
                        customer_id,
                        *charge_id,
                        DebtNotice::Reminder,
                        format!(
                            "We still could not take {} RUB ({reason}). Please check your card.",
                            rubles(owed)
                        ),
                        format!("{charge_id}-notice-reminder-{n}"),
                    );
                }
            }
        }
        AccountEvent::DebtHandedToAgency { charge_id, .. } => {
            if let Some(debt) = state
                .charges
                .get_mut(charge_id)
                .and_then(|c| c.debt.as_mut())
            {
                debt.with_agency = true;
            }
        }
        // A hold no trip took is let go by its own owner (`crate::sweeper`), not here.
        AccountEvent::DebtNoticeSent { .. } | AccountEvent::HoldAbandoned { .. } => {}
    }
    Ok(())
}

/// Decides the next gateway operation of every hold and charge that has none in flight, and
/// closes the debts that are no longer owed.
fn plan(state: &mut PaymentsState, now: DateTime<Utc>, out: &mut Effects) {
    let customer_id = state.customer_id;
    // Holds of ended trips: capture the price from them, or release them.
    for (trip_id, hold) in &mut state.holds {
        if hold.closed || hold.in_flight.is_some() || !hold.trip_ended {
            continue;
        }
        let price = state
            .charges
            .iter_mut()
            .find(|(_, c)| c.trip_id == Some(*trip_id));
        match price {
            Some((charge_id, charge))
                if !hold.capture_refused
                    && charge.in_flight.is_none()
                    && charge.balance() > Kopecks::ZERO =>
            {
                let amount = charge.balance().min(hold.amount);
                let key = format!("{charge_id}-hold");
                charge.in_flight = Some(key.clone());
                hold.in_flight = Some(key.clone());
                out.gateway(customer_id, |account_id| {
                    GatewayOperation::Capture(Capture {
                        account_id,
                        charge_id: *charge_id,
                        trip_id: *trip_id,
                        payment_id: hold.payment_id.clone(),
                        amount_kopecks: amount,
                        key,
                    })
                });
            }
            Some((_, charge)) if charge.in_flight.is_some() => {}
            // The price's charge is in the same append as the trip's end: it comes next.
            None if hold.priced => {}
            // Nothing to capture (a free trip; a price already settled) or the capture was
            // refused: let the hold go.
            _ => {
                let key = format!("release-{trip_id}");
                hold.in_flight = Some(key.clone());
                out.gateway(customer_id, |account_id| {
                    GatewayOperation::Cancel(Cancel {
                        account_id,
                        trip_id: *trip_id,
                        payment_id: hold.payment_id.clone(),
                        key,
                    })
                });
            }
        }
    }
    let mut debts_left = false;
    for (charge_id, charge) in &mut state.charges {
        let balance = charge.balance();
        if balance <= Kopecks::ZERO && charge.debt.is_some() {
            charge.debt = None;
            for n in 1..=RETRY_AFTER.len() {
                out.cancel.push(timer_retry(*charge_id, n));
            }
            out.cancel.push(timer_agency(*charge_id));
            let (notice, message, word) = if charge.waived > Kopecks::ZERO {
                (
                    DebtNotice::Waived,
                    "Your debt was forgiven. Your account is unblocked.",
                    "waived",
                )
            } else {
                (
                    DebtNotice::Paid,
                    "Your debt is paid. Thank you — your account is unblocked.",
                    "paid",
                )
            };
            out.notice(
                customer_id,
                *charge_id,
                notice,
                message.to_owned(),
                format!("{charge_id}-notice-{word}"),
            );
        }
        if charge.debt.is_some() {
            debts_left = true;
        }
        if charge.in_flight.is_some() {
            continue;
        }
        if balance > Kopecks::ZERO {
            let waits_for_hold = charge.trip_id.is_some_and(|trip| {
                state
                    .holds
                    .get(&trip)
                    .is_some_and(|h| !h.closed && !h.capture_refused)
            });
            if waits_for_hold || charge.debt.is_some() || charge.attempts > 0 {
                // The hold pays first; a debt is retried by its timers; a first payment that
                // went through left nothing here (balance would be 0).
                continue;
            }
            charge.attempts = 1;
            let key = format!("{charge_id}-pay-1");
            charge.in_flight = Some(key.clone());
            let description = match charge.reason {
                Some(reason) => format!("{} {charge_id}", reason.as_str()),
                None => format!("charge {charge_id}"),
            };
            out.gateway(customer_id, |account_id| {
                GatewayOperation::Charge(Charge {
                    account_id,
                    customer_id: account_id,
                    charge_id: *charge_id,
                    amount_kopecks: balance,
                    key,
                    description,
                })
            });
        } else if balance < Kopecks::ZERO {
            // Give back, from the payments that kept money, largest first.
            let Some((payment_id, kept)) = charge
                .kept
                .iter()
                .filter(|(_, kept)| **kept > Kopecks::ZERO)
                .max_by_key(|(_, kept)| **kept)
            else {
                continue;
            };
            charge.returns += 1;
            let key = format!("{charge_id}-refund-{}", charge.returns);
            charge.in_flight = Some(key.clone());
            let amount = (-balance).min(*kept);
            let payment_id = payment_id.clone();
            out.gateway(customer_id, |account_id| {
                GatewayOperation::Refund(Refund {
                    account_id,
                    charge_id: *charge_id,
                    payment_id,
                    amount_kopecks: amount,
                    key,
                })
            });
        }
    }
    if state.blocked && !debts_left {
        state.blocked = false;
        out.for_customer(customer_id, |customer_id| PaymentCommand::Unblock {
            customer_id,
            note: format!("All debts settled ({now})"),
        });
    }
}

#[cfg(test)]
mod tests {
    //! Given the account's events, when one more arrives (or a timer fires), then these
    //! commands, timers and state.

    #![allow(clippy::unwrap_used)]

    use super::*;
    use event_store::{LogPosition, Metadata};
    use serde_json::json;
    use uuid::Uuid;

    const CUSTOMER: CustomerId = CustomerId(Uuid::from_u128(0x100));
    const TRIP: TripId = TripId(Uuid::from_u128(0x300));
    const PRICE: ChargeId = ChargeId(Uuid::from_u128(0x401));
    const FINE: ChargeId = ChargeId(Uuid::from_u128(0x402));

    fn at(minute: i64) -> DateTime<Utc> {
        "2026-11-25T09:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minute)
    }

    fn recorded(stream_id: String, event: Value, minute: i64) -> RecordedEvent {
        RecordedEvent {
            position: minute,
            log_position: LogPosition {
                transaction_id: minute as u64,
                position: minute,
            },
            stream_id,
            stream_version: 1,
            event_id: Uuid::from_u128(minute as u128),
            event_type: event["type"].as_str().unwrap().to_owned(),
            schema_version: 1,
            data: event["data"].clone(),
            metadata: Metadata {
                correlation_id: Uuid::nil(),
                causation_id: None,
                actor: "test".into(),
                command_id: None,
            },
            occurred_at: at(minute),
            recorded_at: at(minute),
        }
    }

    fn account(event: AccountEvent, minute: i64) -> RecordedEvent {
        recorded(
            format!("account-{}", CUSTOMER.0),
            serde_json::to_value(&event).unwrap(),
            minute,
        )
    }

    fn charge(
        charge_id: ChargeId,
        reason: ChargeReason,
        source: ChargeSource,
        kopecks: i64,
    ) -> AccountEvent {
        AccountEvent::ChargeAdded {
            account_id: AccountId::Customer(CUSTOMER),
            charge_id,
            reason,
            source,
            amount_kopecks: Kopecks(kopecks),
            customer_id: CUSTOMER,
            added_at: at(0),
        }
    }

    fn trip_ended(total: i64) -> RecordedEvent {
        let event = json!({"type": "TripEnded", "data": {
            "trip_id": TRIP, "customer_id": CUSTOMER,
            "vehicle_id": Uuid::from_u128(0x200),
            "end_position": {"lat": 55.75, "lon": 37.6},
            "end_odometer_m": 1000,
            "ended_at": at(10),
            "price": {
                "currency": "RUB", "driving_s": 600, "driving_minutes": 10,
                "driving_kopecks": total, "parking_s": 0, "parking_minutes": 0,
                "parking_kopecks": 0, "distance_m": 1000, "included_km": 70, "extra_km": 0,
                "distance_kopecks": 0, "total_kopecks": total
            }
        }});
        recorded(format!("trip-{}", TRIP.0), event, 10)
    }

    /// Folds `events` through the saga and returns the last reaction.
    fn run(events: &[RecordedEvent]) -> Reaction<PaymentsState> {
        let saga = PaymentSaga;
        let mut state = None;
        let mut last = None;
        for event in events {
            assert!(saga.instance_of(event).is_some(), "{}", event.event_type);
            let reaction = saga.react(state.take(), event).unwrap();
            state = Some(reaction.state.clone());
            last = Some(reaction);
        }
        last.unwrap()
    }

    fn names(reaction: &Reaction<PaymentsState>) -> Vec<&str> {
        reaction.commands.iter().map(|c| c.name.as_str()).collect()
    }

    fn held() -> RecordedEvent {
        account(
            AccountEvent::PaymentHeld {
                trip_id: TRIP,
                payment_id: "hold-1".into(),
                amount_kopecks: Kopecks(5_000),
                key: "hold-k".into(),
                held_at: at(0),
            },
            1,
        )
    }

    fn price(kopecks: i64) -> RecordedEvent {
        account(
            charge(
                PRICE,
                ChargeReason::TripPrice,
                ChargeSource::Trip { trip_id: TRIP },
                kopecks,
            ),
            11,
        )
    }

    #[test]
    fn a_trip_price_is_captured_from_the_hold_up_to_the_hold() {
        let reaction = run(&[held(), trip_ended(9_900), price(9_900)]);
        assert_eq!(names(&reaction), ["gateway.capture"]);
        let capture = &reaction.commands[0].payload;
        assert_eq!(capture["payment_id"], "hold-1");
        assert_eq!(capture["amount_kopecks"], 5_000);
        assert_eq!(capture["key"], format!("{PRICE}-hold"));
    }

    #[test]
    fn the_trip_end_before_its_charge_waits_for_it() {
        // The end and the charge are one append; the end alone must not let the hold go.
        let reaction = run(&[held(), trip_ended(9_900)]);
        assert!(reaction.commands.is_empty());
    }

    #[test]
    fn a_free_trip_releases_the_hold() {
        let reaction = run(&[held(), trip_ended(0)]);
        assert_eq!(names(&reaction), ["gateway.cancel"]);
        assert_eq!(
            reaction.commands[0].payload["key"],
            format!("release-{TRIP}")
        );
    }

    #[test]
    fn what_the_hold_did_not_cover_is_charged_separately() {
        let captured = account(
            AccountEvent::PaymentCaptured {
                charge_id: PRICE,
                payment_id: "hold-1".into(),
                amount_kopecks: Kopecks(5_000),
                key: format!("{PRICE}-hold"),
                captured_at: at(12),
            },
            12,
        );
        let reaction = run(&[held(), trip_ended(9_900), price(9_900), captured]);
        assert_eq!(names(&reaction), ["gateway.charge"]);
        assert_eq!(reaction.commands[0].payload["amount_kopecks"], 4_900);
        assert_eq!(
            reaction.commands[0].payload["key"],
            format!("{PRICE}-pay-1")
        );
        assert!(reaction.state.holds[&TRIP].closed);
    }

    fn fine_charged() -> RecordedEvent {
        account(
            charge(
                FINE,
                ChargeReason::Penalty,
                ChargeSource::Penalty {
                    penalty_id: domain::ids::PenaltyId(Uuid::from_u128(0x600)),
                },
                30_000,
            ),
            20,
        )
    }

    fn refused(key: &str, minute: i64) -> RecordedEvent {
        account(
            AccountEvent::PaymentFailed {
                charge_id: FINE,
                key: key.into(),
                reason: "card_declined".into(),
                failed_at: at(minute),
            },
            minute,
        )
    }

    #[test]
    fn a_refused_payment_opens_a_debt_blocks_notices_and_schedules_retries() {
        let reaction = run(&[fine_charged(), refused(&format!("{FINE}-pay-1"), 21)]);
        assert_eq!(names(&reaction), ["record_payment", "block_customer"]);
        assert_eq!(reaction.commands[0].payload["notice"], "opened");
        let due: Vec<(String, DateTime<Utc>)> = reaction
            .set_timers
            .iter()
            .map(|t| (t.name.clone(), t.due_at))
            .collect();
        assert_eq!(
            due,
            [
                (format!("retry:{FINE}:1"), at(21) + Duration::hours(1)),
                (format!("retry:{FINE}:2"), at(21) + Duration::days(1)),
                (format!("retry:{FINE}:3"), at(21) + Duration::days(3)),
                (format!("retry:{FINE}:4"), at(21) + Duration::days(7)),
                (format!("agency:{FINE}"), at(21) + Duration::days(30)),
            ]
        );
        assert!(reaction.state.blocked);
    }

    #[test]
    fn a_due_retry_pays_under_a_new_key_and_a_success_closes_the_debt_and_unblocks() {
        let debt = run(&[fine_charged(), refused(&format!("{FINE}-pay-1"), 21)]);
        let retry = PaymentSaga
            .on_timer(
                debt.state,
                &FiredTimer {
                    timer_id: Uuid::nil(),
                    instance_id: format!("account-{}", CUSTOMER.0),
                    name: format!("retry:{FINE}:1"),
                    due_at: at(81),
                    payload: Value::Null,
                },
            )
            .unwrap();
        assert_eq!(names(&retry), ["gateway.charge"]);
        assert_eq!(retry.commands[0].payload["key"], format!("{FINE}-pay-2"));
        let paid = PaymentSaga
            .react(
                Some(retry.state),
                &account(
                    AccountEvent::PaymentCaptured {
                        charge_id: FINE,
                        payment_id: "pay-2".into(),
                        amount_kopecks: Kopecks(30_000),
                        key: format!("{FINE}-pay-2"),
                        captured_at: at(82),
                    },
                    82,
                ),
            )
            .unwrap();
        assert_eq!(names(&paid), ["record_payment", "unblock_customer"]);
        assert_eq!(paid.commands[0].payload["notice"], "paid");
        assert_eq!(paid.cancel_timers.len(), 5);
        assert!(!paid.state.blocked);
    }

    #[test]
    fn a_refund_of_a_paid_charge_goes_back_to_the_card() {
        let captured = account(
            AccountEvent::PaymentCaptured {
                charge_id: FINE,
                payment_id: "pay-1".into(),
                amount_kopecks: Kopecks(30_000),
                key: format!("{FINE}-pay-1"),
                captured_at: at(21),
            },
            21,
        );
        let refunded = account(
            AccountEvent::ChargeRefunded {
                charge_id: FINE,
                refund_id: domain::account::RefundId(Uuid::from_u128(0x500)),
                amount_kopecks: Kopecks(10_000),
                reason: "goodwill".into(),
                refunded_at: at(30),
            },
            30,
        );
        let reaction = run(&[fine_charged(), captured, refunded]);
        assert_eq!(names(&reaction), ["gateway.refund"]);
        assert_eq!(reaction.commands[0].payload["amount_kopecks"], 10_000);
        assert_eq!(reaction.commands[0].payload["payment_id"], "pay-1");
    }

    #[test]
    fn a_company_account_is_not_the_sagas() {
        let company = recorded(
            format!("account-company-{}", Uuid::from_u128(0x900)),
            json!({"type": "ChargeAdded", "data": {}}),
            1,
        );
        assert_eq!(PaymentSaga.instance_of(&company), None);
    }
}
