//! The account: what a payer owes. Every amount owed — a trip's price, paid waiting, a fine with
//! its admin fee, a penalty — is a *charge* on the payer's account, with a reason and a link to
//! the thing that caused it; support can refund part or all of a charge, or waive what is left
//! owing, and each of those is an event of its own on the account's stream.
//!
//! # The payer
//!
//! An account belongs to an [`AccountId`]: a customer (`customer:<uuid>`, stream
//! `account-<uuid>`) or a B2B company (`company:<uuid>`, stream `account-company-<uuid>`), whose
//! employees' trips are billed to it. Each charge records both the account it is on (the payer)
//! and the customer who caused it, which differ exactly for a company's employees. A trip's payer
//! is fixed when it starts ([`payer_of_trip`]); a reservation's paid waiting is always the
//! customer's own ([`paid_waiting_charge`]).
//!
//! # Money rules
//!
//! Per charge: `refunded + waived ≤ amount`. Money moves through the payment gateway and comes
//! back as facts on the same stream (the payment saga records them, [`PaymentFact`]): a hold at
//! a trip's start, captures and separate charges that *pay* a charge, failures that leave it
//! owed (a debt), refunds to the card, and the debt-collection steps. Per charge:
//!
//! - `paid = captured − returned to the card`;
//! - `balance = amount − refunded − waived − paid`: positive is still owed (`open`), negative is
//!   money taken that a refund says must go back (`to_return`), which the saga gives back;
//! - a **refund** may be at most `amount − refunded − waived`; it reduces what is owed first,
//!   and whatever it refunds of money already taken goes back to the card;
//! - a **waiver** forgives what is still owed, `open`, in full.
//!
//! So once the saga is idle, for every account: `charges − refunds = paid + open + waived`
//! (money kept, debt still open, written off) — the auditors' reconciliation.

mod decide;
mod evolve;
mod payments;
#[cfg(test)]
mod tests;

pub use crate::ids::{AccountId, ChargeId, NotAnAccountId, RefundId};
pub use payments::{
    AbandonReason, DebtNotice, HoldState, HoldToAbandon, PaymentFact, check_hold_key,
};

use crate::decider::{Decider, DomainEvent};
use crate::ids::{CustomerId, FineId, PenaltyId, ReservationId, TripId};
use crate::money::Kopecks;
use crate::rejection::{FieldError, Rejection};
use crate::reservation::ReservationEvent;
use crate::trip::{TripEvent, TripState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The largest single charge, refund or fine the system accepts: 1,000,000 RUB. Far above any
/// real trip, fine or penalty, and small enough that the totals of millions of charges stay far
/// from overflowing an `i64`.
pub const MAX_AMOUNT: Kopecks = Kopecks(100_000_000);

/// Parses an amount that must be positive and at most [`MAX_AMOUNT`].
pub fn positive_amount(field: &str, kopecks: i64) -> Result<Kopecks, FieldError> {
    if kopecks <= 0 {
        return Err(FieldError::new(
            field,
            "must be a positive number of kopecks",
        ));
    }
    if kopecks > MAX_AMOUNT.get() {
        return Err(FieldError::new(
            field,
            format!("must be at most {} kopecks", MAX_AMOUNT.get()),
        ));
    }
    Ok(Kopecks(kopecks))
}

/// What a charge is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChargeReason {
    /// The price of a trip (source: the trip).
    TripPrice,
    /// Waiting beyond the free minutes of a reservation (source: the reservation).
    PaidWaiting,
    /// A traffic fine re-billed to the driver (source: the fine).
    Fine,
    /// The operator's fee for handling a fine (source: the fine).
    FineAdminFee,
    /// A penalty issued by support (source: the penalty).
    Penalty,
}

