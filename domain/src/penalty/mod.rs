//! Penalties: support fines a customer for how they treated a car during a trip — smoking in it,
//! leaving it dirty, parking it where it must not be, handing it back with too little fuel.
//!
//! A penalty is its own stream (`penalty-<id>`): the record of what support saw and decided,
//! which a later dispute or cancellation will extend. Issuing one also charges the trip's payer
//! (source: the penalty), in the same append, so a penalty never exists without its charge nor a
//! charge without its penalty. The amount defaults from the fee schedule
//! (`fixtures/data/fees.json`); support may set another.

mod decide;
#[cfg(test)]
mod tests;

use crate::account::{
    AccountContext, AccountEvent, AccountId, AccountState, ChargeId, ChargeReason, ChargeSource,
    NewCharge, charge_for, payer_of_trip,
};
use crate::decider::{Decider, DomainEvent};
use crate::ids::{CustomerId, PenaltyId, TripId, VehicleId};
use crate::money::Kopecks;
use crate::rejection::{FieldError, Rejection};
use crate::trip::TripState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a penalty is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PenaltyKind {
    /// Someone smoked in the car.
    Smoking,
    /// The car was left dirty inside.
    DirtyCar,
    /// The car was parked in violation of the rules (outside the allowed places, on a lawn, …).
    ParkingViolation,
    /// The car was handed back with less fuel than the rules allow.
    LowFuel,
}

impl PenaltyKind {
    /// The kind as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smoking => "smoking",
            Self::DirtyCar => "dirty_car",
            Self::ParkingViolation => "parking_violation",
            Self::LowFuel => "low_fuel",
        }
    }
}

/// The default amount of each kind of penalty. Every kind must have one, so the fixture fails to
/// load rather than a penalty failing to be issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PenaltyTariff {
    pub smoking: Kopecks,
    pub dirty_car: Kopecks,
    pub parking_violation: Kopecks,
    pub low_fuel: Kopecks,
}

impl PenaltyTariff {
    /// The default amount for `kind`.
    pub fn amount_for(&self, kind: PenaltyKind) -> Kopecks {
        match kind {
            PenaltyKind::Smoking => self.smoking,
            PenaltyKind::DirtyCar => self.dirty_car,
            PenaltyKind::ParkingViolation => self.parking_violation,
            PenaltyKind::LowFuel => self.low_fuel,
        }
    }
}

/// The facts of an issued penalty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PenaltyFacts {
    pub penalty_id: PenaltyId,
    /// The trip it is for.
    pub trip_id: TripId,
    /// Who drove: the trip's customer.
    pub customer_id: CustomerId,
    /// The car.
    pub vehicle_id: VehicleId,
    pub kind: PenaltyKind,
    /// What support saw, for the customer and a later dispute.
    pub note: String,
    pub amount_kopecks: Kopecks,
    /// Whether the amount is the fee schedule's default (`false`: support set it).
    pub default_amount: bool,
    /// The charge it put on the payer's account.
    pub charge_id: ChargeId,
}

/// What happened to a penalty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PenaltyEvent {
    /// Support issued the penalty; the agent is the event's actor.
    PenaltyIssued {
        #[serde(flatten)]
        facts: PenaltyFacts,
        issued_at: DateTime<Utc>,
    },
}

impl DomainEvent for PenaltyEvent {}

/// What a penalty's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PenaltyState {
    /// The penalty, once issued.
    pub issued: Option<PenaltyFacts>,
}

/// What can be asked of a penalty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "command")]
pub enum PenaltyCommand {
    /// Record the penalty (the issuing workflow has checked the trip and priced it).
    Issue(PenaltyFacts),
}

/// What a penalty decision needs from outside.
#[derive(Clone, Debug)]
pub struct PenaltyContext {
    /// The penalty the command is for.
    pub penalty_id: PenaltyId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

/// The penalty decider: the penalty's own rules.
#[derive(Debug)]
pub struct Penalty;

impl Decider for Penalty {
    type State = PenaltyState;
    type Command = PenaltyCommand;
    type Event = PenaltyEvent;
    type Context = PenaltyContext;