impl ChargeReason {
    /// The reason as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TripPrice => "trip_price",
            Self::PaidWaiting => "paid_waiting",
            Self::Fine => "fine",
            Self::FineAdminFee => "fine_admin_fee",
            Self::Penalty => "penalty",
        }
    }

    /// Whether a charge for this reason may come from `source`.
    pub fn fits(self, source: &ChargeSource) -> bool {
        matches!(
            (self, source),
            (Self::TripPrice, ChargeSource::Trip { .. })
                | (Self::PaidWaiting, ChargeSource::Reservation { .. })
                | (Self::Fine | Self::FineAdminFee, ChargeSource::Fine { .. })
                | (Self::Penalty, ChargeSource::Penalty { .. })
        )
    }
}

/// What caused a charge: a link to the stream it came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChargeSource {
    /// A trip (`trip-<id>`).
    Trip { trip_id: TripId },
    /// A reservation (`reservation-<id>`).
    Reservation { reservation_id: ReservationId },
    /// A traffic fine (`fine-<id>`).
    Fine { fine_id: FineId },
    /// A penalty (`penalty-<id>`).
    Penalty { penalty_id: PenaltyId },
}

impl ChargeSource {
    /// The kind of source as a word (`trip`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Trip { .. } => "trip",
            Self::Reservation { .. } => "reservation",
            Self::Fine { .. } => "fine",
            Self::Penalty { .. } => "penalty",
        }
    }

    /// The id of the source.
    pub fn id(&self) -> Uuid {
        match self {
            Self::Trip { trip_id } => trip_id.0,
            Self::Reservation { reservation_id } => reservation_id.0,
            Self::Fine { fine_id } => fine_id.0,
            Self::Penalty { penalty_id } => penalty_id.0,
        }
    }
}

/// A charge to add: what [`charge_for`] needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewCharge {
    /// A fresh id for the charge.
    pub charge_id: ChargeId,
    /// What it is for.
    pub reason: ChargeReason,
    /// What caused it.
    pub source: ChargeSource,
    /// How much.
    pub amount_kopecks: Kopecks,
    /// Who caused it (the driver); the same as the payer unless a company pays.
    pub customer_id: CustomerId,
}

/// What can be asked of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "command")]
pub enum AccountCommand {
    /// Put a charge on the account (on behalf of its cause: a trip's end, a penalty, a fine).
    AddCharge(NewCharge),
    /// Support refunds part or all of a charge.
    Refund {
        charge_id: ChargeId,
        refund_id: RefundId,
        amount_kopecks: Kopecks,
        reason: String,
    },
    /// Support forgives what is still owed on a charge.
    Waive { charge_id: ChargeId, reason: String },
    /// Record what the payment gateway did, or a step of debt collection (the payment saga's
    /// facts). Facts are never refused for their amounts — the money moved — only for their
    /// shape; a fact whose `key` was recorded before records nothing.
    Record(PaymentFact),
    /// Let go of a card hold that no trip took (before it is cancelled at the gateway), so that
    /// no start retried later can take it: refused when a trip holds it, nothing when it was let
    /// go before.
    AbandonHold(HoldToAbandon),
}