    fn decide(
        state: &PenaltyState,
        command: &PenaltyCommand,
        context: &PenaltyContext,
    ) -> Result<Vec<PenaltyEvent>, Rejection> {
        decide::decide(state, command, context)
    }

    fn evolve(mut state: PenaltyState, event: &PenaltyEvent) -> PenaltyState {
        match event {
            PenaltyEvent::PenaltyIssued { facts, .. } => state.issued = Some(facts.clone()),
        }
        state
    }
}

/// Everything issuing a penalty looks at.
#[derive(Clone, Debug)]
pub struct IssuePenalty<'a> {
    /// A fresh id for the penalty.
    pub penalty_id: PenaltyId,
    /// A fresh id for its charge.
    pub charge_id: ChargeId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// The penalty's state; empty unless the id was used before.
    pub penalty: &'a PenaltyState,
    /// The trip the penalty is for, and its state.
    pub trip_id: TripId,
    pub trip: &'a TripState,
    /// The payer's account (see [`payer_of_trip`]) and its state.
    pub account_id: AccountId,
    pub account: &'a AccountState,
    pub kind: PenaltyKind,
    pub note: String,
    /// The amount support set, or `None` for the fee schedule's.
    pub amount_kopecks: Option<Kopecks>,
    /// The fee schedule.
    pub tariff: &'a PenaltyTariff,
}

/// The events issuing a penalty appends: the penalty's, and the charge on the payer's account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PenaltyDecision {
    /// Events for the penalty's stream.
    pub penalty: Vec<PenaltyEvent>,
    /// The account charged.
    pub account_id: AccountId,
    /// Events for the account's stream.
    pub account: Vec<AccountEvent>,
}

/// Decides whether a penalty may be issued against a trip, and what it records. The trip must
/// have started; it may still be running (smoking seen on a live camera) or have ended.
pub fn issue_penalty(input: IssuePenalty<'_>) -> Result<PenaltyDecision, Rejection> {
    let IssuePenalty {
        penalty_id,
        charge_id,
        now,
        penalty,
        trip_id,
        trip,
        account_id,
        account,
        kind,
        note,
        amount_kopecks,
        tariff,
    } = input;
    let Some(start) = trip.started.as_ref().filter(|s| s.trip_id == trip_id) else {
        return Err(Rejection::TripNotFound { trip_id });
    };
    // The account loaded must be the trip's payer's: charging another would bill the wrong person.
    if payer_of_trip(trip) != Some(account_id)
        || account
            .account_id
            .is_some_and(|loaded| loaded != account_id)
    {
        return Err(
            FieldError::new("trip_id", "the account charged must be the trip's payer").into(),
        );
    }
    let (amount, default_amount) = match amount_kopecks {
        Some(amount) => (amount, false),
        None => (tariff.amount_for(kind), true),
    };
    let facts = PenaltyFacts {
        penalty_id,
        trip_id,
        customer_id: start.customer_id,
        vehicle_id: start.vehicle_id,
        kind,
        note,
        amount_kopecks: amount,
        default_amount,
        charge_id,
    };
    let penalty_events = Penalty::decide(
        penalty,
        &PenaltyCommand::Issue(facts),
        &PenaltyContext { penalty_id, now },
    )?;
    let Some(PenaltyEvent::PenaltyIssued { facts, .. }) = penalty_events.first() else {
        return Err(Rejection::PenaltyAlreadyIssued { penalty_id });
    };
    let charge = charge_for(
        account,
        &AccountContext { account_id, now },
        NewCharge {
            charge_id,
            reason: ChargeReason::Penalty,
            source: ChargeSource::Penalty { penalty_id },
            amount_kopecks: facts.amount_kopecks,
            customer_id: facts.customer_id,
        },
    )?;
    Ok(PenaltyDecision {
        penalty: penalty_events,
        account_id,
        account: vec![charge],
    })
}