/// What happened on an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AccountEvent {
    /// An amount became owed.
    ChargeAdded {
        /// The account (payer) it is on.
        account_id: AccountId,
        charge_id: ChargeId,
        reason: ChargeReason,
        source: ChargeSource,
        amount_kopecks: Kopecks,
        /// Who caused it.
        customer_id: CustomerId,
        added_at: DateTime<Utc>,
    },
    /// Part or all of a charge was refunded. The agent is the event's actor.
    ChargeRefunded {
        charge_id: ChargeId,
        refund_id: RefundId,
        amount_kopecks: Kopecks,
        reason: String,
        refunded_at: DateTime<Utc>,
    },
    /// What was still owed on a charge was forgiven. The agent is the event's actor.
    ChargeWaived {
        charge_id: ChargeId,
        amount_kopecks: Kopecks,
        reason: String,
        waived_at: DateTime<Utc>,
    },
    /// Money was held on the customer's card when a trip started (the gateway's payment id).
    PaymentHeld {
        trip_id: TripId,
        payment_id: String,
        amount_kopecks: Kopecks,
        /// The idempotence key the hold was made with.
        key: String,
        held_at: DateTime<Utc>,
    },
    /// A hold on the card that no trip took is being let go: recorded before the gateway is
    /// asked to cancel it, so a start retried with its key is refused from now on, and whoever
    /// finds it still held at the gateway knows it is to be cancelled.
    HoldAbandoned {
        /// The idempotence key the hold was (or may have been) made with.
        key: String,
        /// The gateway's payment, when known (a hold whose answer was lost has none yet).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_id: Option<String>,
        /// The trip start it was made for, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trip_id: Option<TripId>,
        amount_kopecks: Kopecks,
        reason: AbandonReason,
        abandoned_at: DateTime<Utc>,
    },
    /// A hold was cancelled: the money held is free again.
    HoldReleased {
        trip_id: TripId,
        payment_id: String,
        key: String,
        released_at: DateTime<Utc>,
    },
    /// Money was taken for a charge: captured from the trip's hold or charged separately.
    PaymentCaptured {
        charge_id: ChargeId,
        payment_id: String,
        amount_kopecks: Kopecks,
        key: String,
        captured_at: DateTime<Utc>,
    },
    /// The gateway refused to take money for a charge (declined, insufficient funds, a dead
    /// hold): what is owed stays open, as a debt.
    PaymentFailed {
        charge_id: ChargeId,
        key: String,
        reason: String,
        failed_at: DateTime<Utc>,
    },
    /// Money taken for a charge was given back to the card.
    PaymentRefunded {
        charge_id: ChargeId,
        payment_id: String,
        /// The gateway's refund id.
        gateway_refund_id: String,
        amount_kopecks: Kopecks,
        key: String,
        refunded_at: DateTime<Utc>,
    },
    /// The customer was told about a debt (the notifier's record).
    DebtNoticeSent {
        charge_id: ChargeId,
        notice: DebtNotice,
        /// What the customer was told.
        message: String,
        key: String,
        sent_at: DateTime<Utc>,
    },
    /// A debt still open after the collection period was handed to a collection agency.
    DebtHandedToAgency {
        charge_id: ChargeId,
        amount_kopecks: Kopecks,
        key: String,
        handed_at: DateTime<Utc>,
    },
}

impl DomainEvent for AccountEvent {}

/// One charge as its history leaves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChargeState {
    pub charge_id: ChargeId,
    pub reason: ChargeReason,
    pub source: ChargeSource,
    pub customer_id: CustomerId,
    /// What was charged.
    pub amount_kopecks: Kopecks,
    /// The sum of its refunds.
    pub refunded_kopecks: Kopecks,
    /// The sum of its waivers.
    pub waived_kopecks: Kopecks,
    /// Money taken for it (captures), before refunds to the card.
    pub captured_kopecks: Kopecks,
    /// Money given back to the card.
    pub returned_kopecks: Kopecks,
    /// Whether the gateway has refused to take money for it at least once.
    pub payment_failed: bool,
    /// Whether it was handed to a collection agency.
    pub handed_to_agency: bool,
    pub added_at: DateTime<Utc>,
}

impl ChargeState {
    /// Money kept for it: captured − returned to the card.
    pub fn paid_kopecks(&self) -> Kopecks {
        Kopecks(self.captured_kopecks.get() - self.returned_kopecks.get())
    }

    /// The balance of the charge: charged − refunded − waived − paid. Positive: still owed;
    /// negative: paid too much (a refund of money already taken), to be given back.
    pub fn balance_kopecks(&self) -> Kopecks {
        Kopecks(
            self.amount_kopecks.get()
                - self.refunded_kopecks.get()
                - self.waived_kopecks.get()
                - self.paid_kopecks().get(),
        )
    }

    /// What is still owed: the balance when positive.
    pub fn open_kopecks(&self) -> Kopecks {
        Kopecks(self.balance_kopecks().get().max(0))
    }

    /// What must go back to the card: the balance when negative.
    pub fn to_return_kopecks(&self) -> Kopecks {
        Kopecks((-self.balance_kopecks().get()).max(0))
    }

    /// The most a refund may be now: charged − refunded − waived. A refund first reduces what
    /// is owed; what it refunds of money already taken goes back to the card.
    pub fn refundable_kopecks(&self) -> Kopecks {
        Kopecks(self.amount_kopecks.get() - self.refunded_kopecks.get() - self.waived_kopecks.get())
    }
}

/// An account's sums.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccountTotals {
    pub charged_kopecks: Kopecks,
    pub refunded_kopecks: Kopecks,
    pub waived_kopecks: Kopecks,
    /// captured − returned to the card.
    pub paid_kopecks: Kopecks,
    /// The sum of the charges' balances: charged − refunded − waived − paid (negative: more
    /// paid than owed, to be given back).
    pub balance_kopecks: Kopecks,
    /// What is still owed, over the charges that owe something.
    pub open_kopecks: Kopecks,
}

/// What an account's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccountState {
    /// The account, once it has had a charge.
    pub account_id: Option<AccountId>,
    /// Its charges by id.
    pub charges: BTreeMap<ChargeId, ChargeState>,
    /// Holds on the customer's card, by trip.
    pub holds: BTreeMap<TripId, HoldState>,
    /// The keys of holds no trip took, let go ([`AccountEvent::HoldAbandoned`]): no trip may
    /// take them any more.
    pub abandoned_holds: std::collections::BTreeSet<String>,
    /// The keys of the payment facts recorded, so a repeated fact records nothing.
    pub recorded_keys: std::collections::BTreeSet<String>,
}

impl AccountState {
    /// The charge with this id.
    pub fn charge(&self, charge_id: ChargeId) -> Option<&ChargeState> {
        self.charges.get(&charge_id)
    }

    /// The sums over all charges.
    pub fn totals(&self) -> AccountTotals {
        self.charges
            .values()
            .fold(AccountTotals::default(), |totals, charge| AccountTotals {
                charged_kopecks: totals.charged_kopecks + charge.amount_kopecks,
                refunded_kopecks: totals.refunded_kopecks + charge.refunded_kopecks,
                waived_kopecks: totals.waived_kopecks + charge.waived_kopecks,
                paid_kopecks: totals.paid_kopecks + charge.paid_kopecks(),
                balance_kopecks: totals.balance_kopecks + charge.balance_kopecks(),
                open_kopecks: totals.open_kopecks + charge.open_kopecks(),
            })
    }

    /// Checks the money invariants: every charge is positive, refunds and waivers are never
    /// negative and together never exceed the charge, no more is returned to the card than was
    /// taken, and the totals add up (`charged = refunded + waived + paid + balance`).
    pub fn check_invariants(&self) -> Result<(), String> {
        for charge in self.charges.values() {
            let (amount, refunded, waived) = (
                charge.amount_kopecks.get(),
                charge.refunded_kopecks.get(),
                charge.waived_kopecks.get(),
            );
            if amount <= 0
                || refunded < 0
                || waived < 0
                || refunded + waived > amount
                || charge.returned_kopecks > charge.captured_kopecks
            {
                return Err(format!(
                    "charge {}: amount {amount}, refunded {refunded}, waived {waived}",
                    charge.charge_id
                ));
            }
        }
        let totals = self.totals();
        if totals.charged_kopecks.get()
            != totals.refunded_kopecks.get()
                + totals.waived_kopecks.get()
                + totals.paid_kopecks.get()
                + totals.balance_kopecks.get()
        {
            return Err(format!("totals do not add up: {totals:?}"));
        }
        Ok(())
    }
}

/// What an account decision needs from outside.
#[derive(Clone, Debug)]
pub struct AccountContext {
    /// The account the command is for (the stream being decided).
    pub account_id: AccountId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

/// The account decider.
#[derive(Debug)]
pub struct Account;

impl Decider for Account {
    type State = AccountState;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Context = AccountContext;

    fn decide(
        state: &AccountState,
        command: &AccountCommand,
        context: &AccountContext,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        decide::decide(state, command, context)
    }

    fn evolve(state: AccountState, event: &AccountEvent) -> AccountState {
        evolve::evolve(state, event)
    }
}

/// The charge for `charge` on the account whose state is `account`: the one event to append to
/// the account's stream in the same append as the charge's cause (a trip's end, a reservation's
/// end, a penalty, a matched fine), with the expected version the account was loaded at.
///
/// Refused when the amount is not positive, the reason does not fit the source, the charge id is
/// already used, or the account already carries a charge for the same source and reason.
pub fn charge_for(
    account: &AccountState,
    context: &AccountContext,
    charge: NewCharge,
) -> Result<AccountEvent, Rejection> {
    let mut events = Account::decide(account, &AccountCommand::AddCharge(charge), context)?;
    match (events.pop(), events.is_empty()) {
        (Some(event), true) => Ok(event),
        _ => Err(FieldError::new("charge", "a charge records exactly one event").into()),
    }
}

/// Several charges for one cause (a fine and its admin fee), each checked against the account as
/// the ones before it leave it.
pub fn charges_for(
    account: &AccountState,
    context: &AccountContext,
    charges: impl IntoIterator<Item = NewCharge>,
) -> Result<Vec<AccountEvent>, Rejection> {
    let mut state = account.clone();
    let mut events = Vec::new();
    for charge in charges {
        let event = charge_for(&state, context, charge)?;
        state = Account::evolve(state, &event);
        events.push(event);
    }
    Ok(events)
}

/// The account a trip's costs go on (its price, penalties for it, fines caught during it): the
/// company the customer drove for when the trip started, else the customer's own.
pub fn payer_of_trip(trip: &TripState) -> Option<AccountId> {
    trip.started.as_ref().map(|start| match start.company_id {
        Some(company_id) => AccountId::Company(company_id),
        None => AccountId::Customer(start.customer_id),
    })
}

/// The charge for the paid waiting recorded in the event that ends a reservation (converted,
/// cancelled or expired), for the customer's own account, appended with that event: `None` when
/// `ended` does not end a reservation or the waiting was all free.
pub fn paid_waiting_charge(
    account: &AccountState,
    context: &AccountContext,
    charge_id: ChargeId,
    ended: &ReservationEvent,
) -> Result<Option<AccountEvent>, Rejection> {
    let (reservation_id, customer_id, waiting) = match ended {
        ReservationEvent::ReservationConverted {
            reservation_id,
            customer_id,
            waiting,
            ..
        }
        | ReservationEvent::ReservationCancelled {
            reservation_id,
            customer_id,
            waiting,
            ..
        }
        | ReservationEvent::ReservationExpired {
            reservation_id,
            customer_id,
            waiting,
            ..
        } => (*reservation_id, *customer_id, waiting),
        ReservationEvent::ReservationMade { .. } => return Ok(None),
    };
    if waiting.paid_waiting_kopecks <= Kopecks::ZERO {
        return Ok(None);
    }
    charge_for(
        account,
        context,
        NewCharge {
            charge_id,
            reason: ChargeReason::PaidWaiting,
            source: ChargeSource::Reservation { reservation_id },
            amount_kopecks: waiting.paid_waiting_kopecks,
            customer_id,
        },
    )
    .map(Some)
}

/// The charge for an ended trip's price, for the trip's end to append with `TripEnded`: `None`
/// when `ended` is not a `TripEnded` or the trip cost nothing (a charge is always positive).
pub fn trip_price_charge(
    account: &AccountState,
    context: &AccountContext,
    charge_id: ChargeId,
    ended: &TripEvent,
) -> Result<Option<AccountEvent>, Rejection> {
    let TripEvent::TripEnded {
        trip_id,
        customer_id,
        price,
        ..
    } = ended
    else {
        return Ok(None);
    };
    if price.total_kopecks <= Kopecks::ZERO {
        return Ok(None);
    }
    charge_for(
        account,
        context,
        NewCharge {
            charge_id,
            reason: ChargeReason::TripPrice,
            source: ChargeSource::Trip { trip_id: *trip_id },
            amount_kopecks: price.total_kopecks,
            customer_id: *customer_id,
        },
    )
    .map(Some)
}
